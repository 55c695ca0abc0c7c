"""One ALIGNN-screen shard with bad samples (unembeddable element, overlapping atoms, NaN model,
unconverged relaxation) completes with a reason per sample; the merge de-duplicates and feeds the
candidates checkpoint."""

from __future__ import annotations

import copy

import pandas as pd
import torch
from pymatgen.core import Lattice, Structure

from tcflow.screen.alignn_screen import GAP_DEFERRED, screen_shard
from tcflow.screen.graphs import GraphSettings
from tcflow.screen.merge import merge_shards
from tcflow.screen.model import build_model, model_config, save_model

CFG = {"tc_min_K": -1e9, "eform_max_eV_atom": 10.0, "gap_max_eV": 0.05, "max_atoms": 4, "require_valid": True,
       "top_k": None, "num_shards": 2, "tc_spread_k": 0.0, "batch_size": 4, "mlip": "chgnet",
       "relax": {"enabled": True, "fmax_eV_A": 0.1, "max_steps": 200, "relax_cell": True},
       "phonon": {"enabled": True, "min_freq_THz": -0.5, "supercell_min_length_A": 6.0, "q_mesh": [4, 4, 4],
                  "displacement_A": 0.01}}


def _model(path, nan=False):
    torch.manual_seed(0)
    mcfg = model_config(hidden=8, embedding=8, alignn_layers=1, gcn_layers=1)
    m = build_model(mcfg)
    if nan:
        with torch.no_grad():
            m.fc.bias.fill_(float("nan"))
    save_model(path, m, mcfg, GraphSettings(cutoff_A=6.0, max_neighbors=8))
    return path


def _samples(tmp_path):
    structs = {
        "nb": Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "nb-copy": Structure(Lattice.cubic(3.32), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "md": Structure(Lattice.cubic(3.5), ["Md"], [[0, 0, 0]]),
        "overlap": Structure(Lattice.cubic(4.0), ["Nb", "Nb"], [[0, 0, 0], [0.05, 0, 0]]),
        "big": Structure(Lattice.cubic(6.6), ["Nb"] * 16, [[x / 2, y / 2, z / 2] for x in (0, 1) for y in (0, 1)
                                                          for z in (0, 1)] + [[x / 2 + .25, y / 2 + .25, z / 2 + .25]
                                                                              for x in (0, 1) for y in (0, 1) for z in (0, 1)]),
        "invalid": Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
    }
    rows = []
    for sid, s in structs.items():
        s.to(filename=str(tmp_path / f"{sid}.cif"))
        rows.append({"id": sid, "cif": str(tmp_path / f"{sid}.cif"), "natoms": len(s), "pred_tc_K": 1.0,
                     "struct_valid": sid != "invalid", "comp_valid": True})
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    return tmp_path / "samples.csv"


def test_shards_with_bad_samples_complete_and_merge(tmp_path):
    samples = _samples(tmp_path)
    model = _model(tmp_path / "tc")
    logs = []
    shards = []
    for k in range(2):
        screen_shard(samples, k, 2, tmp_path / f"shard{k}", CFG, model, log=logs.append)
        shards.append(tmp_path / f"shard{k}")
    assert any(GAP_DEFERRED in line for line in logs)
    funnel = merge_shards(samples, shards, tmp_path / "pred.csv", tmp_path / "scr.csv", tmp_path / "surv.csv", CFG)
    pred = pd.read_csv(tmp_path / "pred.csv").set_index("id")
    assert list(pred.index) == ["nb", "nb-copy", "md", "overlap", "big", "invalid"]
    assert "cannot be embedded" in pred.loc["md", "reason"]
    assert pred.loc["overlap", "reason"].startswith("overlapping atoms")
    assert pred.loc["big", "reason"] == "natoms 16 > 4"
    assert pred.loc["invalid", "reason"] == "structurally invalid"
    assert pred.loc["nb", "gap_status"] == GAP_DEFERRED
    for sid in ("nb", "nb-copy"):
        assert pred.loc[sid, "relax_converged"] and pred.loc[sid, "max_force_eV_A"] < 0.1
        assert pd.notna(pred.loc[sid, "tc_unrelaxed_K"]) and pd.notna(pred.loc[sid, "tc_relaxed_K"])
        assert pd.notna(pred.loc[sid, "min_freq_THz"]) and pd.notna(pred.loc[sid, "eform_eV_atom"])
    surv = pd.read_csv(tmp_path / "surv.csv")
    assert len(surv) == 1 and funnel["duplicates"] == 1  # both relax to the same bcc Nb
    assert pred.loc[[i for i in ("nb", "nb-copy") if i != surv["id"][0]][0], "reason"].startswith("duplicate of")
    from tcflow.screen.candidates import select_candidates

    res = select_candidates(tmp_path / "cands", tmp_path / "c.csv", tmp_path / "r.csv", survivors_csv=tmp_path / "surv.csv")
    assert res["accepted"] == 1
    assert set(pd.read_csv(tmp_path / "scr.csv").columns) >= {"id", "passed", "reason"}


def test_nan_model_and_unconverged_relaxation_are_reasons(tmp_path):
    samples = _samples(tmp_path)
    cfg = copy.deepcopy(CFG)
    cfg["phonon"]["enabled"] = False
    out = screen_shard(samples, 0, 1, tmp_path / "nan", cfg, _model(tmp_path / "tc_nan", nan=True)).set_index("id")
    assert out.loc["nb", "reason"] == "Tc prediction is NaN" and not out.loc["nb", "passed"]
    # a rattled cell that cannot converge in one step
    s = Structure(Lattice.cubic(3.6), ["Nb", "Nb"], [[0, 0, 0], [0.41, 0.52, 0.47]])
    s.to(filename=str(tmp_path / "rattled.cif"))
    pd.DataFrame([{"id": "rattled", "cif": str(tmp_path / "rattled.cif"), "natoms": 2, "struct_valid": True,
                   "comp_valid": True}]).to_csv(tmp_path / "one.csv", index=False)
    cfg["relax"]["max_steps"] = 1
    out = screen_shard(tmp_path / "one.csv", 0, 1, tmp_path / "r1", cfg, _model(tmp_path / "tc")).set_index("id")
    assert out.loc["rattled", "reason"].startswith("relaxation not converged in 1 steps")
    assert pd.notna(out.loc["rattled", "tc_unrelaxed_K"])  # the unrelaxed prediction is kept
