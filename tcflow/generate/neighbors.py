"""Batched periodic neighbour search in pure torch (no torch-cluster).

For every pair of atoms (i, j) of the same crystal, the fractional difference is first
brought to its minimum image, then all lattice translations that can bring j within the
cutoff of i are enumerated. The number of translations per axis follows from the spacing of
the lattice planes: a translation n along axis k moves j by n * d_k across the planes, with
d_k = 1 / |b_k| (b_k reciprocal vectors without 2π), so |n| <= cutoff / d_k + 1/2 suffices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Distances (Å) below this between an atom and its own zero-translation image are self pairs.
SELF_TOL_A = 1e-8
#: Upper bound on translations per axis and side; protects against degenerate (very flat)
#: predicted cells which would otherwise ask for thousands of images.
DEFAULT_MAX_IMAGES = 6


@dataclass
class Edges:
    """Directed edges i -> j (j's periodic image near i).

    src, dst: (E,) atom indices into the batch; image: (E, 3) integer lattice translation of
    j, relative to j's stored fractional coordinates; vec: (E, 3) Å Cartesian r_j + n L - r_i;
    dist: (E,) Å.
    """

    src: torch.Tensor
    dst: torch.Tensor
    image: torch.Tensor
    vec: torch.Tensor
    dist: torch.Tensor


def _pair_indices(natoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j) within each graph, including i == j; plus their graph index."""
    dev = natoms.device
    start = torch.cumsum(natoms, 0) - natoms
    npairs = natoms * natoms
    graph = torch.repeat_interleave(torch.arange(len(natoms), device=dev), npairs)
    pair_start = torch.cumsum(npairs, 0) - npairs
    local = torch.arange(int(npairs.sum()), device=dev) - pair_start[graph]
    n = natoms[graph]
    return start[graph] + local // n, start[graph] + local % n, graph


def radius_graph_pbc(frac: torch.Tensor, lattice: torch.Tensor, natoms: torch.Tensor,
                     cutoff: float, max_images: int = DEFAULT_MAX_IMAGES) -> Edges:
    """Every pair (i, j, translation) of the same crystal closer than ``cutoff`` Å.

    frac: (N, 3) fractional coordinates (any range); lattice: (B, 3, 3) Å, rows = vectors;
    natoms: (B,) atoms per crystal, atoms stored crystal by crystal. Self pairs at zero
    translation are excluded; an atom's own other images are included. Differentiable
    with respect to ``frac`` and ``lattice`` through ``vec`` and ``dist``.
    """
    i, j, g = _pair_indices(natoms)
    dev, dt = frac.device, frac.dtype
    dfrac = frac[j] - frac[i]
    shift = -torch.round(dfrac.detach())                         # minimum image
    recip_norm = torch.linalg.inv(lattice.detach()).norm(dim=1)  # (B, 3): |b_k| (columns of L^-1)
    nmax = torch.ceil(cutoff * recip_norm + 0.5).clamp(max=max_images).long()  # (B, 3)
    # per crystal, a table of its translations n in [-nmax, nmax]^3 and their vectors n L
    dims = 2 * nmax + 1
    kg = dims.prod(1)                                            # (B,) translations per crystal
    tg = torch.repeat_interleave(torch.arange(len(kg), device=dev), kg)
    tstart = torch.cumsum(kg, 0) - kg
    k = torch.arange(int(kg.sum()), device=dev) - tstart[tg]
    d, m = dims[tg], nmax[tg]
    table_n = (torch.stack([k // (d[:, 1] * d[:, 2]), (k // d[:, 2]) % d[:, 1], k % d[:, 2]], -1) - m).to(dt)
    table_v = torch.einsum("ti,tij->tj", table_n, lattice.detach()[tg])
    # every pair meets every translation of its crystal
    dcart = torch.einsum("pi,pij->pj", dfrac.detach() + shift, lattice.detach()[g])
    nimg = kg[g]
    pair = torch.repeat_interleave(torch.arange(len(i), device=dev), nimg)
    t = torch.arange(len(pair), device=dev) - (torch.cumsum(nimg, 0) - nimg)[pair] + tstart[g][pair]
    dist2 = ((dcart[pair] + table_v[t]) ** 2).sum(-1)
    keep = dist2 <= cutoff * cutoff
    keep &= ~((i[pair] == j[pair]) & (dist2 < SELF_TOL_A ** 2))
    sel = keep.nonzero(as_tuple=True)[0]
    p = pair[sel]
    images = shift[p] + table_n[t[sel]]
    v = torch.einsum("pi,pij->pj", dfrac[p] + images, lattice[g[p]])  # differentiable
    return Edges(src=i[p], dst=j[p], image=images.round().long(), vec=v,
                 dist=v.norm(dim=-1))
