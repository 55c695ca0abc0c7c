"""Novelty classes against the real JARVIS-SC splits, a user reference set, and duplicates."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.core.operations import SymmOp

from tcflow.data.fetch import fetch_dataset
from tcflow.data.prepare import prepare_splits
from tcflow.data.splits import read_split
from tcflow.report.aggregate import reference_sets
from tcflow.report.novelty import classify, load_reference, summarise


@pytest.fixture(scope="module")
def splits(tmp_path_factory, shared):
    wd = tmp_path_factory.mktemp("novelty")
    fetch_dataset(shared, "mirror", wd / "raw")
    prepare_splits(wd / "raw", wd / "data")
    return [wd / "data" / f"{s}.csv" for s in ("train", "val", "test")]


def _train_structure(splits, mid):
    row = next(r for r in read_split(splits[0]).itertuples() if r.material_id == mid)
    return Structure.from_str(row.cif, fmt="cif")


def test_classes(splits, tmp_path):
    refs = reference_sets(splits)
    assert [r.name for r in refs] == ["train", "test", "val"]
    nbc = _train_structure(splits, "JVASP-19889")  # rocksalt NbC (Fm-3m), the only NbC structure in the set
    known = nbc.copy()
    known.make_supercell([2, 1, 1])
    known.perturb(0.02, min_distance=0.0)
    # CsCl-type NbC (Pm-3m), 3 % tetragonal strain, sites listed C first: same composition, another structure
    polymorph = Structure(Lattice.tetragonal(2.80, 2.80 * 1.03), ["C", "Nb"], [[0.5, 0.5, 0.5], [0, 0, 0]])
    absent = Structure(Lattice.cubic(3.1), ["Sc", "Bi"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert all("ScBi" not in r for r in refs)
    dup = known.copy()
    dup.apply_operation(SymmOp.from_axis_angle_and_translation([0, 0, 1], 90))  # the same crystal, rotated
    got = classify({"a": known, "b": polymorph, "c": absent, "d": dup}, refs)
    assert got["a"] == {"novelty": "known", "matched_id": "JVASP-19889", "matched_set": "train", "duplicate_of": None}
    assert got["b"] == {"novelty": "new_structure", "matched_id": None, "matched_set": None, "duplicate_of": None}
    assert got["c"]["novelty"] == "new_composition" and got["c"]["matched_id"] is None
    assert got["d"]["novelty"] == "known" and got["d"]["duplicate_of"] == "a"
    assert summarise(got) == {"known": 2, "new_structure": 1, "new_composition": 1, "duplicates": 1}

    # the same polymorph in a user reference set (a directory of CIFs) makes it known there
    ref_dir = tmp_path / "my_refs"
    ref_dir.mkdir()
    Structure(Lattice.cubic(2.85), ["Nb", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(ref_dir / "NbC-B2.cif"))
    got = classify({"b": polymorph}, refs + [load_reference(ref_dir)])
    assert got["b"]["novelty"] == "known" and got["b"]["matched_set"] == "my_refs" and got["b"]["matched_id"] == "NbC-B2"


def test_bad_reference_set(tmp_path):
    with pytest.raises(ValueError, match="nowhere: reference set not found"):
        load_reference(tmp_path / "nowhere")
    (tmp_path / "r.csv").write_text("id,cif\nx,y\n")
    with pytest.raises(ValueError, match=r"r.csv: missing column\(s\) material_id"):
        load_reference(tmp_path / "r.csv")
