"""Isotropic Migdal–Eliashberg Tc from a tabulated Eliashberg function α²F(ω).

Units: every frequency and temperature is in kelvin (k_B = ħ = 1, so ω and T share one unit;
1 Ry = :data:`RY_TO_K` K, 1 meV = :data:`MEV_TO_K` K); α²F, λ and μ* are dimensionless.

**Moments** (Allen & Dynes, Phys. Rev. B 12, 905 (1975)): λ = 2∫ α²F(ω)/ω dω,
ω_log = exp[(2/λ)∫ ln ω α²F(ω)/ω dω], ω̄2 = [(2/λ)∫ ω α²F(ω) dω]^{1/2}. The integrals use the cell
rule of :func:`cell_weights`; on matdyn.x's ``a2F.dos<i>`` grid (bin centres) that is matdyn's own
sum, so λ equals the λ printed at the end of the file.

**Gap equation.** On the imaginary axis, with fermionic ω_n = πT(2n+1) and
λ_k = λ(ν_k) = 2∫ Ω α²F(Ω)/(Ω² + ν_k²) dΩ at bosonic ν_k = 2πTk, the isotropic Eliashberg
equations linearised in the gap (Δ → 0 at Tc; G. M. Eliashberg, Sov. Phys. JETP 11, 696 (1960);
the imaginary-axis form of P. B. Allen & B. Mitrović, Solid State Phys. 37, 1 (1982)) read, for
n, m ≥ 0 with Δ_{-n-1} = Δ_n,

    Δ_n = Σ_{m<N} [λ_{|n-m|} + λ_{n+m+1} − 2μ*_c] Δ_m / ((2m+1) Z_n),
    (2n+1) Z_n = 2n + 1 + λ_0 + 2 Σ_{k=1..n} λ_k,

Z_n being the normal-state renormalisation summed to infinity in closed form (no cutoff error).
The λ_0 terms cancel exactly between the two sides, so they are dropped: negative noise in α²F at
the lowest frequencies (acoustic modes near Γ in matdyn's output) does not reach Tc through λ_0.
The kernel is similar to the symmetric matrix A = d (Λ − U) d, d_n = [(2n+1) Z_n]^{-1/2}, whose
largest eigenvalue ρ(T) falls with T; Tc is where ρ = 1 (bracketed from the Allen–Dynes estimate,
then safeguarded regula falsi in ln T). Λ is Toeplitz plus Hankel and U has rank one, so A acts
on a vector through FFT convolutions and ρ comes from a Lanczos iteration (dense ``eigvalsh`` below
:data:`DENSE_MAX` frequencies): a Tc costs well under a second for typical spectra.

**μ* and the cutoff.** The sums keep the N Matsubara frequencies below ω_c ≈
:data:`CUTOFF_FACTOR` × ω_max (N rounded; ω_c = 2πTN exactly). μ* is the McMillan/Allen–Dynes
value, referred to the phonon scale ω̄2, and is rescaled to the cutoff by the Morel–Anderson
relation (P. Morel & P. W. Anderson, Phys. Rev. 125, 1263 (1962); Allen & Mitrović 1982):
1/μ*(ω_c) = 1/μ* + ln(ω̄2/ω_c). The reference ω̄2 follows J. Berges' ebmb code; for an Einstein
spectrum it is ω_E, the convention of Einstein-model studies.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

RY_TO_K = 157887.512       # 1 Ry / k_B in K (13.605693 eV / 8.617333e-5 eV/K)
MEV_TO_K = 11.6045181      # 1 meV / k_B in K
CUTOFF_FACTOR = 10.0       # Matsubara cutoff ω_c in units of the highest phonon frequency
MIN_MATSUBARA = 32         # at least this many positive Matsubara frequencies (high T, large λ)
MAX_MATSUBARA = 40000      # at most; below T_floor = ω_c / (2π MAX_MATSUBARA) Tc is not resolved
DENSE_MAX = 256            # up to this many frequencies: dense eigvalsh; above: FFT + Lanczos
LANCZOS_STEPS = 48         # Krylov dimension per Lanczos restart
LANCZOS_RTOL = 1e-11       # Ritz residual / |ρ| at which ρ counts as converged
T_RTOL = 1e-6              # relative bracket width at which Tc is returned
BRACKET_STEP = 2.0         # factor between successive temperatures while bracketing Tc
MAX_BRACKET_STEPS = 100    # upward bracketing steps before giving up (2^100: never in practice)
_ROWS_PER_CHUNK = 1 << 21  # λ(ν) is summed over ν-chunks of at most this many (ν, Ω) pairs


class SpectrumError(ValueError):
    """An α²F table (or μ*) that cannot be used (one line, naming what is wrong)."""


def cell_weights(omega: np.ndarray) -> np.ndarray:
    """Quadrature weights (unit of ``omega``) of the cell rule: point i carries the interval
    between the midpoints to its neighbours, the first and last cells being symmetric about their
    points (the first one clipped at ω = 0). On matdyn's grid of bin centres (Δ/2, 3Δ/2, ...) every
    weight is Δ; on a grid of bin centres over [a, b] the cells tile [a, b]."""
    omega = np.asarray(omega, float)
    mid = 0.5 * (omega[1:] + omega[:-1])
    first = max(0.0, omega[0] - 0.5 * (omega[1] - omega[0]))
    edges = np.concatenate([[first], mid, [omega[-1] + 0.5 * (omega[-1] - omega[-2])]])
    return np.diff(edges)


def _check(omega_K, a2f) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(omega_K, float)
    f = np.asarray(a2f, float)
    if w.ndim != 1 or w.shape != f.shape or w.size < 2:
        raise SpectrumError(f"α²F: need two 1-d arrays of equal length >= 2, got shapes {w.shape} and {f.shape}")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(f))):
        raise SpectrumError("α²F: non-finite frequency or value")
    if w[0] <= 0 or np.any(np.diff(w) <= 0):
        raise SpectrumError("α²F: frequencies must be positive and strictly increasing")
    return w, f


def moments(omega_K, a2f) -> dict[str, float | None]:
    """``{"lambda", "omega_log_K", "omega2_K"}`` of α²F(ω) (ω in K): λ, ω_log and ω̄2 = <ω²>^{1/2}
    (K). ω_log and ω̄2 are None when λ ≤ 0 (or <ω²> ≤ 0)."""
    w, f = _check(omega_K, a2f)
    g = cell_weights(w) * f
    lam = float(2.0 * np.sum(g / w))
    if lam <= 0:
        return {"lambda": lam, "omega_log_K": None, "omega2_K": None}
    w2sq = 2.0 / lam * float(np.sum(g * w))
    return {"lambda": lam, "omega_log_K": math.exp(2.0 / lam * float(np.sum(g * np.log(w) / w))),
            "omega2_K": math.sqrt(w2sq) if w2sq > 0 else None}


def rescaled_mustar(mustar: float, omega_ref_K: float, cutoff_K: float) -> float:
    """μ* at the cutoff ω_c (K) from μ* at ω_ref (K): 1/μ*(ω_c) = 1/μ* + ln(ω_ref/ω_c)."""
    if mustar == 0:
        return 0.0
    denom = 1.0 + mustar * math.log(omega_ref_K / cutoff_K)
    if denom <= 0:
        raise SpectrumError(f"mu* = {mustar} cannot be rescaled to a Matsubara cutoff of "
                            f"{cutoff_K / omega_ref_K:.1f} x omega_2 (1 + mu* ln(omega_2/omega_c) <= 0)")
    return mustar / denom


def largest_eigenvalue(matvec: Callable[[np.ndarray], np.ndarray], n: int, v0: np.ndarray
                       ) -> tuple[float, np.ndarray]:
    """Largest eigenvalue and its unit eigenvector of a symmetric n×n operator (Lanczos with full
    reorthogonalisation, restarted from the Ritz vector until the residual is below
    :data:`LANCZOS_RTOL`)."""
    v = v0 / np.linalg.norm(v0)
    k = min(LANCZOS_STEPS, n)
    theta = 0.0
    for _ in range(50):
        basis = np.zeros((k, n))
        alpha, beta = np.zeros(k), np.zeros(k)
        basis[0] = v
        for j in range(k):
            w = matvec(basis[j])
            alpha[j] = basis[j] @ w
            for _ in range(2):                      # full reorthogonalisation, twice
                w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
            beta[j] = np.linalg.norm(w)
            if j + 1 == k or beta[j] <= 1e-14 * max(1.0, abs(alpha[j])):
                break
            basis[j + 1] = w / beta[j]
        m = j + 1
        tri = np.diag(alpha[:m]) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
        vals, vecs = np.linalg.eigh(tri)
        theta, s = float(vals[-1]), vecs[:, -1]
        v = s @ basis[:m]
        v /= np.linalg.norm(v)
        if abs(beta[m - 1] * s[-1]) <= LANCZOS_RTOL * max(1.0, abs(theta)) or m == n:
            return theta, v
    raise ArithmeticError(f"Lanczos: largest eigenvalue not converged (n = {n}, estimate {theta:.6g})")


class GapKernel:
    """The linearised isotropic gap equation of one α²F (ω in K) and μ*; :meth:`rho` is its
    largest eigenvalue at a temperature T (K)."""

    def __init__(self, omega_K, a2f, mustar: float, cutoff_factor: float = CUTOFF_FACTOR):
        self.w, f = _check(omega_K, a2f)
        self.g = cell_weights(self.w) * f                    # α²F(Ω_j) dΩ_j
        self.mom = moments(self.w, f)
        self.mustar = float(mustar)
        if not 0.0 <= self.mustar < 1.0:
            raise SpectrumError(f"mu* = {mustar}: must be in [0, 1)")
        nonzero = np.nonzero(f)[0]
        self.omega_max = float(self.w[nonzero[-1]] if nonzero.size else self.w[-1])
        self.cutoff = float(cutoff_factor) * self.omega_max
        self._v: np.ndarray | None = None                   # last eigenvector (warm start)

    def t_floor(self) -> float:
        """Lowest temperature (K) at which the full cutoff fits in :data:`MAX_MATSUBARA` terms."""
        return self.cutoff / (2.0 * math.pi * MAX_MATSUBARA)

    def n_matsubara(self, T: float) -> int:
        return int(min(MAX_MATSUBARA, max(MIN_MATSUBARA, round(self.cutoff / (2.0 * math.pi * T)))))

    def mustar_at_cutoff(self, T: float) -> float:
        return rescaled_mustar(self.mustar, self.mom["omega2_K"], 2.0 * math.pi * T * self.n_matsubara(T))

    def lambda_nu(self, nu_K: np.ndarray) -> np.ndarray:
        """λ(ν) = 2 Σ_j Ω_j α²F_j dΩ_j / (Ω_j² + ν²) at bosonic frequencies ``nu_K`` (K)."""
        nu = np.asarray(nu_K, float)
        gw, w2 = self.g * self.w, self.w ** 2
        out = np.empty(nu.size)
        step = max(1, _ROWS_PER_CHUNK // self.w.size)
        for i in range(0, nu.size, step):
            out[i:i + step] = 2.0 * (gw / (w2 + nu[i:i + step, None] ** 2)).sum(axis=1)
        return out

    def rho(self, T: float) -> float:
        """Largest eigenvalue of the symmetrised gap kernel at T (K)."""
        n = self.n_matsubara(T)
        mu_c = self.mustar_at_cutoff(T)
        lam = self.lambda_nu(2.0 * math.pi * T * np.arange(2 * n + 1))
        lam[0] = 0.0                                         # cancels between Z and the gap sum
        d = 1.0 / np.sqrt(2 * np.arange(n) + 1 + 2.0 * np.concatenate([[0.0], np.cumsum(lam[1:n])]))
        if n <= DENSE_MAX:
            i = np.arange(n)
            s = lam[np.abs(i[:, None] - i[None, :])] + lam[i[:, None] + i[None, :] + 1] - 2.0 * mu_c
            return float(np.linalg.eigvalsh(d[:, None] * s * d[None, :])[-1])
        size = 1 << int(math.ceil(math.log2(3 * n + 2)))
        toeplitz = np.fft.rfft(np.concatenate([lam[n - 1:0:-1], lam[:n]]), size)   # λ_{|j-(n-1)|}
        hankel = np.fft.rfft(lam, size)                                              # λ_k, k = 0..2n

        def matvec(x: np.ndarray) -> np.ndarray:
            u = d * x
            t = np.fft.irfft(np.fft.rfft(u, size) * toeplitz, size)[n - 1:2 * n - 1]
            h = np.fft.irfft(np.fft.rfft(u[::-1], size) * hankel, size)[n:2 * n]
            return d * (t + h - 2.0 * mu_c * u.sum())

        v0 = np.ones(n) * d if self._v is None else np.interp(np.arange(n), np.arange(self._v.size), self._v)
        theta, self._v = largest_eigenvalue(matvec, n, v0)
        return theta


def eliashberg_tc(omega_K, a2f, mustar: float = 0.1, cutoff_factor: float = CUTOFF_FACTOR,
                  t_guess_K: float | None = None) -> dict[str, Any]:
    """Tc (K) of the isotropic Migdal–Eliashberg equations for α²F(ω) (ω in K) and μ*.

    Returns ``{"tc_K", "below_K", "n_matsubara", "cutoff_K", "mustar_cutoff", "evaluations"}``:
    ``tc_K`` is the temperature where the largest eigenvalue of the linearised gap equation is 1;
    0.0 when λ ≤ 0; None, with ``below_K`` set, when ρ < 1 still at the lowest temperature the
    Matsubara sum resolves (:meth:`GapKernel.t_floor`). ``t_guess_K`` (e.g. the Allen–Dynes value)
    starts the bracket; by default 0.1 ω_log.
    """
    ker = GapKernel(omega_K, a2f, mustar, cutoff_factor)
    lam, wlog = ker.mom["lambda"], ker.mom["omega_log_K"]
    out: dict[str, Any] = {"tc_K": 0.0, "below_K": None, "n_matsubara": None, "cutoff_K": None,
                           "mustar_cutoff": None, "evaluations": 0}
    if lam <= 0 or ker.mom["omega2_K"] is None:
        return out
    floor = ker.t_floor()
    evals = 0

    def g(x: float) -> float:                               # ln ρ at T = e^x
        nonlocal evals
        evals += 1
        return math.log(max(ker.rho(math.exp(x)), 1e-300))

    x = math.log(max(t_guess_K or 0.1 * wlog, floor))
    gx = g(x)
    step = math.log(BRACKET_STEP)
    if gx > 0:                                               # ρ > 1: superconducting, go up
        a, ga = x, gx
        b, gb = x + step, g(x + step)
        while gb > 0:
            if evals > MAX_BRACKET_STEPS:
                raise ArithmeticError(f"Eliashberg Tc: rho > 1 still at T = {math.exp(b):.4g} K")
            a, ga, b = b, gb, b + step
            gb = g(b)
    else:                                                    # go down until ρ > 1 or the floor
        lowest = math.log(floor)
        b, gb = x, gx
        a = max(x - step, lowest)
        ga = g(a)
        while ga <= 0:
            if a <= lowest:
                out.update(tc_K=None, below_K=floor, evaluations=evals)
                return out
            b, gb, a = a, ga, max(a - step, lowest)
            ga = g(a)
    side = 0
    while b - a > T_RTOL:                                    # Illinois regula falsi on ln ρ(ln T)
        x = b - gb * (b - a) / (gb - ga)
        x = min(max(x, a + 0.02 * (b - a)), b - 0.02 * (b - a))
        gx = g(x)
        if gx > 0:
            a, ga = x, gx
            if side < 0:
                gb *= 0.5
            side = -1
        else:
            b, gb = x, gx
            if side > 0:
                ga *= 0.5
            side = 1
    tc = math.exp(0.5 * (a + b))
    n = ker.n_matsubara(tc)
    out.update(tc_K=tc, n_matsubara=n, cutoff_K=2.0 * math.pi * tc * n, mustar_cutoff=ker.mustar_at_cutoff(tc),
               evaluations=evals)
    return out
