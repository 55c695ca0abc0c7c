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
    the periodic graph and the edge-sum part of the score.

    ``forward`` builds the periodic graph (eager: its size depends on the data) and hands the
    edges to ``network``, the message passing proper. :meth:`compile_network` swaps in a
    ``torch.compile``-d network for inference (the sampler's ``langevin.compile``)."""

    def __init__(self, hidden: int, latent_dim: int, num_rbf: int, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.embed = nn.Embedding(MAX_Z + 1, hidden)
        self.cond = mlp([latent_dim + 1 + 2 * SIGMA_FREQS, hidden, hidden])
        self.rbf = GaussianRBF(num_rbf, cutoff)

    def forward(self, zlat, types, frac, lattice, natoms, batch, sigma):
        """zlat (B, D); types (N,) atomic numbers; frac (N, 3); lattice (B, 3, 3) Å;
        natoms (B,); batch (N,); sigma (B,) Å. Returns (eps (N, 3), type_logits (N, MAX_Z))."""
        e = radius_graph_pbc(frac, lattice, natoms, self.cutoff)
        net = self.__dict__.get("_compiled_network", self.network)
        return net(zlat, types, batch, sigma, e.src, e.dst, e.vec, e.dist)

    def compile_network(self) -> None:
        """Use ``torch.compile(network, dynamic=True)`` from now on (fused kernels; the first
        call compiles, for about a minute on a CPU). Kept outside the module's state."""
        if "_compiled_network" not in self.__dict__:
            self.__dict__["_compiled_network"] = torch.compile(self.network, dynamic=True)

    def _inputs(self, zlat, types, batch, sigma, dist, vec):
        """Edge basis (E, R) and envelope (E,), unit vectors (E, 3), the per-atom conditioning
        (N, H) and the initial atom features (N, H)."""
        rbf, env = self.rbf(dist), cosine_envelope(dist, self.cutoff)
        unit = vec / dist.clamp_min(1e-6)[:, None]
        cond = gather(self.cond(torch.cat([zlat, sigma_features(sigma)], -1)), batch)
        return rbf, env, unit, cond, self.embed(types) + cond

    def _edge_score(self, h, src, dst, rbf, env, unit):
        """(N, 3): sum over each atom's edges of a learned scalar times the edge unit vector.

        The scalar is ``edge_out`` of [h_src, h_dst, rbf]; its first (linear) layer is applied
        to the atoms before gathering to the edges, which is the same function at a fraction
        of the cost (E x 2H x H multiply-adds become N x 2H x H)."""
        first, rest = self.edge_out[0], self.edge_out[1:]
        H = h.shape[1]
        w_src, w_dst, w_rbf = first.weight.split([H, H, first.in_features - 2 * H], 1)
        hs, hd = (h @ torch.cat([w_src, w_dst]).T).split(w_src.shape[0], 1)
        pre = torch.addmm(first.bias, rbf, w_rbf.T) + gather(hs, src) + gather(hd, dst)
        w = rest(pre).squeeze(-1) * env
        out = torch.zeros(len(h), 3, device=h.device, dtype=h.dtype)
        return out.index_add_(0, src, w[:, None] * unit, alpha=1.0 / math.sqrt(AGG_SCALE))


class ScoreDecoder(_DecoderBase):
    """Distance-only (SchNet-like) blocks; the score is a sum over edges of learned scalars
    times edge unit vectors (``model.decoder: schnet``)."""

    def __init__(self, hidden: int, latent_dim: int, num_layers: int, num_rbf: int, cutoff: float):
        super().__init__(hidden, latent_dim, num_rbf, cutoff)
        self.blocks = nn.ModuleList(Interaction(hidden, num_rbf) for _ in range(num_layers))
        self.edge_out = mlp([2 * hidden + num_rbf, hidden, 1])
        self.type_out = mlp([hidden, hidden, MAX_Z])

    def network(self, zlat, types, batch, sigma, src, dst, vec, dist):
        """Edges src -> dst with vectors vec (E, 3) Å and lengths dist (E,) Å; other inputs and
        outputs as :meth:`forward`."""
        rbf, env, unit, cond, h = self._inputs(zlat, types, batch, sigma, dist, vec)
        for blk in self.blocks:
            h = blk(h + cond, src, dst, rbf, env)
        return self._edge_score(h, src, dst, rbf, env, unit), self.type_out(h)


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

    def network(self, zlat, types, batch, sigma, src, dst, vec, dist):
        """As :meth:`ScoreDecoder.network`."""
        rbf, env, unit, cond, s = self._inputs(zlat, types, batch, sigma, dist, vec)
        v = None                                   # vector features start at zero
        for blk in self.blocks:
            s, v = blk(s + cond, v, src, dst, rbf, env, unit)
        eps = self.vec_out(v * self.vec_gate(s)[:, None, :]).squeeze(-1)
        return eps + self._edge_score(s, src, dst, rbf, env, unit), self.type_out(s)


#: ``model.decoder`` names -> decoder classes.
DECODERS = {"schnet": ScoreDecoder, "painn": EquivariantScoreDecoder}
