"""Coverage metrics: fingerprint distances behave (self 0, rattled copy close, other structure
type far), the separate (CDVAE) and joint COV rules differ as defined, fingerprint failures are
counted instead of crashing, split fingerprints are cached, settings match the schema."""

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tcflow.generate import fingerprints as fpmod
from tcflow.generate.fingerprints import DEFAULT_CUTOFFS, fingerprint_set
from tcflow.generate.metrics import (MetricSettings, comp_scaler, coverage_from_distances, recall_by_part,
                                     fingerprint_distances, generation_metrics, split_fingerprints)

ROOT = Path(__file__).resolve().parents[2]


def _rocksalt(a=5.64):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), ["Na"] * 4 + ["Cl"] * 4,
                     [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                      [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])


def _cscl_type(a=3.3):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])


def _rattled(struct, amp_A=0.03, seed=0):
    s = struct.copy()
    rng = np.random.default_rng(seed)
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(0.0, amp_A, 3), frac_coords=False)
    return s


@pytest.mark.parametrize("kind", ["cdvae", "own"])
def test_fingerprint_distances(kind):
    rs = _rocksalt()
    structs = [rs, rs.get_primitive_structure(), _rattled(rs), _cscl_type()]
    fps = fingerprint_set(structs, kind)
    assert fps.ok.all() and fps.n_failed == 0
    mean, std = comp_scaler(fps)
    ds, dc = fingerprint_distances(fps.take([0]), fps, mean, std)
    sc, _ = DEFAULT_CUTOFFS[kind]
    assert ds[0, 0] == 0.0 and dc[0, 0] == 0.0                # itself
    assert ds[0, 1] == pytest.approx(0.0, abs=1e-6)            # its primitive cell
    assert 0.0 < ds[0, 2] < sc                                 # rattled by 0.03 Å (cdvae 0.10, own 0.21)
    assert ds[0, 3] > sc and ds[0, 3] > 5 * ds[0, 2]           # CsCl type (cdvae 2.1, own 2.9)
    assert np.allclose(dc[0], 0.0)                             # same composition throughout


def test_separate_and_joint_rules_differ():
    inf = np.inf
    # rows: samples, columns: reference crystals; cutoffs 0.4 (structure) / 10 (composition)
    ds = np.array([[0.1, 0.9], [0.9, 0.9], [inf, inf]])
    dc = np.array([[20.0, 1.0], [1.0, 20.0], [inf, inf]])  # row 2: a failed sample
    sep = coverage_from_distances(ds, dc, 0.4, 10.0, "separate")
    joint = coverage_from_distances(ds, dc, 0.4, 10.0, "joint")
    # reference 0: nearest in structure = sample 0, nearest in composition = sample 1
    assert sep == {"cov_recall": 0.5, "cov_precision": pytest.approx(1 / 3)}
    assert joint == {"cov_recall": 0.0, "cov_precision": 0.0}
    # what limits the recall: reference 1 has no sample near its structure; both have one near their composition
    assert recall_by_part(ds, dc, 0.4, 10.0) == {"structure": 0.5, "composition": 1.0}
    both = coverage_from_distances(np.array([[0.1]]), np.array([[1.0]]), 0.4, 10.0, "joint")
    assert both == {"cov_recall": 1.0, "cov_precision": 1.0}
    assert coverage_from_distances(np.zeros((0, 2)), np.zeros((0, 2)), 0.4, 10.0) == \
        {"cov_recall": 0.0, "cov_precision": 0.0}


def _samples_table(tmp_path, structs_or_text):
    rows = []
    for k, s in enumerate(structs_or_text):
        p = tmp_path / f"s{k}.cif"
        p.write_text(s if isinstance(s, str) else s.to(fmt="cif"))
        rows.append({"id": f"s{k}", "cif": str(p), "struct_valid": True, "comp_valid": True, "spacegroup": 225,
                     "pred_tc_K": 1.0, "pred_tc_latent_K": 2.0, "pred_tc_latent_start_K": 1.0, "latent_step": 0})
    return pd.DataFrame(rows)


def test_fingerprint_failures_are_counted(tmp_path, monkeypatch):
    rs, cscl = _rocksalt(), _cscl_type()
    good_s, good_c = fpmod._FUNCS["own"]

    def fails_on_5_atoms(s):
        if len(s) == 5:
            raise RuntimeError("featurizer broke")
        return good_s(s)

    monkeypatch.setitem(fpmod._FUNCS, "own", (fails_on_5_atoms, good_c))
    five = _rocksalt()
    five.remove_sites([7, 6, 5])
    samples = _samples_table(tmp_path, [rs, _rattled(rs), "not a CIF", five])
    m = generation_metrics(samples, [rs, cscl], MetricSettings(fingerprint="own"), train_structs=[rs, cscl])
    assert m["fingerprint_failures"] == 2 and m["cov_candidates"] == 4
    assert set(m["fingerprint_failure_reasons"]) == {"s2", "s3"}
    assert "featurizer broke" in m["fingerprint_failure_reasons"]["s3"]
    assert m["cov_recall"] == 0.5 and m["cov_precision"] == 0.5  # failed samples cover nothing
    assert m["cov_fingerprint"] == "own" and m["cov_rule"] == "separate"
    assert (m["cov_struct_cutoff"], m["cov_comp_cutoff"]) == DEFAULT_CUTOFFS["own"]
    assert m["calibration"]["cov_recall"] == 1.0
    valid_only = generation_metrics(samples.assign(comp_valid=[True, True, False, False]), [rs, cscl],
                                    MetricSettings(fingerprint="own", cov_samples="valid", cov_rule="joint"))
    assert valid_only["cov_candidates"] == 2 and valid_only["fingerprint_failures"] == 0
    assert valid_only["cov_precision"] == 1.0 and valid_only["cov_comp_standardisation"] == "reference"


def test_split_fingerprints_are_cached(tmp_path, monkeypatch):
    csv = tmp_path / "split.csv"
    pd.DataFrame({"material_id": ["a", "b"], "cif": [_rocksalt().to(fmt="cif"), _cscl_type().to(fmt="cif")],
                  "tc_K": [1.0, 2.0]}).to_csv(csv, index=False)
    _, first = split_fingerprints(csv, "own", tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("own-*.npz"))) == 1

    def no_recompute(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(fpmod, "fingerprint_set", no_recompute)
    _, again = split_fingerprints(csv, "own", tmp_path / "cache")
    np.testing.assert_array_equal(again.struct, first.struct)
    np.testing.assert_array_equal(again.comp, first.comp)
    monkeypatch.undo()
    pd.read_csv(csv).head(1).to_csv(csv, index=False)  # other content: other key
    _, changed = split_fingerprints(csv, "own", tmp_path / "cache")
    assert len(changed) == 1 and len(list((tmp_path / "cache").glob("own-*.npz"))) == 2


def test_settings_defaults_match_schema():
    import json

    schema = json.loads((ROOT / "config" / "schema" / "generate.schema.json").read_text())
    props = schema["properties"]["metrics"]["properties"]
    ms = MetricSettings()
    assert {f.name for f in fields(ms)} == set(props)
    for f in fields(ms):
        assert getattr(ms, f.name) == props[f.name]["default"], f.name
    assert ms.cutoffs == (0.4, 10.0) and MetricSettings(fingerprint="own").cutoffs == (0.3, 3.0)
    assert MetricSettings(struct_cutoff=0.2).cutoffs == (0.2, 10.0)
    with pytest.raises(ValueError, match="generate.metrics.cov_rule"):
        MetricSettings(cov_rule="both")
    with pytest.raises(ValueError, match="generate.metrics.fingerprint"):
        MetricSettings(fingerprint="soap")


def test_matminer_is_not_imported_with_the_modules():
    code = ("import sys, tcflow.generate.settings, tcflow.generate.metrics, tcflow.generate.fingerprints; "
            "assert 'matminer' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
