"""Superconducting Tc from the electron-phonon coupling: McMillan and McMillan-Allen-Dynes.

Units: frequencies and temperatures in K; lambda and mu* dimensionless.

- McMillan (1968): Tc = (Θ_D / 1.45) exp[-1.04 (1 + λ) / (λ - μ*(1 + 0.62 λ))]
- Allen-Dynes (1975), the form lambda.x prints: Θ_D / 1.45 -> ω_log / 1.2.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

MCMILLAN_PREFACTOR = 1.45      # Θ_D / 1.45
ALLEN_DYNES_PREFACTOR = 1.2    # ω_log / 1.2
EXP_COEFF = 1.04
MU_LAMBDA_COEFF = 0.62


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
