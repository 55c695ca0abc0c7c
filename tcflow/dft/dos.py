"""Density of states at the Fermi level from band energies on a k-grid, as ph.x's ``elphsum``
computes it for each el-ph broadening: the Fermi level of a Gaussian smearing σ for the cell's
electron count, then N(E_F) = Σ_k w_k Σ_n δ_σ(ε_nk − E_F) / 2, in states/spin/Ry/cell (QE's
weights sum to 2 without spin polarisation).

Used by ``broadening_rule: dos_rescaled`` (:mod:`tcflow.dft.steps.tc`): α²F from the la2F grid of
ph.x, rescaled by the denser grid's N(E_F) over its own (K. Bozier, K. Wang, B. Monserrat &
C. J. Pickard, arXiv:2508.18371, 2025: on a coarse grid α²F is mostly off by the wrong N(E_F)).
"""

from __future__ import annotations

import math
from typing import Sequence

#: Fermi level bisection: stop when the bracket is this narrow (Ry)
EF_TOL_RY = 1e-10


def fermi_level(eig_ry: Sequence[Sequence[float]], weights: Sequence[float], n_electrons: float,
                sigma_ry: float) -> float:
    """E_F (Ry) with Gaussian occupations ½ erfc((ε − E_F)/σ) holding ``n_electrons``."""
    import numpy as np
    from scipy.special import erfc

    e, w = np.asarray(eig_ry, dtype=float), np.asarray(weights, dtype=float)[:, None]
    if sigma_ry <= 0:
        raise ValueError(f"Gaussian broadening must be > 0 Ry, got {sigma_ry}")
    lo, hi = float(e.min()) - 10 * sigma_ry, float(e.max()) + 10 * sigma_ry
    if (w * e.shape[1]).sum() < n_electrons:
        raise ValueError(f"{n_electrons} electrons do not fit in {e.shape[1]} bands")
    while hi - lo > EF_TOL_RY:
        mid = 0.5 * (lo + hi)
        if float((w * 0.5 * erfc((e - mid) / sigma_ry)).sum()) > n_electrons:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def dos_at_fermi(eig_ry: Sequence[Sequence[float]], weights: Sequence[float], n_electrons: float,
                 sigma_ry: float) -> tuple[float, float]:
    """(E_F in Ry, N(E_F) in states/spin/Ry/cell) for Gaussian broadening ``sigma_ry``."""
    import numpy as np

    ef = fermi_level(eig_ry, weights, n_electrons, sigma_ry)
    e, w = np.asarray(eig_ry, dtype=float), np.asarray(weights, dtype=float)[:, None]
    x = (e - ef) / sigma_ry
    return ef, float((w * np.exp(-x * x)).sum() / (math.sqrt(math.pi) * sigma_ry) / 2.0)
