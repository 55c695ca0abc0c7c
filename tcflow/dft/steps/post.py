"""Post-processing of ph.x: q2r.x (force constants), matdyn.x (phonon DOS, a2F on a dense grid;
the dynamical-stability gate) and lambda.x (λ, ω_log and Tc per broadening on the coarse q-grid)."""

from __future__ import annotations

import math

from tcflow.dft import inputs as qi
from tcflow.dft import outputs as qo
from tcflow.dft.cell import Cell
from tcflow.dft.runner import run_qe
from tcflow.dft.stage import OK, StepContext, copy_files, failed

THZ_PER_CM1 = 1.0 / qo.THZ_TO_CM1
#: lambda.x's frequency cutoff when the protocol gives none: 1.5 x highest phonon + 1 THz
EMAX_FACTOR, EMAX_MARGIN_THZ = 1.5, 1.0


def q2r(ctx: StepContext, elph: str = "ph") -> dict:
    """Interatomic force constants (and the a2F data on the q-grid) from ph's dyn files and the
    el-ph files of ``elph`` (ph, or elph2 for the second dense grid)."""
    pd, out = ctx.dir("ph"), ctx.out
    copy_files(sorted(pd.glob(f"{qi.FILDYN}*")), out)
    copy_files(sorted((ctx.dir(elph) / qi.ELPH_DIR).glob("a2Fq2r.*")), out / qi.ELPH_DIR)
    res = run_qe("q2r.x", qi.q2r_input(ctx.proto), out, "q2r", ctx.launch)
    return {"wall_s": res.wall_s, "status": OK if res.ok else failed(res, "q2r.x")}


def q2r2(ctx: StepContext) -> dict:
    """:func:`q2r` with the second dense grid's el-ph files (``elph2``)."""
    return q2r(ctx, "elph2")


def min_freq_outside_gamma(cell: Cell, qpts, freqs, frac: float) -> float:
    """Lowest frequency (cm^-1) over q-points farther than ``frac`` x the shortest reciprocal
    vector from Γ (q in 2π/alat Cartesian, alat = |a_1| for CELL_PARAMETERS angstrom)."""
    import numpy as np

    alat = cell.lengths[0]
    lat = np.array(cell.lattice) / alat                 # direct vectors in alat units
    recip = np.linalg.inv(lat).T                        # reciprocal vectors in 2π/alat units (rows)
    radius = frac * min(np.linalg.norm(recip, axis=1))
    low = math.inf
    for q, f in zip(qpts, freqs):
        fr = np.linalg.solve(recip.T, np.asarray(q))    # fractional coordinates in the reciprocal basis
        fr -= np.round(fr)
        if np.linalg.norm(recip.T @ fr) < radius:
            continue
        low = min(low, min(f))
    return low


def matdyn(ctx: StepContext, q2r_step: str = "q2r") -> dict:
    """Phonon DOS and a2F on the dense grid (ASR imposed) from ``q2r_step``'s files; the
    dynamical-stability gate."""
    qd, out, proto = ctx.dir(q2r_step), ctx.out, ctx.proto
    cell = Cell.read(ctx.dir("relax") / "relaxed.json")
    copy_files([qd / qi.FLFRC], out)
    copy_files(sorted((qd / qi.ELPH_DIR).glob("a2Fmatdyn.*")), out / qi.ELPH_DIR)
    res = run_qe("matdyn.x", qi.matdyn_input(cell, proto, masses=ctx.st.get("masses_amu")), out, "matdyn",
                 ctx.launch)
    if not res.ok:
        return {"wall_s": res.wall_s, "status": failed(res, "matdyn.x")}
    qpts, freqs = qo.parse_matdyn_freq(out / qi.FLFRQ)
    min_f = min_freq_outside_gamma(cell, qpts, freqs, float(proto["gamma_exclusion_frac"]))
    threshold = float(proto["unstable_freq_cm1"])
    return {"wall_s": res.wall_s, "status": OK, "lambda_table": qo.parse_matdyn_lambda(out / "lambda"),
            "min_freq_cm1": min_f, "min_freq_cm1_all": min(min(f) for f in freqs),
            "unstable_freq_cm1": threshold, "dynamically_stable": min_f >= threshold}


def matdyn2(ctx: StepContext) -> dict:
    """:func:`matdyn` from ``q2r2``: α²F and λ(σ) of the second dense grid (same phonons)."""
    return matdyn(ctx, "q2r2")


def lambda_(ctx: StepContext) -> dict:
    """lambda.x on the per-q elph files (coarse q-grid, star weights from the dyn files)."""
    pd, out, proto, ph = ctx.dir("ph"), ctx.out, ctx.proto, ctx.up("ph")
    copy_files(sorted((pd / qi.ELPH_DIR).glob("elph.inp_lambda.*")), out / qi.ELPH_DIR)
    emax = proto["lambda_emax_THz"]
    if emax is None:
        emax = EMAX_FACTOR * ph["max_freq_cm1"] * THZ_PER_CM1 + EMAX_MARGIN_THZ
    text = qi.lambda_input(ph["qpoints"], ph["star_sizes"], emax_THz=float(emax),
                           degauss_THz=float(proto["lambda_degauss_THz"]), mustar=float(proto["mustar"]))
    res = run_qe("lambda.x", text, out, "lambda", ctx.launch)
    rows = qo.parse_lambda_x(res.output.read_text())
    if not rows:  # lambda.x prints no JOB DONE; its table is the success criterion
        return {"status": f"failed: lambda.x: no lambda table in {res.output}", "wall_s": res.wall_s}
    return {"status": OK, "wall_s": res.wall_s, "emax_THz": emax, "lambda_table": rows}
