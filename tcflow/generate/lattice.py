"""Lattice geometry in torch: parameters <-> matrices, fractional <-> Cartesian coordinates.

Conventions: a lattice matrix ``L`` has shape (B, 3, 3) with the cell vectors as ROWS (Å);
Cartesian positions are ``frac @ L`` (Å). Lengths are Å, angles are degrees.
"""

from __future__ import annotations

import torch

from tcflow.generate.layers import gather

#: Angles (deg) predicted by the lattice head are clamped into this range so that the cell
#: matrix stays real (a, b, c with any angle outside it are unphysically flat cells anyway).
MIN_ANGLE_DEG = 30.0
MAX_ANGLE_DEG = 150.0
#: Smallest squared sine term allowed when building c's z-component (keeps sqrt real).
MIN_SQ = 1e-6


def params_to_matrix(lengths: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """Lattice matrices (B, 3, 3), rows = cell vectors, from lengths (B, 3) Å and angles (B, 3) deg.

    a is along x, b in the xy plane (the pymatgen/CDVAE-compatible "lattice_from_parameters"
    orientation is not needed: every consumer here is rotation invariant or equivariant).
    """
    ang = torch.deg2rad(angles_deg.clamp(MIN_ANGLE_DEG, MAX_ANGLE_DEG))
    ca, cb, cg = torch.cos(ang).unbind(-1)
    sg = torch.sin(ang[:, 2])
    a, b, c = lengths.unbind(-1)
    zero = torch.zeros_like(a)
    va = torch.stack([a, zero, zero], -1)
    vb = torch.stack([b * cg, b * sg, zero], -1)
    cx = c * cb
    cy = c * (ca - cb * cg) / sg
    cz = torch.sqrt((c ** 2 - cx ** 2 - cy ** 2).clamp_min(MIN_SQ * c ** 2))
    vc = torch.stack([cx, cy, cz], -1)
    return torch.stack([va, vb, vc], 1)


def matrix_to_params(lattice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lengths (B, 3) Å and angles (B, 3) deg (alpha = angle(b, c), beta = (a, c), gamma = (a, b))."""
    lengths = lattice.norm(dim=-1)
    a, b, c = lattice.unbind(1)

    def angle(u, v):
        cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
        return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))

    return lengths, torch.stack([angle(b, c), angle(a, c), angle(a, b)], -1)


def frac_to_cart(frac: torch.Tensor, lattice: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Cartesian positions (N, 3) Å of fractional ``frac`` (N, 3); ``batch`` (N,) graph index."""
    return torch.einsum("ni,nij->nj", frac, gather(lattice, batch))


def cart_to_frac(cart: torch.Tensor, lattice: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Fractional coordinates (N, 3) of Cartesian ``cart`` (N, 3) Å (not wrapped)."""
    inv = torch.linalg.inv(lattice)
    return torch.einsum("ni,nij->nj", cart, gather(inv, batch))


def min_image_cart_diff(frac_a: torch.Tensor, frac_b: torch.Tensor, lattice: torch.Tensor,
                        batch: torch.Tensor) -> torch.Tensor:
    """Cartesian vector (N, 3) Å from ``frac_b`` to the nearest periodic image of ``frac_a``.

    Uses the rounded fractional difference; exact for cells that are not strongly skewed
    (Niggli-reduced cells, which is what the model works with).
    """
    d = frac_a - frac_b
    d = d - torch.round(d)
    return frac_to_cart(d, lattice, batch)


def volume(lattice: torch.Tensor) -> torch.Tensor:
    """Cell volumes (B,) Å^3."""
    return torch.linalg.det(lattice).abs()
