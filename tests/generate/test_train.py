"""Training: the loss falls on a tiny overfit set; a killed run resumes exactly."""

import pandas as pd
import pytest
import torch

from tcflow.generate.model import CDVAE, HParams, Scalers
from tcflow.generate.dataset import collate
from tcflow.generate.train import TrainSettings, load_model, train

SMALL = dict(latent_dim=8, hidden_dim=32, encoder_layers=2, decoder_layers=2, num_rbf=16, cutoff_A=5.0)


def test_loss_falls_on_tiny_overfit_set(val_crystals):
    crystals = val_crystals[:4]
    torch.manual_seed(0)
    model = CDVAE(HParams(**SMALL), Scalers.fit(collate(crystals)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    b = collate(crystals)
    gen = torch.Generator().manual_seed(0)

    def eval_loss():
        with torch.no_grad():
            return float(model.losses(b, generator=torch.Generator().manual_seed(7))["loss"])

    before = eval_loss()
    for _ in range(60):
        out = model.losses(b, generator=gen)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    after = eval_loss()
    assert after < 0.5 * before


class Killed(Exception):
    pass


def _kill_at(epoch):
    def cb(e):
        if e == epoch:
            raise Killed
    return cb


def test_resume_after_kill_continues_identically(tmp_path, split_csv):
    # tiny CSVs: 12 training and 6 validation crystals of the mirror
    tr, va = tmp_path / "train.csv", tmp_path / "val.csv"
    pd.read_csv(split_csv("train")).head(12).to_csv(tr, index=False)
    pd.read_csv(split_csv("val")).head(6).to_csv(va, index=False)
    hp, ts = HParams(**SMALL), TrainSettings(epochs=3, batch_size=5, lr=1e-3, patience=10)
    train(tr, va, tmp_path / "full", hp, ts, seed=3, device="cpu", log=lambda s: None)
    with pytest.raises(Killed):
        train(tr, va, tmp_path / "cut", hp, ts, seed=3, device="cpu", log=lambda s: None,
              on_epoch_end=_kill_at(1))
    assert not (tmp_path / "cut" / "model.pt").exists()  # a killed run leaves no final model
    msgs = []
    train(tr, va, tmp_path / "cut", hp, ts, seed=3, device="cpu", log=msgs.append)
    assert msgs[0].startswith("resuming at epoch 1")
    full = pd.read_csv(tmp_path / "full" / "loss.csv")
    cut = pd.read_csv(tmp_path / "cut" / "loss.csv")
    assert list(cut["epoch"]) == [1, 2, 3]
    cols = [c for c in full.columns if c.startswith(("train_", "val_"))]
    pd.testing.assert_frame_equal(cut[cols], full[cols], check_exact=True)
    m1, m2 = load_model(tmp_path / "full"), load_model(tmp_path / "cut")
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert (tmp_path / "cut" / "loss.png").stat().st_size > 0


def test_checkpoint_of_other_run_is_refused(tmp_path, split_csv):
    tr, va = tmp_path / "train.csv", tmp_path / "val.csv"
    pd.read_csv(split_csv("train")).head(6).to_csv(tr, index=False)
    pd.read_csv(split_csv("val")).head(3).to_csv(va, index=False)
    ts = TrainSettings(epochs=1, batch_size=3)
    train(tr, va, tmp_path / "m", HParams(**SMALL), ts, seed=0, device="cpu", log=lambda s: None)
    with pytest.raises(ValueError, match="last.ckpt"):
        train(tr, va, tmp_path / "m", HParams(**SMALL), ts, seed=1, device="cpu", log=lambda s: None)


def test_bad_cif_names_file_and_id(tmp_path, split_csv):
    from tcflow.generate.dataset import read_crystals

    df = pd.read_csv(split_csv("val")).head(3)
    df.loc[1, "cif"] = "data_broken\n_cell_length_a 3\n"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(ValueError, match=rf"bad.csv.*{df.loc[1, 'material_id']}"):
        read_crystals(bad)


def test_unknown_decoder_is_named():
    with pytest.raises(ValueError, match="generate.model.decoder: unknown decoder 'gemnet'"):
        CDVAE(HParams(**SMALL, decoder="gemnet"), Scalers([0.0] * 6, [1.0] * 6, 0.0, 1.0))


def test_model_saved_before_the_decoder_key_loads_as_schnet(tmp_path):
    """Checkpoints written before ``model.decoder`` existed hold the distance-only decoder."""
    hp = HParams(**SMALL, decoder="schnet")
    model = CDVAE(hp, Scalers([0.0] * 6, [1.0] * 6, 0.0, 1.0))
    old = {k: v for k, v in hp.to_dict().items() if k != "decoder"}
    torch.save({"hparams": old, "scalers": model.scalers.to_dict(), "model": model.state_dict()},
               tmp_path / "model.pt")
    loaded = load_model(tmp_path)
    assert loaded.hp.decoder == "schnet"
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
