"""Physics the model must respect: invariance of the encoder, equivariance of the scores."""

import math

import pytest
import torch

from tcflow.generate.dataset import collate
from tcflow.generate.model import CDVAE, HParams, Scalers

SMALL = dict(latent_dim=8, hidden_dim=32, encoder_layers=2, decoder_layers=2, num_rbf=16, cutoff_A=5.0)


def _rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.det(q))  # proper rotation


@pytest.fixture(scope="module")
def setup(val_crystals):
    torch.manual_seed(0)
    b = collate(val_crystals[:6])
    model = CDVAE(HParams(**SMALL), Scalers.fit(b)).double().eval()
    b.frac, b.lattice = b.frac.double(), b.lattice.double()
    return model, b


def _permutation(b):
    """A permutation of atoms inside each crystal (atoms stay grouped by crystal)."""
    g = torch.Generator().manual_seed(1)
    perm, s = [], 0
    for n in b.natoms.tolist():
        perm.append(s + torch.randperm(n, generator=g))
        s += n
    return torch.cat(perm)


def test_encoder_invariant(setup):
    model, b = setup
    with torch.no_grad():
        mu, _ = model.encoder(b.frac, b.z, b.lattice, b.natoms, b.batch)
        R = _rotation(0)
        mu_rot, _ = model.encoder(b.frac, b.z, b.lattice @ R.T, b.natoms, b.batch)
        shift = torch.tensor([0.31, -0.17, 0.55], dtype=torch.float64)
        mu_tr, _ = model.encoder(torch.remainder(b.frac + shift, 1.0), b.z, b.lattice, b.natoms, b.batch)
        p = _permutation(b)
        mu_perm, _ = model.encoder(b.frac[p], b.z[p], b.lattice, b.natoms, b.batch)
    for other in (mu_rot, mu_tr, mu_perm):
        torch.testing.assert_close(other, mu, atol=1e-9, rtol=1e-7)
    assert mu.abs().sum() > 0


@pytest.mark.parametrize("decoder", ["painn", "schnet"])
def test_decoder_scores_rotate_and_types_invariant(val_crystals, decoder):
    torch.manual_seed(0)
    b = collate(val_crystals[:6])
    model = CDVAE(HParams(**SMALL, decoder=decoder), Scalers.fit(b)).double().eval()
    b.frac, b.lattice = b.frac.double(), b.lattice.double()
    zlat = torch.randn(b.num_graphs, SMALL["latent_dim"], dtype=torch.float64)
    sigma = torch.full((b.num_graphs,), 0.3, dtype=torch.float64)
    with torch.no_grad():
        eps, logits = model.decoder(zlat, b.z, b.frac, b.lattice, b.natoms, b.batch, sigma)
        R = _rotation(3)
        eps_r, logits_r = model.decoder(zlat, b.z, b.frac, b.lattice @ R.T, b.natoms, b.batch, sigma)
        shift = torch.tensor([0.5, 0.25, -0.4], dtype=torch.float64)
        eps_t, _ = model.decoder(zlat, b.z, torch.remainder(b.frac + shift, 1.0), b.lattice, b.natoms, b.batch, sigma)
        p = _permutation(b)
        eps_p, logits_p = model.decoder(zlat, b.z[p], b.frac[p], b.lattice, b.natoms, b.batch, sigma)
    torch.testing.assert_close(eps_r, eps @ R.T, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(logits_r, logits, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(eps_t, eps, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(eps_p, eps[p], atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(logits_p, logits[p], atol=1e-9, rtol=1e-7)
    assert eps.abs().max() > 0


def test_encoder_periodic_supercell_images(setup):
    """Moving an atom by a whole lattice vector changes nothing (periodicity)."""
    model, b = setup
    frac2 = b.frac.clone()
    frac2[0] += torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    with torch.no_grad():
        mu, _ = model.encoder(b.frac, b.z, b.lattice, b.natoms, b.batch)
        mu2, _ = model.encoder(frac2, b.z, b.lattice, b.natoms, b.batch)
    torch.testing.assert_close(mu2, mu, atol=1e-9, rtol=1e-7)


def test_lattice_roundtrip():
    from tcflow.generate.lattice import matrix_to_params, params_to_matrix

    lengths = torch.tensor([[3.1, 4.2, 5.3]], dtype=torch.float64)
    angles = torch.tensor([[80.0, 95.0, 110.0]], dtype=torch.float64)
    L = params_to_matrix(lengths, angles)
    l2, a2 = matrix_to_params(L)
    torch.testing.assert_close(l2, lengths)
    torch.testing.assert_close(a2, angles)
    vol = 3.1 * 4.2 * 5.3 * math.sqrt(1 - sum(math.cos(math.radians(x)) ** 2 for x in (80, 95, 110))
                                      + 2 * math.prod(math.cos(math.radians(x)) for x in (80, 95, 110)))
    assert float(torch.det(L)) == pytest.approx(vol)
