"""Read the normalised dataset splits written by the data stage.

``results/data/{train,val,test}.csv`` have the columns

- ``material_id``: JARVIS id (str), e.g. ``JVASP-934``
- ``tc_K``: DFT superconducting Tc in kelvin (float, >= 0)
- ``formula``: reduced formula (str)
- ``natoms``: atoms in the cell (int)
- ``cif``: the structure as CIF text (P1)

The reader itself is :func:`tcflow.structures.read_split` (re-exported here).
"""

from __future__ import annotations

import os
from typing import Iterator

from tcflow.structures import SPLIT_COLUMNS as COLUMNS
from tcflow.structures import read_split, structure_from_cif_text

SPLITS = ("train", "val", "test")
__all__ = ["COLUMNS", "SPLITS", "iter_structures", "read_split"]


def iter_structures(path: str | os.PathLike) -> Iterator[tuple[str, "object", float]]:
    """Yield ``(material_id, pymatgen Structure, tc_K)`` for every row of a split file."""
    df = read_split(path)
    for row in df.itertuples(index=False):
        yield row.material_id, structure_from_cif_text(row.cif, f"{path}: {row.material_id}"), float(row.tc_K)
