"""Building blocks shared by the encoder and the score decoder (torch only)."""

from __future__ import annotations

import math

import torch
from torch import nn

#: Sums of edge messages are divided by this (a typical neighbour count within 6-7 Å),
#: keeping activations O(1) without making the network blind to coordination number.
AGG_SCALE = 32.0


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
        msg = self.lin_in(h)[dst] * self.filter(rbf) * env[:, None]
        agg = torch.zeros_like(h).index_add_(0, src, msg) / AGG_SCALE
        return self.norm(h + self.update(torch.cat([h, agg], -1)))
