"""tcflow.structures: one-line errors naming the file, the periodic minimum distance, the split reader."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from tcflow.structures import (StructureError, min_distance_A, read_split, read_structure, split_tc_K,
                               structure_from_cif_text)


def test_errors_are_one_line_and_name_the_file(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\n")
    with pytest.raises(StructureError, match=r"broken\.cif: unreadable structure") as err:
        read_structure(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(StructureError, match=r"^train.csv: JVASP-1: unreadable CIF"):
        structure_from_cif_text("not a cif", "train.csv: JVASP-1")
    with pytest.raises(StructureError, match="empty CIF"):
        structure_from_cif_text("", "x")


def test_min_distance_counts_periodic_images():
    assert min_distance_A(Structure(Lattice.cubic(0.3), ["H"], [[0, 0, 0]])) == pytest.approx(0.3)
    # across the cell boundary: 0.02 and 0.98 are 0.16 Å apart in an 4 Å cell
    s = Structure(Lattice.cubic(4.0), ["Al", "Al"], [[0.02, 0, 0], [0.98, 0, 0]])
    assert min_distance_A(s) == pytest.approx(0.16)


def test_read_split_kinds(tmp_path):
    raw = tmp_path / "raw.csv"
    pd.DataFrame({"material_id": ["1"], "cif": ["x"], "prop": [-2.5]}).to_csv(raw, index=False)
    df = read_split(raw, "any")
    assert df["material_id"][0] == "1" and list(split_tc_K(df, raw)) == [2.5]
    with pytest.raises(ValueError, match=r"raw.csv: missing column\(s\) tc_K, formula, natoms"):
        read_split(raw)
    with pytest.raises(ValueError, match=r"raw.csv: needs a tc_K"):
        split_tc_K(df.drop(columns="prop"), raw)
