"""Annealed Langevin dynamics decoding (CDVAE's sampler): latent z -> crystal.

From z the heads give the atom count, the lattice and the composition; atom positions start
uniformly random and follow the decoder's score through geometrically decreasing noise levels
sigma_1 > ... > sigma_L (Å), ``steps_per_level`` steps each, with step size
alpha_l = step_lr * (sigma_l / sigma_L)^2 (Song & Ermon 2019). Atom types are re-read from the
decoder's type head after every step, as CDVAE does. Decoder evaluations per crystal =
``num_levels * steps_per_level``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tcflow.generate.lattice import cart_to_frac, frac_to_cart, params_to_matrix
from tcflow.generate.model import CDVAE


@dataclass
class LangevinSettings:
    """num_levels: noise levels; steps_per_level: steps per level; step_lr: base step size
    (dimensionless, scaled by (sigma/sigma_min)^2); sigma_max_A / sigma_min_A: noise range (Å);
    update_types: re-read atom types from the decoder after each step; compile: run the
    decoder's message passing through ``torch.compile`` (same function, fused kernels: faster
    for long runs, about a minute of compilation first; rounding differs, so the chaotic
    Langevin trajectories, hence the samples, differ from an eager run's)."""

    num_levels: int = 50
    steps_per_level: int = 10
    step_lr: float = 1e-5
    sigma_max_A: float = 10.0
    sigma_min_A: float = 0.01
    update_types: bool = True
    compile: bool = False

    @property
    def evaluations(self) -> int:
        return self.num_levels * self.steps_per_level


@dataclass
class Decoded:
    """Decoded crystals: frac (N, 3) in [0,1); z (N,) atomic numbers; natoms (B,);
    lattice (B, 3, 3) Å, rows = vectors. CPU tensors."""

    frac: torch.Tensor
    z: torch.Tensor
    natoms: torch.Tensor
    lattice: torch.Tensor

    def split(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per crystal (lattice (3,3), z (n,), frac (n,3)) as numpy arrays."""
        out, s = [], 0
        for g, n in enumerate(self.natoms.tolist()):
            out.append((self.lattice[g].numpy(), self.z[s:s + n].numpy(), self.frac[s:s + n].numpy()))
            s += n
        return out


def allocate_types(probs: torch.Tensor, natoms: torch.Tensor) -> torch.Tensor:
    """Atom types (N,) from element probabilities (B, MAX_Z): N*p rounded by largest remainder,
    so every crystal gets exactly its atom count with the most probable stoichiometry."""
    out = []
    for p, n in zip(probs, natoms.tolist()):
        want = p * n
        counts = torch.floor(want).long()
        rest = n - int(counts.sum())
        if rest > 0:
            counts[torch.topk(want - counts, rest).indices] += 1
        out.append(torch.repeat_interleave(torch.arange(1, len(p) + 1, device=p.device), counts))
    return torch.cat(out)


@torch.no_grad()
def langevin_decode(model: CDVAE, z: torch.Tensor, ls: LangevinSettings,
                    generator: torch.Generator) -> Decoded:
    """Decode latents z (B, D) into crystals. ``generator`` (CPU) makes it reproducible."""
    dev = z.device
    if ls.compile:
        model.decoder.compile_network()
    natoms = model.predict_natoms(z)
    lengths, angles = model.predict_lattice(z, natoms)
    lattice = params_to_matrix(lengths, angles)
    types = allocate_types(model.composition_probs(z), natoms)
    batch = torch.repeat_interleave(torch.arange(len(z), device=dev), natoms)
    frac = torch.rand(len(types), 3, generator=generator).to(dev)
    sigmas = np.geomspace(ls.sigma_max_A, ls.sigma_min_A, ls.num_levels)
    for sigma in sigmas:
        alpha = ls.step_lr * (sigma / ls.sigma_min_A) ** 2
        sig = torch.full((len(z),), float(sigma), device=dev)
        for _ in range(ls.steps_per_level):
            eps, type_logits = model.decoder(z, types, frac, lattice, natoms, batch, sig)
            noise = torch.randn(frac.shape, generator=generator).to(dev)
            cart = frac_to_cart(frac, lattice, batch) + alpha * eps / sigma + np.sqrt(2 * alpha) * noise
            frac = torch.remainder(cart_to_frac(cart, lattice, batch), 1.0)
            if ls.update_types:
                types = type_logits.argmax(-1) + 1
    return Decoded(frac=frac.cpu(), z=types.cpu(), natoms=natoms.cpu(), lattice=lattice.cpu())
