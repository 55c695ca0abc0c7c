"""Superconducting Tc from the electron-phonon coupling: closed formulas, and the broadening choice.

Units: frequencies and temperatures in K; λ and μ* dimensionless; broadenings σ in Ry.

- McMillan (Phys. Rev. 167, 331 (1968)): Tc = (Θ_D / 1.45) exp[-1.04 (1 + λ) / (λ - μ*(1 + 0.62 λ))]
- McMillan-Allen-Dynes (the form lambda.x prints): Θ_D / 1.45 -> ω_log / 1.2.
- Allen-Dynes (Phys. Rev. B 12, 905 (1975)): the same times f1 f2, with
  f1 = [1 + (λ/Λ1)^{3/2}]^{1/3}, Λ1 = 2.46 (1 + 3.8 μ*) (strong coupling) and
  f2 = 1 + (ω̄2/ω_log - 1) λ² / (λ² + Λ2²), Λ2 = 1.82 (1 + 6.3 μ*) ω̄2/ω_log (shape),
  ω̄2 = <ω²>^{1/2} the second moment of α²F (:func:`tcflow.dft.migdal.moments`).
The Migdal-Eliashberg Tc itself is :func:`tcflow.dft.migdal.eliashberg_tc`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

MCMILLAN_PREFACTOR = 1.45      # Θ_D / 1.45
ALLEN_DYNES_PREFACTOR = 1.2    # ω_log / 1.2
EXP_COEFF = 1.04
MU_LAMBDA_COEFF = 0.62
#: Allen-Dynes (1975) fit constants: Λ1 = 2.46 (1 + 3.8 μ*), Λ2 = 1.82 (1 + 6.3 μ*) ω̄2/ω_log
AD_L1, AD_L1_MU = 2.46, 3.8
AD_L2, AD_L2_MU = 1.82, 6.3


def _exponent(lam: float, mustar: float) -> float | None:
    denom = lam - mustar * (1.0 + MU_LAMBDA_COEFF * lam)
    if denom <= 0.0:
        return None  # coupling too weak to overcome mu*: no superconductivity in this model
    return -EXP_COEFF * (1.0 + lam) / denom


def mcmillan_tc(lam: float, theta_debye_K: float, mustar: float = 0.1) -> float:
    """McMillan Tc (K) from λ and the Debye temperature Θ_D (K); 0 when λ ≤ μ*(1 + 0.62λ)."""
    x = _exponent(lam, mustar)
    return 0.0 if x is None else theta_debye_K / MCMILLAN_PREFACTOR * math.exp(x)


def allen_dynes_tc(lam: float, omega_log_K: float, mustar: float = 0.1) -> float:
    """McMillan-Allen-Dynes Tc (K) from λ and ω_log (K); 0 when λ ≤ μ*(1 + 0.62λ)."""
    x = _exponent(lam, mustar)
    return 0.0 if x is None else omega_log_K / ALLEN_DYNES_PREFACTOR * math.exp(x)


def allen_dynes_f1f2(lam: float, omega_log_K: float, omega2_K: float, mustar: float = 0.1) -> tuple[float, float]:
    """The Allen-Dynes strong-coupling and shape corrections ``(f1, f2)`` (dimensionless)."""
    l1 = AD_L1 * (1.0 + AD_L1_MU * mustar)
    ratio = omega2_K / omega_log_K
    l2 = AD_L2 * (1.0 + AD_L2_MU * mustar) * ratio
    f1 = (1.0 + (lam / l1) ** 1.5) ** (1.0 / 3.0)
    f2 = 1.0 + (ratio - 1.0) * lam ** 2 / (lam ** 2 + l2 ** 2)
    return f1, f2


def allen_dynes_f1f2_tc(lam: float, omega_log_K: float, omega2_K: float, mustar: float = 0.1) -> float:
    """Allen-Dynes Tc (K) with f1 f2 from λ, ω_log (K) and ω̄2 (K); 0 when λ ≤ μ*(1 + 0.62λ)."""
    f1, f2 = allen_dynes_f1f2(lam, omega_log_K, omega2_K, mustar)
    return f1 * f2 * allen_dynes_tc(lam, omega_log_K, mustar)


def choose_broadening(lambdas: Sequence[float | None], tol: float) -> tuple[int, bool]:
    """Index of the reported broadening: the first i with |λ_{i+1} - λ_i| ≤ tol·λ_i.

    Returns ``(index, converged)``; when no pair agrees, the last broadening with ``False``.
    ``None`` entries (values QE printed as NaN) never count as converged.
    """
    for i in range(len(lambdas) - 1):
        a, b = lambdas[i], lambdas[i + 1]
        if a is not None and b is not None and a > 0 and abs(b - a) <= tol * a:
            return i, True
    return len(lambdas) - 1, False


def tc_table(rows: Sequence[Mapping[str, Any]], mustar: float) -> list[dict[str, Any]]:
    """Add ``tc_K`` (Allen-Dynes) to each row holding ``lambda`` and ``omega_log_K``."""
    out = []
    for r in rows:
        ok = (r["lambda"] is not None and r["omega_log_K"] is not None and math.isfinite(r["omega_log_K"])
              and math.isfinite(r["lambda"]))
        out.append({**r, "tc_K": allen_dynes_tc(r["lambda"], r["omega_log_K"], mustar) if ok else None})
    return out


def _pair_states(lam_coarse, lam_dense, tol: float, noise: float):
    """Per broadening: (relative difference |λc - λd| / λd or None, can agree, surely agrees) when
    each λ may move by a relative ``noise``. A missing (None) or non-positive λ never agrees."""
    out = []
    for a, b in zip(lam_coarse, lam_dense):
        if a is None or b is None or not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
            out.append((None, False, False))
            continue
        r = a / b
        lo, hi = r * (1 - noise) / (1 + noise), r * (1 + noise) / (1 - noise)
        far = max(abs(lo - 1.0), abs(hi - 1.0))
        near = 0.0 if lo <= 1.0 <= hi else min(abs(lo - 1.0), abs(hi - 1.0))
        out.append((abs(r - 1.0), near <= tol, far <= tol))
    return out


def _first_window(agree: Sequence[bool]) -> int | None:
    """Smallest i with agree[i] and agree[i + 1]."""
    return next((i for i in range(len(agree) - 1) if agree[i] and agree[i + 1]), None)


def choose_broadening_two_grids(sigmas: Sequence[float], lam_coarse: Sequence[float | None],
                                lam_dense: Sequence[float | None], tol: float, noise: float = 0.01) -> dict[str, Any]:
    """The double-grid broadening choice: the smallest σ_i (Ry) at which λ from two dense k-grids,
    tabulated on the same σ list, agree within ``tol`` (|λ_coarse - λ_dense| ≤ tol λ_dense) and
    still agree at the next broadening σ_{i+1}, so that one accidental crossing of two noisy
    curves at small σ is not taken for convergence.

    Returns ``{"index", "sigma_ry", "converged", "reason", "rel_diff", "closest_index", "noise",
    "robust", "sigma_under_noise"}``: ``index``/``sigma_ry`` are None when no σ qualifies
    (``converged: false``, ``reason`` names the closest agreement). ``sigma_under_noise`` lists
    every outcome (σ, or None for "not converged") that some change of each λ by at most a
    relative ``noise`` would give (exact: pairs move independently); ``robust`` is true when it
    is the outcome found.
    """
    n = len(sigmas)
    if len(lam_coarse) != n or len(lam_dense) != n:
        raise ValueError(f"two-grid broadening choice: {n} broadenings but {len(lam_coarse)} and "
                         f"{len(lam_dense)} lambda values")
    if n < 2:
        raise ValueError("two-grid broadening choice: needs at least two broadenings")
    states = _pair_states(lam_coarse, lam_dense, tol, noise)
    diffs = [s[0] for s in states]
    i = _first_window([d is not None and d <= tol for d in diffs])
    known = [k for k, d in enumerate(diffs) if d is not None]
    closest = min(known, key=lambda k: diffs[k]) if known else None
    outcomes: list[float | None] = []
    for k in range(n - 1):                  # k reachable: pairs k, k+1 agree, every earlier pair fails if it can
        if states[k][1] and states[k + 1][1]:
            forced = [states[j][2] for j in range(k)] + [True, True]
            if _first_window(forced) == k:
                outcomes.append(float(sigmas[k]))
    if _first_window([s[2] for s in states]) is None:
        outcomes.append(None)               # every pair that can fail does: no window agrees
    pct = f"{100 * tol:g} %"
    if i is None:
        near = (f"; closest: {100 * diffs[closest]:.1f} % at sigma = {sigmas[closest]:g} Ry" if closest is not None
                else "; no broadening has lambda on both grids")
        reason = f"no two consecutive broadenings where the two k-grids' lambda agree within {pct}{near}"
    else:
        reason = (f"smallest broadening where the two k-grids' lambda agree within {pct}, here and at the next: "
                  f"{100 * diffs[i]:.1f} % at sigma = {sigmas[i]:g} Ry, {100 * diffs[i + 1]:.1f} % at "
                  f"{sigmas[i + 1]:g} Ry")
    chosen = None if i is None else float(sigmas[i])
    return {"index": i, "sigma_ry": chosen, "converged": i is not None, "reason": reason, "rel_diff": diffs,
            "closest_index": closest, "noise": noise, "robust": outcomes == [chosen],
            "sigma_under_noise": outcomes}
