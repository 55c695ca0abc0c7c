"""Sampling: latent optimisation raises predicted Tc, Langevin decoding gives crystals
pymatgen reads, validity is recorded per sample, shards merge, metrics compute."""

import pandas as pd
import pytest
import torch

from tcflow.generate.model import HParams
from tcflow.generate.optimise import OptimiseSettings, optimise_latents
from tcflow.generate.sample import COLUMNS, SampleSettings, merge_manifests, sample_shard
from tcflow.generate.sampler import LangevinSettings, allocate_types, langevin_decode
from tcflow.generate.train import TrainSettings, load_model, train

SMALL = dict(latent_dim=8, hidden_dim=32, encoder_layers=2, decoder_layers=2, num_rbf=16, cutoff_A=5.0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, split_csv):
    d = tmp_path_factory.mktemp("gen")
    tr, va = d / "train.csv", d / "val.csv"
    pd.read_csv(split_csv("train")).head(20).to_csv(tr, index=False)
    pd.read_csv(split_csv("val")).head(5).to_csv(va, index=False)
    train(tr, va, d / "model", HParams(**SMALL), TrainSettings(epochs=2, batch_size=10),
          seed=0, device="cpu", log=lambda s: None)
    return d


def test_latent_optimisation_raises_predicted_tc(model_dir):
    model = load_model(model_dir / "model")
    z0 = torch.randn(16, SMALL["latent_dim"], generator=torch.Generator().manual_seed(0))
    zs = optimise_latents(model, z0, OptimiseSettings(steps=30, lr=0.05, decode_every=10))
    assert sorted(zs) == [10, 20, 30]
    with torch.no_grad():
        tc = [float(model.predict_tc(zs[k]).mean()) for k in (10, 20, 30)]
        tc0 = float(model.predict_tc(z0).mean())
    assert tc0 < tc[0] < tc[1] < tc[2]


def test_allocate_types_keeps_counts():
    p = torch.zeros(2, 100)
    p[0, [40, 6]] = torch.tensor([0.74, 0.26])  # Nb (41), N (7)
    p[1, 11] = 1.0                              # Mg
    t = allocate_types(p, torch.tensor([4, 3]))
    assert t.tolist() == [7, 41, 41, 41, 12, 12, 12]


def test_shards_cifs_manifest_merge_and_metrics(model_dir, tmp_path, monkeypatch, split_csv):
    from pymatgen.core import Structure

    from tcflow.generate.metrics import MetricSettings, generation_metrics, read_structures

    monkeypatch.chdir(tmp_path)
    ls = LangevinSettings(num_levels=5, steps_per_level=2, step_lr=1e-3)
    ss = SampleSettings(starts_per_shard=5, batch_size=3)
    os_ = OptimiseSettings(steps=4, lr=0.05, decode_every=2)
    dfs = [sample_shard(model_dir / "model", model_dir / "train.csv", k, f"shards/{k}", ss, os_, ls,
                        seed=0, device="cpu", log=lambda s: None) for k in (0, 1)]
    assert [len(d) for d in dfs] == [10, 10]
    again = sample_shard(model_dir / "model", model_dir / "train.csv", 1, "again", ss, os_, ls,
                         seed=0, device="cpu", log=lambda s: None)
    pd.testing.assert_frame_equal(again.drop(columns="cif"), dfs[1].drop(columns="cif"))  # seeded
    merged = merge_manifests(["shards/0/manifest.csv", "shards/1/manifest.csv"], "samples.csv")
    assert list(merged.columns) == list(COLUMNS)
    assert merged["id"].str.fullmatch(r"[A-Za-z0-9_.-]+").all()
    assert set(merged["latent_step"]) == {2, 4}
    for p, n in zip(merged["cif"], merged["natoms"]):
        assert len(Structure.from_file(p)) == n
    with pytest.raises(ValueError, match="duplicate sample id"):
        merge_manifests(["shards/0/manifest.csv", "shards/0/manifest.csv"], "dup.csv")
    ref = read_structures(split_csv("test"), limit=10)
    m = generation_metrics(merged, ref, MetricSettings(), train_structs=ref)
    assert m["n_samples"] == 20
    assert 0.0 <= m["cov_recall"] <= 1.0 and sum(m["spacegroups"].values()) == 20
    assert m["calibration"]["cov_recall"] == 1.0  # a set covers itself


def test_validity_records():
    from pymatgen.core import Lattice, Structure

    from tcflow.generate.validity import describe

    nacl = Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4,
                     [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                      [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])
    r = describe(nacl, 0.5, 0.1, 5.0)
    assert r["struct_valid"] and r["comp_valid"] and r["spacegroup"] == 225
    assert r["min_dist_A"] == pytest.approx(2.82)
    assert r["density_g_cm3"] == pytest.approx(2.16, abs=0.02)
    squashed = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    r = describe(squashed, 0.5, 0.1, 5.0)
    assert not r["struct_valid"] and r["min_dist_A"] == pytest.approx(0.2)
    assert not describe(Structure(Lattice.cubic(4.0), ["Na", "Na", "Cl", "Cl", "Cl"],
                                  [[0, 0, 0], [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]]),
                        0.5, 0.1, 5.0)["comp_valid"]  # Na2Cl3 is not charge neutral


def test_compiled_decoder_computes_the_same_scores(model_dir, val_crystals):
    """``langevin.compile``: the torch.compile-d message passing is the eager network (up to
    float32 rounding) on batches of different sizes, and the model's state is untouched."""
    from tcflow.generate.dataset import collate

    model = load_model(model_dir / "model")
    keys = sorted(model.state_dict())
    eager = []
    for n in (3, 7):
        b = collate(val_crystals[:n])
        z = torch.randn(n, SMALL["latent_dim"], generator=torch.Generator().manual_seed(n))
        sig = torch.full((n,), 0.3)
        with torch.no_grad():
            eager.append(model.decoder(z, b.z, b.frac, b.lattice, b.natoms, b.batch, sig))
    model.decoder.compile_network()
    for n, (eps0, logits0) in zip((3, 7), eager):
        b = collate(val_crystals[:n])
        z = torch.randn(n, SMALL["latent_dim"], generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            eps, logits = model.decoder(z, b.z, b.frac, b.lattice, b.natoms, b.batch, torch.full((n,), 0.3))
        assert torch.allclose(eps, eps0, rtol=1e-4, atol=1e-5 * float(eps0.abs().max()))
        assert torch.allclose(logits, logits0, rtol=1e-4, atol=1e-5 * float(logits0.abs().max()))
    assert sorted(model.state_dict()) == keys
    dec = langevin_decode(model, torch.randn(4, SMALL["latent_dim"]),
                          LangevinSettings(num_levels=3, steps_per_level=2, compile=True),
                          torch.Generator().manual_seed(0))
    assert dec.frac.shape == (int(dec.natoms.sum()), 3) and bool(((dec.frac >= 0) & (dec.frac < 1)).all())
