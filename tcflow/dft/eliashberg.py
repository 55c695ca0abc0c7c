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
                                lam_dense: Sequence[float | None], tol: float, noise: float = 0.01,
                                nef_coarse: Sequence[float | None] | None = None,
                                nef_dense: Sequence[float | None] | None = None) -> dict[str, Any]:
    """The double-grid broadening choice: the smallest σ_i (Ry) at which λ from two dense k-grids,
    tabulated on the same σ list, agree within ``tol`` (|λ_coarse - λ_dense| ≤ tol λ_dense) and
    still agree at the next broadening σ_{i+1}, so that one accidental crossing of two noisy
    curves at small σ is not taken for convergence.

    With ``nef_coarse``/``nef_dense`` (the grids' N(E_F) at each σ, states/spin/Ry) a pair agrees
    only when N(E_F) agrees within ``tol`` too. λ is a ratio of two double-delta sums over the
    Fermi surface; on unconverged grids their errors can cancel: bcc Nb on q 4³ (la2F 24³ and
    32³) gave λ 2.030 and 2.014 (0.8 % apart) at σ 0.005 Ry while the grids' N(E_F) was 9.31
    and 10.37 (11 % apart). N(E_F), a single sum, shows that the grids are not converged there.

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
    with_nef = nef_coarse is not None and nef_dense is not None
    if with_nef:
        if len(nef_coarse) != n or len(nef_dense) != n:
            raise ValueError(f"two-grid broadening choice: {n} broadenings but {len(nef_coarse)} and "
                             f"{len(nef_dense)} N(E_F) values")
        nef_states = _pair_states(nef_coarse, nef_dense, tol, noise)
        nef_diffs = [s[0] for s in nef_states]
        states = [(d, c1 and c2, s1 and s2) for (d, c1, s1), (_, c2, s2) in zip(states, nef_states)]
        worst = [None if a is None or b is None else max(a, b) for a, b in zip(diffs, nef_diffs)]
    else:
        nef_diffs, worst = None, diffs
    i = _first_window([d is not None and d <= tol for d in worst])
    known = [k for k, d in enumerate(worst) if d is not None]
    closest = min(known, key=lambda k: worst[k]) if known else None
    outcomes: list[float | None] = []
    for k in range(n - 1):                  # k reachable: pairs k, k+1 agree, every earlier pair fails if it can
        if states[k][1] and states[k + 1][1]:
            forced = [states[j][2] for j in range(k)] + [True, True]
            if _first_window(forced) == k:
                outcomes.append(float(sigmas[k]))
    if _first_window([s[2] for s in states]) is None:
        outcomes.append(None)               # every pair that can fail does: no window agrees
    pct = f"{100 * tol:g} %"
    what = "lambda and N(E_F)" if with_nef else "lambda"

    def at(k: int) -> str:
        nef = f" (N(E_F) {100 * nef_diffs[k]:.1f} %)" if with_nef else ""
        return f"{100 * diffs[k]:.1f} %{nef} at sigma = {sigmas[k]:g} Ry"

    if i is None:
        near = (f"; closest: {at(closest)}" if closest is not None
                else f"; no broadening has {what} on both grids")
        reason = f"no two consecutive broadenings where the two k-grids' {what} agree within {pct}{near}"
    else:
        reason = f"smallest broadening where the two k-grids' {what} agree within {pct}, here and at the next: " \
                 f"{at(i)}, {at(i + 1).replace(' at sigma = ', ' at ')}"
        lam_only = _first_window([d is not None and d <= tol for d in diffs])
        if with_nef and lam_only is not None and lam_only < i:
            reason += (f"; lambda alone agreed from {sigmas[lam_only]:g} Ry, where N(E_F) was "
                       f"{100 * nef_diffs[lam_only]:.1f} % apart")
    chosen = None if i is None else float(sigmas[i])
    out = {"index": i, "sigma_ry": chosen, "converged": i is not None, "reason": reason, "rel_diff": diffs,
           "closest_index": closest, "noise": noise, "robust": outcomes == [chosen],
           "sigma_under_noise": outcomes}
    if with_nef:
        out["rel_diff_n_ef"] = nef_diffs
    return out
