"""Periodic E(3)-invariant GNN encoder: crystal -> latent mean and log-variance."""

from __future__ import annotations

import torch
from torch import nn

from tcflow.generate.dataset import MAX_Z
from tcflow.generate.layers import GaussianRBF, Interaction, cosine_envelope, mlp
from tcflow.generate.neighbors import radius_graph_pbc


class Encoder(nn.Module):
    """Embeds atoms, runs ``num_layers`` interaction blocks on the periodic radius graph
    (distances only, hence invariant to rotation, translation and atom order), mean-pools per
    crystal and maps to (mu, logvar), each (B, latent_dim)."""

    def __init__(self, hidden: int, latent_dim: int, num_layers: int, num_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.embed = nn.Embedding(MAX_Z + 1, hidden)
        self.rbf = GaussianRBF(num_rbf, cutoff)
        self.blocks = nn.ModuleList(Interaction(hidden, num_rbf) for _ in range(num_layers))
        self.out = mlp([hidden, hidden, 2 * latent_dim])

    def forward(self, frac, z, lattice, natoms, batch):
        """frac (N, 3); z (N,) atomic numbers; lattice (B, 3, 3) Å; natoms (B,); batch (N,)."""
        e = radius_graph_pbc(frac, lattice, natoms, self.cutoff)
        rbf, env = self.rbf(e.dist), cosine_envelope(e.dist, self.cutoff)
        h = self.embed(z)
        for blk in self.blocks:
            h = blk(h, e.src, e.dst, rbf, env)
        pooled = torch.zeros(len(natoms), h.shape[1], device=h.device, dtype=h.dtype)
        pooled = pooled.index_add_(0, batch, h) / natoms[:, None].to(h.dtype)
        mu, logvar = self.out(pooled).chunk(2, dim=-1)
        return mu, logvar
