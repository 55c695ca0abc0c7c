"""Novelty against the training data and the aggregated table."""

from __future__ import annotations

import json

import pandas as pd
from pymatgen.core import Lattice, Structure

from tcflow.report.aggregate import aggregate
from tcflow.report.report import markdown_table
from tcflow.data.fetch import fetch_dataset
from tcflow.data.prepare import prepare_splits
from tcflow.data.splits import read_split


def test_novelty_and_aggregate(tmp_path, shared):
    fetch_dataset(shared, "mirror", tmp_path / "raw")
    prepare_splits(tmp_path / "raw", tmp_path / "data")
    csvs = [tmp_path / "data" / f"{s}.csv" for s in ("train", "val", "test")]
    nb_row = next(r for c in csvs for r in read_split(c).itertuples() if r.material_id == "JVASP-934")
    known = Structure.from_str(nb_row.cif, fmt="cif")
    known.perturb(0.01, min_distance=0.0)  # a slightly moved copy is still the same crystal
    new = Structure(Lattice.cubic(2.2), ["Nb"], [[0, 0, 0]])  # simple-cubic Nb: not in the data

    cands = tmp_path / "candidates"
    cands.mkdir()
    known.to(filename=str(cands / "a.cif"))
    new.to(filename=str(cands / "b.cif"))
    pd.DataFrame({"id": ["a", "b"], "formula": ["Nb", "Nb"], "natoms": [len(known), 1],
                  "source": ["x", "y"]}).to_csv(tmp_path / "table.csv", index=False)
    tcs = []
    for cid, tc in (("a", 9.5), ("b", 12.0)):
        d = tmp_path / "dft" / cid
        d.mkdir(parents=True)
        (d / "tc.json").write_text(json.dumps({"status": "ok", "tc_K": tc, "lambda": 1.0, "table": [1, 2]}))
        tcs.append(d / "tc.json")
    df = aggregate(tcs, cands, tmp_path / "table.csv", csvs, tmp_path / "summary.csv")
    assert list(df["id"]) == ["b", "a"]  # by Tc, highest first
    assert list(df["novelty"]) == ["new_structure", "known"] and df["matched_id"].iloc[1] == "JVASP-934"
    assert df["matched_set"].iloc[1] == "train" and df["duplicate_of"].isna().all()
    assert "table" not in df.columns  # lists stay in tc.json
    assert "| b | Nb | 1 | ok | 12 |" in markdown_table(df)
