"""Data stage: the mirror is normalised (Tc = -prop), bad rows are reported by id, pseudopotentials
are checked by md5."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tcflow.data.fetch import FetchError, fetch_dataset, fetch_pseudos
from tcflow.data.prepare import prepare_splits
from tcflow.data.splits import iter_structures, read_split

FAMILY = "sssp_pbesol_efficiency_1.3.0"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shared):
    root = tmp_path_factory.mktemp("data")
    origin = fetch_dataset(shared, "auto", root / "raw")
    manifest = prepare_splits(root / "raw", root / "out", origin=origin)
    return root, manifest


def test_mirror_is_normalised(prepared, shared):
    root, manifest = prepared
    assert {k: v["rows"] for k, v in manifest["splits"].items()} == {"train": 846, "val": 105, "test": 105}
    assert manifest["excluded"] == []
    assert len(manifest["elements"]) == 62
    assert manifest["origin"].startswith("mirror:")
    raw = pd.read_csv(shared / "data" / "jarvis_supercon" / "train.csv", float_precision="round_trip")
    out = read_split(root / "out" / "train.csv")
    assert (out["tc_K"].to_numpy() == -raw["prop"].to_numpy()).all()
    assert out["tc_K"].min() >= 0 and out["tc_K"].max() == pytest.approx(33.5, abs=0.1)
    n_above = sum(v["n_tc_above_5K"] for v in manifest["splits"].values())
    assert n_above == 283  # the mirror's README: 283 entries with Tc > 5 K


def test_iter_structures_reads_pymatgen(prepared):
    root, _ = prepared
    mid, struct, tc = next(iter_structures(root / "out" / "val.csv"))
    assert mid.startswith("JVASP-") and len(struct) >= 1 and tc >= 0


def test_max_train_subset_is_seeded(prepared):
    root, _ = prepared
    a = prepare_splits(root / "raw", root / "sub_a", max_train=16, seed=3)
    b = prepare_splits(root / "raw", root / "sub_b", max_train=16, seed=3)
    assert a["splits"]["train"]["rows"] == 16 and a["splits"]["val"]["rows"] == 2
    assert (root / "sub_a" / "train.csv").read_bytes() == (root / "sub_b" / "train.csv").read_bytes()
    assert b["splits"]["train"]["sha256"] == a["splits"]["train"]["sha256"]


def test_malformed_rows_are_reported_by_id(tmp_path, prepared):
    root, _ = prepared
    good = pd.read_csv(root / "raw" / "train.csv").iloc[:3]
    bad = pd.DataFrame({
        "material_id": ["BAD-cif", "BAD-elem", "BAD-tc", "BAD-nan", "BAD-overlap"],
        "cif": ["not a cif", good.cif[0].replace(" Y ", " Xx ").replace("Y0", "Xx0"), good.cif[0],
                good.cif[0], good.cif[0].replace("0.49999947  0.49999947  0.49999947",
                                                 "0.28000000  0.28000000  0.28000000")],
        "prop": [-1.0, -1.0, 2.0, float("nan"), -1.0],
    })
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.concat([good, bad]).to_csv(raw / "train.csv", index=False)
    for split in ("val", "test"):
        good.to_csv(raw / f"{split}.csv", index=False)
    manifest = prepare_splits(raw, tmp_path / "out")
    reasons = {e["material_id"]: e["reason"] for e in manifest["excluded"]}
    assert set(reasons) == {"BAD-cif", "BAD-elem", "BAD-tc", "BAD-nan", "BAD-overlap"}
    assert "unreadable CIF" in reasons["BAD-cif"] or "no atoms" in reasons["BAD-cif"]
    assert "Tc" in reasons["BAD-tc"]
    assert "apart" in reasons["BAD-overlap"]
    assert manifest["splits"]["train"]["rows"] == 3


def test_mirror_source_requires_the_mirror(tmp_path):
    with pytest.raises(FetchError, match="dataset split missing from the mirror"):
        fetch_dataset(tmp_path, "mirror", tmp_path / "out")


def test_pseudos_copied_and_md5_checked(tmp_path, shared):
    out = tmp_path / "pseudo"
    fetch_pseudos(shared, FAMILY, out, "unused://", "unused://")
    table = json.loads((out / f"{FAMILY}.json").read_text())
    assert len(table) == 62
    assert all((out / e["filename"]).is_file() for e in table.values())
    # a corrupted mirror file is refused, naming it; the good copy already there stays
    mirror = tmp_path / "mirror"
    shutil.copytree(shared / "pseudo", mirror / "pseudo")
    nb = mirror / "pseudo" / FAMILY / table["Nb"]["filename"]
    nb.chmod(0o644)
    nb.write_text("corrupted")
    out2 = tmp_path / "pseudo2"
    with pytest.raises(FetchError, match=rf"{table['Nb']['filename']}: md5"):
        fetch_pseudos(mirror, FAMILY, out2, "unused://", "unused://")
    assert not (out2 / table["Nb"]["filename"]).exists()
    assert not list(out2.glob(".*.tmp"))


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    from tcflow.io import atomic_dir

    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done.txt").write_text("x")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["done.txt"]
