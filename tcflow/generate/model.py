"""CDVAE (Xie et al. 2021, arXiv:2110.06197) in plain torch: encoder -> latent z -> heads
(atom count, lattice, composition, Tc) and a noise-conditional score decoder.

Lattice targets are (a, b, c) / N^(1/3) and (alpha, beta, gamma), standardised with the
training set's mean and std (the "scalers"); Tc is standardised the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tcflow.generate.dataset import MAX_Z, Batch, scaled_lengths
from tcflow.generate.decoder import DECODERS
from tcflow.generate.encoder import Encoder
from tcflow.generate.lattice import cart_to_frac, frac_to_cart, min_image_cart_diff
from tcflow.generate.layers import gather, mlp


@dataclass
class HParams:
    """Model hyperparameters (stored as hparams.json next to the checkpoint)."""

    latent_dim: int = 64
    hidden_dim: int = 128
    encoder_layers: int = 3
    decoder_layers: int = 3
    decoder: str = "painn"
    num_rbf: int = 32
    cutoff_A: float = 6.0
    max_atoms: int = 20
    sigma_begin_A: float = 10.0
    sigma_end_A: float = 0.01
    num_noise_levels: int = 50
    type_sigma_begin: float = 5.0
    type_sigma_end: float = 0.01
    loss_weights: dict = field(default_factory=lambda: {
        "natoms": 1.0, "lattice": 10.0, "composition": 1.0, "coord": 10.0, "type": 1.0,
        "kl": 0.01, "property": 1.0})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scalers:
    """Mean and std of the 6 lattice targets and of Tc (K), from the training split."""

    lattice_mean: list
    lattice_std: list
    tc_mean: float
    tc_std: float

    @classmethod
    def fit(cls, batch: Batch) -> "Scalers":
        lat = torch.cat([scaled_lengths(batch.lengths, batch.natoms), batch.angles], -1)
        return cls(lat.mean(0).tolist(), lat.std(0).clamp_min(1e-3).tolist(),
                   float(batch.tc.mean()), float(batch.tc.std().clamp_min(1e-3)))

    def to_dict(self) -> dict:
        return asdict(self)


class CDVAE(nn.Module):
    def __init__(self, hp: HParams, scalers: Scalers):
        super().__init__()
        self.hp = hp
        self.scalers = scalers
        D, H = hp.latent_dim, hp.hidden_dim
        self.encoder = Encoder(H, D, hp.encoder_layers, hp.num_rbf, hp.cutoff_A)
        if hp.decoder not in DECODERS:
            raise ValueError(f"generate.model.decoder: unknown decoder {hp.decoder!r} "
                             f"(one of {', '.join(DECODERS)})")
        self.decoder = DECODERS[hp.decoder](H, D, hp.decoder_layers, hp.num_rbf, hp.cutoff_A)
        self.natoms_head = mlp([D, H, H, hp.max_atoms + 1])
        self.lattice_head = mlp([D, H, H, 6])
        self.composition_head = mlp([D, H, H, MAX_Z])
        self.property_head = mlp([D, H, H, 1])
        self.register_buffer("sigmas", torch.tensor(
            np.geomspace(hp.sigma_begin_A, hp.sigma_end_A, hp.num_noise_levels), dtype=torch.float32))
        self.register_buffer("type_sigmas", torch.tensor(
            np.linspace(hp.type_sigma_begin, hp.type_sigma_end, hp.num_noise_levels), dtype=torch.float32))
        self.register_buffer("lat_mean", torch.tensor(scalers.lattice_mean))
        self.register_buffer("lat_std", torch.tensor(scalers.lattice_std))

    # ---- latent heads -------------------------------------------------------------------
    def predict_tc(self, z: torch.Tensor) -> torch.Tensor:
        """Predicted Tc (B,) K from latents (B, D)."""
        return self.property_head(z).squeeze(-1) * self.scalers.tc_std + self.scalers.tc_mean

    def predict_natoms(self, z: torch.Tensor) -> torch.Tensor:
        """Most likely atom count (B,) in 1..max_atoms."""
        logits = self.natoms_head(z)
        logits[:, 0] = -torch.inf
        return logits.argmax(-1)

    def predict_lattice(self, z: torch.Tensor, natoms: torch.Tensor):
        """Lengths (B, 3) Å and angles (B, 3) deg for latents z and atom counts natoms."""
        out = self.lattice_head(z) * self.lat_std + self.lat_mean
        lengths = out[:, :3].clamp_min(0.1) * natoms.to(out.dtype)[:, None] ** (1.0 / 3.0)
        return lengths, out[:, 3:]

    def composition_probs(self, z: torch.Tensor) -> torch.Tensor:
        """Element probabilities (B, MAX_Z), index k = atomic number k + 1."""
        return self.composition_head(z).softmax(-1)

    def encode(self, b: Batch):
        return self.encoder(b.frac, b.z, b.lattice, b.natoms, b.batch)

    # ---- training loss ------------------------------------------------------------------
    def losses(self, b: Batch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Every loss term (scalars) and their weighted sum ``loss`` for one batch."""
        dev = b.frac.device

        def randn(*shape):
            return torch.randn(*shape, generator=generator, device="cpu").to(dev)

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device="cpu").to(dev)

        mu, logvar = self.encode(b)
        z = mu + torch.exp(0.5 * logvar) * randn(*mu.shape)
        out = {}
        out["kl"] = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean()
        out["natoms"] = F.cross_entropy(self.natoms_head(z), b.natoms.clamp(max=self.hp.max_atoms))
        lat_t = (torch.cat([scaled_lengths(b.lengths, b.natoms), b.angles], -1) - self.lat_mean) / self.lat_std
        out["lattice"] = F.mse_loss(self.lattice_head(z), lat_t)
        comp_logits = self.composition_head(z)
        out["composition"] = F.cross_entropy(gather(comp_logits, b.batch), b.z - 1)
        tc_t = (b.tc - self.scalers.tc_mean) / self.scalers.tc_std
        out["property"] = F.mse_loss(self.property_head(z).squeeze(-1), tc_t)

        # denoising: one noise level per crystal, Gaussian noise on Cartesian coordinates
        level = (rand(b.num_graphs) * self.hp.num_noise_levels).long().clamp(max=self.hp.num_noise_levels - 1)
        sigma = self.sigmas[level]
        cart = frac_to_cart(b.frac, b.lattice, b.batch)
        noisy_cart = cart + randn(*cart.shape) * sigma[b.batch, None]
        noisy_frac = torch.remainder(cart_to_frac(noisy_cart, b.lattice, b.batch), 1.0)
        target = min_image_cart_diff(b.frac, noisy_frac, b.lattice, b.batch) / sigma[b.batch, None]
        # type noise: mix the true one-hot with the predicted composition, then sample
        tsig = self.type_sigmas[level][b.batch, None]
        probs = F.one_hot(b.z - 1, MAX_Z).to(cart.dtype) + tsig * comp_logits.detach().softmax(-1)[b.batch]
        u = rand(len(b.z), 1)
        noisy_types = (probs.cumsum(-1) / probs.sum(-1, keepdim=True) < u).sum(-1).clamp(max=MAX_Z - 1) + 1
        eps, type_logits = self.decoder(z, noisy_types, noisy_frac, b.lattice, b.natoms, b.batch, sigma)
        out["coord"] = 0.5 * ((eps - target) ** 2).sum(-1).mean()
        out["type"] = F.cross_entropy(type_logits, b.z - 1)
        w = self.hp.loss_weights
        out["loss"] = sum(w[k] * out[k] for k in w)
        return out
