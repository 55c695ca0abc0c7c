"""Noise-conditional score decoder.

Given the latent z, (noisy) atom types, noisy fractional coordinates, the lattice and the
noise level sigma, it predicts for every atom

- a coordinate score, in units of 1/sigma: eps (N, 3) ~ (x_clean - x_noisy) / sigma (Cartesian,
  minimum image). It is a sum of per-edge scalars times edge unit vectors, hence rotates with
  the crystal (E(3)-equivariant) and is unchanged by translations;
- logits over element types (N, MAX_Z), index k = atomic number k + 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tcflow.generate.dataset import MAX_Z
from tcflow.generate.layers import (AGG_SCALE, EquivariantInteraction, GaussianRBF, Interaction,
                                    cosine_envelope, gather, mlp)
from tcflow.generate.neighbors import radius_graph_pbc

#: Number of sin/cos frequencies used to embed log(sigma).
SIGMA_FREQS = 4


def sigma_features(sigma: torch.Tensor) -> torch.Tensor:
    """(B,) noise levels Å -> (B, 1 + 2*SIGMA_FREQS) smooth features of log sigma."""
    ls = torch.log(sigma)[:, None]
    k = torch.arange(1, SIGMA_FREQS + 1, device=sigma.device, dtype=sigma.dtype)[None]
    return torch.cat([ls, torch.sin(k * ls), torch.cos(k * ls)], -1)


class _DecoderBase(nn.Module):
    """What both decoders share: atom embedding, the (z, sigma) conditioning, the radial basis,
    the periodic graph and the edge-sum part of the score."""

    def __init__(self, hidden: int, latent_dim: int, num_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.embed = nn.Embedding(MAX_Z + 1, hidden)
        self.cond = mlp([latent_dim + 1 + 2 * SIGMA_FREQS, hidden, hidden])
        self.rbf = GaussianRBF(num_rbf, cutoff)

    def _graph(self, zlat, types, frac, lattice, natoms, batch, sigma):
        """Edges, their basis (E, R) and envelope (E,), unit vectors (E, 3), the per-atom
        conditioning (N, H) and the initial atom features (N, H)."""
        e = radius_graph_pbc(frac, lattice, natoms, self.cutoff)
        rbf, env = self.rbf(e.dist), cosine_envelope(e.dist, self.cutoff)
        unit = e.vec / e.dist.clamp_min(1e-6)[:, None]
        cond = gather(self.cond(torch.cat([zlat, sigma_features(sigma)], -1)), batch)
        return e, rbf, env, unit, cond, self.embed(types) + cond

    def _edge_score(self, h, e, rbf, env, unit, frac):
        """(N, 3): sum over each atom's edges of a learned scalar times the edge unit vector."""
        w = self.edge_out(torch.cat([gather(h, e.src), gather(h, e.dst), rbf], -1)).squeeze(-1) * env
        return torch.zeros_like(frac).index_add_(0, e.src, w[:, None] * unit) / math.sqrt(AGG_SCALE)


class ScoreDecoder(_DecoderBase):
    """Distance-only (SchNet-like) blocks; the score is a sum over edges of learned scalars
    times edge unit vectors (``model.decoder: schnet``)."""

    def __init__(self, hidden: int, latent_dim: int, num_layers: int, num_rbf: int, cutoff: float):
        super().__init__(hidden, latent_dim, num_rbf, cutoff)
        self.blocks = nn.ModuleList(Interaction(hidden, num_rbf) for _ in range(num_layers))
        self.edge_out = mlp([2 * hidden + num_rbf, hidden, 1])
        self.type_out = mlp([hidden, hidden, MAX_Z])

    def forward(self, zlat, types, frac, lattice, natoms, batch, sigma):
        """zlat (B, D); types (N,) atomic numbers; frac (N, 3); lattice (B, 3, 3) Å;
        natoms (B,); batch (N,); sigma (B,) Å. Returns (eps (N, 3), type_logits (N, MAX_Z))."""
        e, rbf, env, unit, cond, h = self._graph(zlat, types, frac, lattice, natoms, batch, sigma)
        for blk in self.blocks:
            h = blk(h + cond, e.src, e.dst, rbf, env)
        return self._edge_score(h, e, rbf, env, unit, frac), self.type_out(h)


class EquivariantScoreDecoder(_DecoderBase):
    """Blocks with vector features (:class:`EquivariantInteraction`, ``model.decoder: painn``).

    The coordinate score is the per-atom vector features mapped to one channel plus the same
    edge sum as :class:`ScoreDecoder`; both rotate with the crystal. Same inputs and outputs
    as :class:`ScoreDecoder`.
    """

    def __init__(self, hidden: int, latent_dim: int, num_layers: int, num_rbf: int, cutoff: float):
        super().__init__(hidden, latent_dim, num_rbf, cutoff)
        self.blocks = nn.ModuleList(EquivariantInteraction(hidden, num_rbf) for _ in range(num_layers))
        self.vec_gate = mlp([hidden, hidden, hidden])
        self.vec_out = nn.Linear(hidden, 1, bias=False)
        self.edge_out = mlp([2 * hidden + num_rbf, hidden, 1])
        self.type_out = mlp([hidden, hidden, MAX_Z])

    def forward(self, zlat, types, frac, lattice, natoms, batch, sigma):
        """As :meth:`ScoreDecoder.forward`."""
        e, rbf, env, unit, cond, s = self._graph(zlat, types, frac, lattice, natoms, batch, sigma)
        v = torch.zeros(len(types), 3, s.shape[1], device=s.device, dtype=s.dtype)
        for blk in self.blocks:
            s, v = blk(s + cond, v, e.src, e.dst, rbf, env, unit)
        eps = self.vec_out(v * self.vec_gate(s)[:, None, :]).squeeze(-1)
        return eps + self._edge_score(s, e, rbf, env, unit, frac), self.type_out(s)


#: ``model.decoder`` names -> decoder classes.
DECODERS = {"schnet": ScoreDecoder, "painn": EquivariantScoreDecoder}
