"""Read the normalised dataset splits written by the data stage.

``results/data/{train,val,test}.csv`` have the columns

- ``material_id``: JARVIS id (str), e.g. ``JVASP-934``
- ``tc_K``: DFT superconducting Tc in kelvin (float, >= 0)
- ``formula``: reduced formula (str)
- ``natoms``: atoms in the cell (int)
- ``cif``: the structure as CIF text (P1)
"""

from __future__ import annotations

import os
from typing import Iterator

SPLITS = ("train", "val", "test")
COLUMNS = ("material_id", "tc_K", "formula", "natoms", "cif")


def read_split(path: str | os.PathLike):
    """The split as a pandas DataFrame with :data:`COLUMNS`."""
    import pandas as pd

    # round_trip: values read back exactly as written (pandas 2's default parser can be 1 ulp off)
    df = pd.read_csv(path, dtype={"material_id": str, "formula": str, "cif": str}, float_precision="round_trip")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def iter_structures(path: str | os.PathLike) -> Iterator[tuple[str, "object", float]]:
    """Yield ``(material_id, pymatgen Structure, tc_K)`` for every row of a split file."""
    from pymatgen.core import Structure

    df = read_split(path)
    for row in df.itertuples(index=False):
        yield row.material_id, Structure.from_str(row.cif, fmt="cif"), float(row.tc_K)
