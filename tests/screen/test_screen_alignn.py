"""The ALIGNN screen: graphs as alignn builds them, strict model loading, the pretrained download
failing offline, resumable Tc training, CHGNet formation energies, and a shard with bad samples
screened and merged into survivors the candidates checkpoint reads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from tcflow.screen.graphs import GraphSettings, build_graph
from tcflow.screen.model import Ensemble, ModelLoadError, build_model, load_model, model_config, save_model

GS = GraphSettings(cutoff_A=6.0, max_neighbors=8, three_body_cutoff_A=3.5)


def _nb(a=3.30):
    return Structure(Lattice.cubic(a), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _tiny(tmp_path, name="m", seed=0):
    torch.manual_seed(seed)
    mcfg = model_config(hidden=8, embedding=8, alignn_layers=1, gcn_layers=1)
    model = build_model(mcfg)
    save_model(tmp_path / name, model, mcfg, GS)
    return tmp_path / name, model


def test_graph_equals_alignn_builder():
    from jarvis.core.atoms import Atoms
    from alignn.torch_graph_builder import build_pure_torch_graph

    s = Structure(Lattice.hexagonal(3.08, 3.52), ["Mg", "B", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])
    g, lg = build_graph(s, GS)
    a = Atoms(lattice_mat=s.lattice.matrix, coords=s.frac_coords, elements=[x.symbol for x in s.species], cartesian=False)
    g2, lg2 = build_pure_torch_graph(atoms=a, two_body_cutoff=6.0, three_body_cutoff=3.5, max_neighbors=8,
                                     positions=torch.tensor(s.cart_coords, dtype=torch.float32),
                                     lattice=torch.tensor(s.lattice.matrix, dtype=torch.float32),
                                     use_matscipy_topology=False)
    assert torch.equal(g.src, g2.src) and torch.equal(g.dst, g2.dst)
    assert torch.allclose(g.edata["r"], g2.edata["r"]) and torch.equal(lg.src, lg2.src) and torch.equal(lg.dst, lg2.dst)
    assert torch.allclose(g.ndata["atom_features"], g2.ndata["atom_features"])


def test_batched_prediction_equals_one_at_a_time(tmp_path):
    d, model = _tiny(tmp_path)
    ens = Ensemble.load(d)
    structs = [_nb(3.3), _nb(3.1), Structure(Lattice.cubic(4.05), ["Al"] * 4,
                                              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])]
    pairs = [build_graph(s, ens.graph) for s in structs]
    mean, _ = ens.predict(pairs, batch_size=8)
    single = [ens.predict([p])[0][0] for p in pairs]
    assert np.allclose(mean, single, atol=1e-5)


def test_strict_loading_refuses_mismatched_checkpoints(tmp_path):
    d, model = _tiny(tmp_path)
    load_model(d)  # its own checkpoint loads
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"]["hidden_features"] = 16
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="refused.*shape mismatch") as err:
        load_model(d)
    assert "\n" not in str(err.value)
    cfg["model"]["hidden_features"] = 8
    (d / "config.json").write_text(json.dumps(cfg))
    state = torch.load(d / "best_model.pt")
    state.pop("fc.bias")
    state["bn.running_mean"] = torch.zeros(8)  # a DGL-era BatchNorm buffer has no slot
    torch.save(state, d / "best_model.pt")
    with pytest.raises(ModelLoadError, match=r"missing 1 of .*fc\.bias.*no slot in the model: bn\.running_mean"):
        load_model(d)
    cfg["neighbor_strategy"] = "voronoi"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="neighbor_strategy 'voronoi' is not reproduced"):
        load_model(d)
    cfg["model"]["name"] = "alignn_atomwise"
    cfg["neighbor_strategy"] = "pure_torch"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="model name 'alignn_atomwise' is not"):
        load_model(d)
    # LayerNorm weights of alignn_atomwise_pure do not fill the DGL-era model's BatchNorm
    save_model(d, model, model_config(hidden=8, embedding=8, alignn_layers=1, gcn_layers=1), GS)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"] = {k: v for k, v in cfg["model"].items() if k in ("alignn_layers", "gcn_layers", "hidden_features",
                                                                   "embedding_features")} | {"name": "alignn"}
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"refused.*missing \d+ of .*running_mean") as err:
        load_model(d)
    assert "\n" not in str(err.value)
    cfg["model"]["extra_features"] = 3
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="extra_features 3 is not ported"):
        load_model(d)


def test_log1p_target_is_trained_in_log_space_and_predicted_in_kelvin(tmp_path):
    from tcflow.screen.graphs import batch
    from tcflow.screen.train_tc import TrainSettings, train_member

    structs = [_nb(3.0 + 0.05 * i) for i in range(6)]
    tcs = [0.0, 0.5, 2.0, 6.0, 12.0, 30.0]
    _split_csv(tmp_path / "train.csv", structs, tcs)
    _split_csv(tmp_path / "val.csv", structs[:3], tcs[:3])
    ts = TrainSettings(epochs=2, batch_size=3, hidden=8, alignn_layers=1, gcn_layers=1, target_transform="log1p")
    s = train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "m", ts, GS, seed=0)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["target_transform"] == "log1p" and cfg["target"] == "Tc_K"
    model, _ = load_model(tmp_path / "m")
    pairs = [build_graph(x, GS) for x in structs[:3]]
    with torch.no_grad():
        raw = model(batch(pairs))["out"].reshape(-1).double().numpy()
    mean, _ = Ensemble.load(tmp_path / "m").predict(pairs)
    assert np.allclose(mean, np.expm1(raw), rtol=1e-6) and not np.allclose(mean, raw)
    # the validation MAE early stopping used is in K: that of the K predictions of the best weights
    assert s["best_val_mae_K"] == pytest.approx(np.mean(np.abs(mean - np.array(tcs[:3]))), rel=1e-5)
    # resume points of "none" runs keep their fingerprint; a log1p run is another trajectory
    logs = []
    train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "m",
                 TrainSettings(**{**ts.__dict__, "target_transform": "none"}), GS, seed=0, log=logs.append)
    assert any("from other settings" in line for line in logs)
    cfg["target_transform"] = "log10"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"config.json: target_transform 'log10' is not one of \['log1p', 'none'\]"):
        load_model(tmp_path / "m")


def test_pretrained_download_failure_says_how_to_supply_a_checkpoint(tmp_path):
    from tcflow.screen.pretrained import fetch, model_url

    assert model_url("jv_supercon_tc_alignn").startswith("https://")
    with pytest.raises(ModelLoadError) as err:  # port 9 (discard) on localhost: connection refused
        fetch("jv_supercon_tc_alignn", tmp_path, "screen.models.tc.pretrained", url="http://127.0.0.1:9/m.zip", timeout_s=5)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("screen.models.tc.pretrained: pretrained 'jv_supercon_tc_alignn': download")
    assert "failed" in msg and "screen.models.tc: {checkpoint:" in msg
    assert not (tmp_path / "jv_supercon_tc_alignn").exists()
    with pytest.raises(ModelLoadError, match="not in alignn's registries"):
        model_url("no_such_model")


def _split_csv(path, structs, tcs):
    from pymatgen.io.cif import CifWriter

    pd.DataFrame({"material_id": [f"X-{i}" for i in range(len(structs))], "tc_K": tcs,
                  "formula": [s.composition.reduced_formula for s in structs], "natoms": [len(s) for s in structs],
                  "cif": [str(CifWriter(s)) for s in structs]}).to_csv(path, index=False)


def test_training_is_seeded_and_resumes(tmp_path):
    from tcflow.screen.train_tc import TrainSettings, train_member

    structs = [_nb(3.0 + 0.05 * i) for i in range(6)]
    _split_csv(tmp_path / "train.csv", structs, [float(i) for i in range(6)])
    _split_csv(tmp_path / "val.csv", structs[:2], [0.0, 1.0])
    ts = TrainSettings(epochs=2, batch_size=3, hidden=8, alignn_layers=1, gcn_layers=1, patience=5)
    logs = []
    s1 = train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "a", ts, GS, seed=1, log=logs.append)
    s2 = train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "b", ts, GS, seed=1)
    assert s1["best_val_mae_K"] == s2["best_val_mae_K"]
    assert len(pd.read_csv(tmp_path / "a" / "loss.csv")) == 2 and (tmp_path / "a" / "loss.png").is_file()
    other = TrainSettings(**{**ts.__dict__, "lr": 5e-4})
    logs = []
    train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "b", other, GS, seed=1, log=logs.append)
    assert any("from other settings" in line for line in logs)  # another trajectory: not resumed
    # more epochs (a stopping criterion, not the trajectory) continue a finished run
    more = TrainSettings(**{**ts.__dict__, "epochs": 3})
    logs = []
    s3 = train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "a", more, GS, seed=1, log=logs.append)
    assert any("resuming at epoch 2" in line for line in logs) and s3["epochs_run"] == 3
    logs = []
    s4 = train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "a", more, GS, seed=1, log=logs.append)
    assert any("resuming at epoch 3" in line for line in logs) and s4["epochs_run"] == 3
    load_model(tmp_path / "a")
    # a state past the epochs asked for is not used
    logs = []
    train_member(tmp_path / "train.csv", tmp_path / "val.csv", tmp_path / "a", ts, GS, seed=1, log=logs.append)
    assert any("past epochs 2; starting afresh" in line for line in logs)


def test_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path):
    """Killed after its third epoch is computed but before that epoch's state is saved, a run
    continues from epoch 2 and ends with the weights and history of an uninterrupted run."""
    from tcflow.screen.train_tc import STATE, TrainSettings, train_member

    structs = [_nb(3.0 + 0.04 * i) for i in range(8)]
    _split_csv(tmp_path / "train.csv", structs, [0.5 * i * i for i in range(8)])
    _split_csv(tmp_path / "val.csv", structs[1:4], [0.5, 2.0, 4.5])
    ts = TrainSettings(epochs=4, batch_size=3, hidden=8, alignn_layers=1, gcn_layers=1, patience=10)
    args = (tmp_path / "train.csv", tmp_path / "val.csv")
    ref = train_member(*args, tmp_path / "ref", ts, GS, seed=3, log=lambda m: None)

    class Killed(Exception):
        pass

    def kill_at_epoch_3(msg):
        if msg.startswith("epoch 3:"):
            raise Killed

    with pytest.raises(Killed):
        train_member(*args, tmp_path / "run", ts, GS, seed=3, log=kill_at_epoch_3)
    assert torch.load(tmp_path / "run" / STATE, weights_only=False)["state"]["epoch"] == 2
    logs = []
    got = train_member(*args, tmp_path / "run", ts, GS, seed=3, log=logs.append)
    assert any("resuming at epoch 2" in line for line in logs)
    assert got["best_val_mae_K"] == ref["best_val_mae_K"] and got["best_epoch"] == ref["best_epoch"]
    a, b = torch.load(tmp_path / "ref" / "best_model.pt"), torch.load(tmp_path / "run" / "best_model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cols = ["epoch", "train_loss", "train_mae_K", "val_loss", "val_mae_K"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ref" / "loss.csv")[cols],
                                  pd.read_csv(tmp_path / "run" / "loss.csv")[cols])


@pytest.mark.parametrize("model", ["chgnet", "sevenn"])
def test_formation_energies_against_experiment(model):
    """MLIP + pymatgen's MP elemental references (SevenNet's energies MP2020-corrected first) vs
    experimental standard enthalpies of formation (NIST-JANAF / CRC: MgO -601.6 kJ/mol =
    -3.118 eV/atom, NaCl -411.2 kJ/mol = -2.131 eV/atom)."""
    from tcflow.screen import mlip

    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.25), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    for s, exp in ((mgo, -3.118), (nacl, -2.131)):
        strained = s.copy()
        strained.apply_strain(0.04)
        r = mlip.relax(strained, fmax=0.05, model=model)
        assert r.converged and not r.error and r.steps > 0
        assert r.structure.volume == pytest.approx(s.volume, rel=0.06)  # back near the experimental cell
        assert abs(mlip.formation_energy_per_atom(r.energy_final_eV, s.composition, model) - exp) < 0.15
    with pytest.raises(ValueError, match="unknown MLIP 'mace'"):
        mlip.energy(mgo, "mace")
    # an element's own reference has formation energy 0
    refs = mlip.elemental_references()
    assert len(refs) == 89
    from pymatgen.core import Composition
    assert mlip.formation_energy_per_atom(2 * refs["Nb"], Composition("Nb2")) == pytest.approx(0.0)


def test_tc_cut_calibrated_on_validation(tmp_path):
    from tcflow.screen.alignn_screen import _criteria
    from tcflow.screen.calibrate import calibrate, classify, threshold_for_recall

    y = [0.0, 1.0, 6.0, 7.0, 8.0, 10.0]
    score = [0.5, 6.0, 4.0, 5.0, 9.0, 2.0]
    assert threshold_for_recall(y, score, 5.0, 0.5) == 5.0  # 9 and 5 find 2 of the 4 above 5 K
    c = classify(y, score, 5.0, 5.0, strict=False)
    assert (c["selected"], c["true_positives"], c["precision"], c["recall"]) == (3, 2, 2 / 3, 0.5)
    assert threshold_for_recall(y, score, 5.0, 1.0) == 2.0
    assert classify(y, score, 5.0, 5.0)["selected"] == 2  # the fixed cut is strict
    with pytest.raises(ValueError, match="no structure with Tc > 20.0 K"):
        threshold_for_recall(y, score, 20.0, 0.5)
    with pytest.raises(ValueError, match="1 of 6 scores are NaN"):
        threshold_for_recall(y, score[:5] + [float("nan")], 5.0, 0.5)
    # on a model and a split file: the record's threshold is one of the validation scores
    structs = [_nb(3.0 + 0.05 * i) for i in range(4)]
    _split_csv(tmp_path / "val.csv", structs, [0.0, 2.0, 6.0, 9.0])
    d, _ = _tiny(tmp_path)
    rec = calibrate(d, tmp_path / "val.csv", 5.0, 0.5)
    mean, _ = Ensemble.load(d).predict([build_graph(s, GS) for s in structs])
    assert rec["threshold_K"] in mean.tolist() and rec["validation"]["recall"] >= 0.5 and rec["n_validation"] == 4
    # the shard's criterion uses it: >= the threshold passes, with the reason naming the calibration
    row = {"tc_relaxed_K": rec["threshold_K"], "tc_relaxed_K_std": 0.0, "eform_eV_atom": -1.0}
    cfg = {"tc_min_K": 5.0, "tc_spread_k": 0.0, "eform_max_eV_atom": 0.0}
    _criteria(row, cfg, True, False, rec)
    assert row["pass_tc"] and row["reason"] == ""
    row["tc_relaxed_K"] = rec["threshold_K"] - 0.01
    _criteria(row, cfg, True, False, rec)
    assert not row["pass_tc"] and "the cut calibrated for recall 0.5 of Tc > 5.0 K" in row["reason"]


def test_dgl_era_archive_with_training_checkpoints_is_fetched_and_loads(tmp_path):
    """A jv_*-style archive (config.json with model `alignn`, checkpoint_<epoch>.pt holding
    {"model", "optimizer"}): the last epoch's model state becomes best_model.pt and loads strictly."""
    import zipfile

    from tcflow.screen.legacy import LegacyALIGNN, legacy_config
    from tcflow.screen.pretrained import fetch

    mcfg = {"name": "alignn", "alignn_layers": 1, "gcn_layers": 1, "hidden_features": 8, "embedding_features": 8}
    states = {}
    for epoch in (5, 12):
        torch.manual_seed(epoch)
        states[epoch] = LegacyALIGNN(legacy_config(mcfg, "test")).state_dict()
    archive = tmp_path / "jv_model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("jv_model/config.json", json.dumps({"model": mcfg, "neighbor_strategy": "k-nearest", "cutoff": 8.0,
                                                        "max_neighbors": 12}))
        for epoch, state in states.items():
            import io

            buf = io.BytesIO()
            torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}}, buf)
            zf.writestr(f"jv_model/checkpoint_{epoch}.pt", buf.getvalue())
    d = fetch("jv_model", tmp_path / "cache", "screen.models.tc.pretrained", url=archive.as_uri())
    assert json.loads((d / "download.json").read_text())["weights_from"] == "jv_model/checkpoint_12.pt"
    model, gs = load_model(d)
    assert gs.neighbor_strategy == "k-nearest" and gs.use_canonize
    assert all(torch.equal(v, states[12][k]) for k, v in model.state_dict().items())
    pairs = [build_graph(_nb(3.3), gs)]
    assert np.isfinite(Ensemble.load(d).predict(pairs)[0]).all()
