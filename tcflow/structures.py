"""Structures and split tables, read the same way by every stage.

- :func:`read_structure` / :func:`structure_from_cif_text`: parse quietly (pymatgen's CIF
  warnings suppressed) and fail with one line, a :class:`StructureError` naming the file (or the
  row) and the reason;
- :func:`check_structure`: the checks a candidate must pass (atoms present, ordered, real
  elements);
- :func:`min_distance_A`: the shortest interatomic distance (Å), periodic images included;
- :func:`read_split`: the dataset split CSVs, both the data stage's ``results/data/{train,val,test}.csv``
  (Tc in K) and the raw mirror's ``{train,val,test}.csv`` (``prop`` = -Tc in K).

Light at import (pymatgen and pandas are imported inside the functions).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

#: Columns of the data stage's split files (``tc_K`` in K, ``cif`` P1 CIF text).
SPLIT_COLUMNS = ("material_id", "tc_K", "formula", "natoms", "cif")
#: Columns of the raw mirror's split files (``prop`` = -Tc in K).
RAW_SPLIT_COLUMNS = ("material_id", "cif", "prop")
#: Radius (Å) within which :func:`min_distance_A` looks for the nearest neighbour; a structure
#: with no neighbour that close is reported as this distance.
MIN_DIST_SEARCH_A = 8.0


class StructureError(ValueError):
    """A structure that cannot be used; the one-line message names the file or row."""


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def structure_from_cif_text(text: str, where: str):
    """A pymatgen Structure from CIF text; ``where`` (a file, or ``file: row id``) starts the
    one-line :class:`StructureError` raised when it cannot be parsed."""
    from pymatgen.core import Structure

    if not isinstance(text, str) or not text.strip():
        raise StructureError(f"{where}: empty CIF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_str(text, fmt="cif")
    except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError... on bad CIFs
        raise StructureError(f"{where}: unreadable CIF ({_first_line(exc)})") from None


def check_structure(struct, where: str):
    """Raise :class:`StructureError` for an empty cell, partial occupancies or an unknown
    element; return ``struct``."""
    from pymatgen.core import Element

    if len(struct) == 0:
        raise StructureError(f"{where}: no atoms")
    if not struct.is_ordered:
        raise StructureError(f"{where}: partial occupancies are not supported")
    for sp in struct.composition.elements:
        if not isinstance(sp, Element):
            raise StructureError(f"{where}: unknown element {sp}")
    return struct


def read_structure(path: str | os.PathLike, check: bool = True):
    """Parse a CIF (or any format pymatgen knows by extension) into a pymatgen Structure.

    Raises :class:`StructureError` naming the file: unreadable, and (``check``) the failures of
    :func:`check_structure`.
    """
    from pymatgen.core import Structure

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            struct = Structure.from_file(path)
    except Exception as exc:  # as in structure_from_cif_text
        raise StructureError(f"{path}: unreadable structure ({_first_line(exc)})") from None
    return check_structure(struct, str(path)) if check else struct


def min_distance_A(struct) -> float:
    """Shortest distance (Å) between two atoms of the crystal, periodic images of the same atom
    included; :data:`MIN_DIST_SEARCH_A` when none is that close."""
    _, _, _, d = struct.get_neighbor_list(MIN_DIST_SEARCH_A)
    return float(d.min()) if len(d) else MIN_DIST_SEARCH_A


def read_split(path: str | os.PathLike, kind: str = "data"):
    """A split CSV as a pandas DataFrame (ids, formulas and CIFs as text, numbers read back
    exactly as written).

    ``kind``: ``data`` (the data stage's files, :data:`SPLIT_COLUMNS`), ``raw`` (the mirror's,
    :data:`RAW_SPLIT_COLUMNS`) or ``any`` (either; only ``material_id`` and ``cif`` required).
    A missing column raises ``ValueError`` naming the file. :func:`split_tc_K` gives Tc in K for
    either kind.
    """
    import pandas as pd

    if kind not in ("data", "raw", "any"):
        raise ValueError(f"read_split: unknown kind {kind!r}")
    # round_trip: values read back exactly as written (pandas 2's default parser can be 1 ulp off)
    df = pd.read_csv(path, dtype={"material_id": str, "formula": str, "cif": str},
                     float_precision="round_trip")
    required = {"data": SPLIT_COLUMNS, "raw": RAW_SPLIT_COLUMNS, "any": ("material_id", "cif")}[kind]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def split_tc_K(df, path: str | os.PathLike):
    """Tc (K) of every row of a :func:`read_split` table of ``path``: ``tc_K``, or ``-prop`` for
    raw files; ``ValueError`` naming the file when it has neither."""
    if "tc_K" in df.columns:
        return df["tc_K"].astype(float)
    if "prop" in df.columns:
        return -df["prop"].astype(float)
    raise ValueError(f"{path}: needs a tc_K (or raw prop = -Tc) column")
