"""Building blocks shared by the encoder and the score decoder (torch only)."""

from __future__ import annotations

import math

import torch
from torch import nn

#: Sums of edge messages are divided by this (a typical neighbour count within 6-7 Å),
#: keeping activations O(1) without making the network blind to coordination number.
AGG_SCALE = 32.0


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` along dim 0 with a deterministic backward: the gradient of advanced
    indexing is accumulated in parallel on CPU in a varying order (runs, and a resumed run,
    would drift apart in the last bits); ``index_select``'s gradient is an ordered
    ``index_add_``."""
    return torch.index_select(x, 0, index)


def mlp(dims: list[int], act: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Linear layers with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for k in range(len(dims) - 1):
        layers.append(nn.Linear(dims[k], dims[k + 1]))
        if k < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class GaussianRBF(nn.Module):
    """Distances d (E,) Å -> (E, num) Gaussians centred on a grid 0..cutoff Å."""

    def __init__(self, num: int, cutoff: float):
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, num))
        self.gamma = 1.0 / (cutoff / (num - 1)) ** 2

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (d[:, None] - self.centers[None]) ** 2)


def cosine_envelope(d: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Smooth cutoff (E,): 1 at d = 0, 0 at and beyond ``cutoff`` Å."""
    return 0.5 * (torch.cos(math.pi * d / cutoff) + 1.0) * (d < cutoff)


class Interaction(nn.Module):
    """Continuous-filter convolution (SchNet-like), invariant: uses distances only.

    h (N, H); src/dst (E,); rbf (E, R); env (E,) -> updated h (N, H).
    """

    def __init__(self, hidden: int, num_rbf: int):
        super().__init__()
        self.filter = mlp([num_rbf, hidden, hidden])
        self.lin_in = nn.Linear(hidden, hidden)
        self.update = mlp([2 * hidden, hidden, hidden])
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h, src, dst, rbf, env):
        msg = gather(self.lin_in(h), dst) * self.filter(rbf) * env[:, None]
        agg = torch.zeros_like(h).index_add_(0, src, msg, alpha=1.0 / AGG_SCALE)
        return self.norm(h + self.update(torch.cat([h, agg], -1)))


class EquivariantInteraction(nn.Module):
    """Message passing with scalar (N, H) and vector (N, 3, H) features, in the manner of
    PaiNN (Schütt, Unke & Gastegger 2021, arXiv:2102.03150).

    Vector features rotate with the crystal: they are built from edge unit vectors and
    combined only linearly across channels or scaled by invariant gates; scalars see the
    vectors only through norms and dot products, so they stay invariant. This lets the
    network sense the direction in which an atom's environment is lopsided, which
    distance-only blocks (:class:`Interaction`) cannot.

    s (N, H), v (N, 3, H); src/dst (E,); rbf (E, R); env (E,); unit (E, 3) from src towards
    dst -> updated (s, v).
    """

    def __init__(self, hidden: int, num_rbf: int):
        super().__init__()
        self.hidden = hidden
        self.msg_s = mlp([hidden, hidden, 3 * hidden])
        self.msg_rbf = nn.Linear(num_rbf, 3 * hidden)
        self.U = nn.Linear(hidden, hidden, bias=False)
        self.V = nn.Linear(hidden, hidden, bias=False)
        self.update = mlp([2 * hidden, hidden, 3 * hidden])
        self.norm = nn.LayerNorm(hidden)

    def forward(self, s, v, src, dst, rbf, env, unit):
        """``v`` may be None for all-zero vector features (the first block): the messages
        that would carry them are then skipped."""
        H = self.hidden
        x = gather(self.msg_s(s), dst) * self.msg_rbf(rbf) * env[:, None]
        ds, dvv, dvu = x.split(H, -1)
        dv = unit[:, :, None] * dvu[:, None, :]
        if v is None:
            v = torch.zeros(len(s), 3, H, device=s.device, dtype=s.dtype)
        else:
            dv = torch.addcmul(dv, gather(v, dst), dvv[:, None, :])
        s = torch.index_add(s, 0, src, ds, alpha=1.0 / AGG_SCALE)
        v = torch.index_add(v, 0, src, dv, alpha=1.0 / AGG_SCALE)
        uv, vv = self.U(v), self.V(v)
        vnorm = torch.sqrt((vv ** 2).sum(1) + 1e-8)
        a_vv, a_sv, a_ss = self.update(torch.cat([s, vnorm], -1)).split(H, -1)
        v = torch.addcmul(v, a_vv[:, None, :], uv)
        s = self.norm(s + a_ss + a_sv * (uv * vv).sum(1))
        return s, v
