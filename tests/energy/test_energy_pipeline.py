"""The energy stage end to end through Snakemake with real pw.x runs: VC (JVASP-19657, 2 atoms)
from the JARVIS-SC mirror as a `cif_dir` candidate, protocol `fast` without relaxation (to keep
the test to a few minutes on 2 cores; the relaxing path is the same step function as the DFT
stage's and runs in benchmarks/energy_mgb2.py), references bcc V and diamond C, competing phase
V2C (JVASP-36214); target results/energy/hull.csv only (no ph.x), then a rerun that does nothing."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

from workflow_helpers import SHARED, run_snakemake

VC_ID = "JVASP-19657"
SNAKEMAKE_TIMEOUT_S = 1800

if os.geteuid() == 0:  # Open MPI refuses root without these
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")


@pytest.fixture(scope="module")
def vc_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("energy_vc")
    (wd / "cifs").mkdir()
    for split in ("train", "val", "test"):
        df = pd.read_csv(SHARED / "data" / "jarvis_supercon" / f"{split}.csv")
        hit = df[df["material_id"] == VC_ID]
        if len(hit):
            (wd / "cifs" / "VC.cif").write_text(hit["cif"].iloc[0])
    cfg = {"candidates": {"source": "cif_dir", "path": str(wd / "cifs")},
           "dft": {"protocol": "fast", "overrides": {"relax": False}},
           "energy": {"enabled": True, "mlip": "none", "max_phase_atoms": 4}}
    first = run_snakemake(wd, cfg, "--cores", "2", "results/energy/hull.csv", timeout=SNAKEMAKE_TIMEOUT_S)
    second = run_snakemake(wd, cfg, "--cores", "2", "results/energy/hull.csv", timeout=SNAKEMAKE_TIMEOUT_S)
    return wd, first, second


def test_hull_row_is_ok_and_finite(vc_run):
    wd, first, _ = vc_run
    hull = pd.read_csv(wd / "results/energy/hull.csv")
    assert len(hull) == 1
    row = hull.iloc[0]
    assert row["id"] == "VC" and row["formula"] == "VC" and row["hull_status"] == "ok"
    assert math.isfinite(row["e_form_eV_atom"]) and row["e_form_eV_atom"] < 0  # VC is bound
    assert math.isfinite(row["e_hull_eV_atom"])
    assert row["hull_n_phases"] == 3  # el-C, el-V and V2C; the mirror's VC is the candidate itself
    assert f"{VC_ID}: the candidate's own structure" in row["hull_notes"]
    assert "protocol fast" in row["hull_label"] and "ecutwfc 25 Ry, ecutrho 200 Ry" in row["hull_label"]
    assert row["mlip_label"] == "none: energy.mlip is none"
    systems = pd.read_csv(wd / "results/energy/systems.csv")
    assert systems.loc[0, "phases"] == "el-C el-V JVASP-36214"
    # the hull needs the candidate's scf_fit, never its ph.x
    assert (wd / "results/dft/VC/scf_fit").is_dir() and not (wd / "results/dft/VC/ph").exists()


def test_records_carry_how_the_energy_was_computed(vc_run):
    wd = vc_run[0]
    phase = wd / "results/energy/phases/25-200/el-C"
    fit = json.loads((phase / "scf_fit/scf_fit.json").read_text())
    assert fit["status"] == "insulator"  # diamond: still a valid energy
    e = fit["energy"]
    assert e["cutoffs"] == {"ecutwfc_ry": 25.0, "ecutrho_ry": 200.0} and e["protocol"] == "fast"
    assert e["pseudos"] == {"C": "C.pbesol-n-kjpaw_psl.1.0.0.UPF"} and e["qe_version"].startswith("6.7")
    assert e["composition"] == {"C": 2} and e["magnetic_ground_state_not_modelled"] == {}
    assert not (phase / "scf_fit/out").exists()  # no wavefunctions kept for an energy
    meta = json.loads((phase / "scf_fit/metadata.json").read_text())
    assert meta["stage"] == "energy" and meta["phase"] == "el-C" and meta["settings"]["overrides"]["ecutwfc_ry"] == 25.0
    assert json.loads((wd / "results/energy/metadata.json").read_text())["n_ok"] == 1


def test_rerun_does_nothing(vc_run):
    _, _, second = vc_run
    assert "Nothing to be done" in second.stdout + second.stderr
