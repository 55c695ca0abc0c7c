"""The ph.x steps: one job over every irreducible q-point (``run_all``), or split: the q-point
list with each q-point's k-point count (``init``), one job per block of q-points, blocks balanced
by those counts (``chunk``), and their collection (``collect``).

Resuming a killed or walltime-stopped job is :mod:`.phwork`'s business: finished q-points are
kept, the rest are computed in a new run directory, one ph.x process per q-point.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any, Mapping

from tcflow.dft import inputs as qi
from tcflow.dft import outputs as qo
from tcflow.dft.cell import Cell
from tcflow.dft.chain import q_chunks
from tcflow.dft.handlers import ph_handlers, ph_settings
from tcflow.dft.kcount import ph_kpoints
from tcflow.dft.protocol import needs_elph2
from tcflow.dft.runner import run_qe, run_with_retries
from tcflow.dft.stage import (OK, ResumableInterruption, StepContext, check_resumable, copy_files, copy_tree, failed,
                              merge_tree)
from tcflow.dft.steps import phwork
from tcflow.io import read_json

log = logging.getLogger(__name__)
#: ph.x refuses a smaller max_seconds ("phq_readin: Wrong max_seconds", QE 6.7), s
PH_MIN_MAX_SECONDS = 1.0


def init(ctx: StepContext) -> dict:
    """The irreducible q-points and displacement patterns (ph.x with start_irr = last_irr = 0)."""
    out, st = ctx.out, ctx.st
    copy_tree(ctx.dir("scf") / qi.OUTDIR, out / qi.OUTDIR)
    cell = Cell.read(ctx.dir("relax") / "relaxed.json")
    text = qi.ph_input(cell, proto=ctx.proto, qgrid=st["grids"]["q"], start_q=1, last_q=1, patterns_only=True,
                       masses=st.get("masses_amu"))
    res = run_qe("ph.x", text, out, "ph_init", ctx.pooled(cell, st["grids"]["k_scf"]))
    dyn0 = out / f"{qi.FILDYN}0"
    if res.code in ("ok", "interrupted") and dyn0.is_file():  # ph.x stops after the patterns (no JOB DONE)
        q = qo.parse_dyn0(dyn0)
        rec = {"status": OK, **q, **_kpoints(cell, st["grids"]["k_scf"], q["qpoints"], ctx.proto),
               "wall_s": res.wall_s, "qe_version": qo.qe_version(res.output.read_text())}
    else:
        rec = {"status": failed(res, "ph.x init"), "n_irr_q": 0, "wall_s": res.wall_s}
    if (out / phwork.PHSAVE).is_dir():
        copy_tree(out / phwork.PHSAVE, out / "phsave")
    shutil.rmtree(out / qi.OUTDIR, ignore_errors=True)  # wavefunction copy no longer needed
    return rec


def _kpoints(cell: Cell, kgrid, qpoints, proto: Mapping[str, Any]) -> dict:
    """``ph_kpoints``: the k-points ph.x will treat at each q-point (its cost; the split jobs
    share q-points out by it), or None with ``ph_kpoints_error`` when they cannot be counted
    (the jobs then share q-points out by number)."""
    try:
        return {"ph_kpoints": ph_kpoints(cell, kgrid, qpoints, float(proto["symprec_A"]))}
    except Exception as exc:  # spglib raises several types on degenerate cells; a cost estimate must not stop ph.x
        log.warning("ph.x k-points per q-point not counted (%s): q-points are shared out by number", exc)
        return {"ph_kpoints": None, "ph_kpoints_error": str(exc)}


def _run_ph(ctx: StepContext, first: int, last: int | None, what: str) -> tuple[bool, dict]:
    """ph.x on irreducible q-points first..last (None: to the end) under ``ctx.work``, one ph.x
    process per q-point; returns (success, record). A walltime stop or a kill raises
    :class:`ResumableInterruption` (the work directory stays for the next attempt)."""
    work, proto, st = ctx.work, ctx.proto, ctx.st
    n_sigma = int(proto["el_ph_nsigma"])
    previous = phwork.segments(work)
    kept, start, end = phwork.resume_point(work, first, last, n_sigma)
    rec: dict[str, Any] = {"recovered": bool(previous), "q_kept": kept, "restart_q": None, "wall_s": 0.0,
                           "attempts": [], "qe_version": None}
    if end is not None and start > end:  # every q-point was finished before the interruption
        log.info("%s: every q-point finished in %s", what, previous[-1])
        return True, {**rec, "run_dir": str(previous[-1])}
    if previous:
        rec["restart_q"] = start
    seg = work / f"run{int(previous[-1].name[3:]) + 1 if previous else 1}"
    seg.mkdir(parents=True)
    rec["run_dir"] = str(seg)
    copy_tree(ctx.dir("scf") / qi.OUTDIR, seg / qi.OUTDIR)
    log.info("%s: %s", what, f"resuming in {seg.name}: q-points {kept} kept, restarting at q-point {start}"
             if previous else "fresh start")
    cell = Cell.read(ctx.dir("relax") / "relaxed.json")
    launch = ctx.pooled(cell, st["grids"]["k_scf"])
    rec["pools"] = launch.pools
    deadline = time.monotonic() + ctx.max_seconds if ctx.max_seconds else None
    iq = start
    while end is None or iq <= end:
        budget = None if deadline is None else deadline - time.monotonic()
        if budget is not None and budget < PH_MIN_MAX_SECONDS:
            raise ResumableInterruption(f"{what}: walltime: out of time before q-point {iq} ({max(budget, 0):.2g} s "
                                        f"left, ph.x needs max_seconds >= {PH_MIN_MAX_SECONDS:g} s); "
                                        "the next attempt resumes it")
        tries = []

        def make(settings: dict, iq: int = iq) -> str:
            if tries:  # a retry: drop what the failed attempt left of this q-point
                phwork.discard_partial_q(seg, iq)
            tries.append(iq)
            p = dict(proto, alpha_mix_ph=settings["alpha_mix"])
            return qi.ph_input(cell, proto=p, qgrid=st["grids"]["q"], start_q=iq, last_q=iq,
                               max_seconds=budget, masses=st.get("masses_amu"))

        res = run_with_retries("ph.x", make, seg, f"ph.{iq}", launch, ph_settings(proto), ph_handlers(proto),
                               int(proto["ph_retries"]))
        rec["attempts"] += [{**a, "iq": iq} for a in res.attempts]
        rec["wall_s"] += res.wall_s
        rec["qe_version"] = rec["qe_version"] or qo.qe_version(res.output.read_text())
        check_resumable(res, f"{what}, q-point {iq}")
        if not res.ok:
            return False, {**rec, "status": failed(res, f"{what}, q-point {iq}")}
        if end is None:
            end = qo.parse_dyn0(seg / f"{qi.FILDYN}0")["n_irr_q"]
        iq += 1
    return True, rec


def _summary(q: Mapping[str, Any], stars: list[int], freqs: list[list[float]], wall: float) -> dict:
    return {"status": OK, "n_irr_q": q["n_irr_q"], "qgrid": q["qgrid"], "qpoints": q["qpoints"],
            "star_sizes": stars, "freqs_cm1": freqs, "max_freq_cm1": max(f for fq in freqs for f in fq),
            "wall_s": wall}


def chunk(ctx: StepContext) -> dict:
    """ph.x for the ``chunk``-th of the ``dft.ph_jobs`` shares of the irreducible q-points (read
    at run time from ``ph_init``); a chunk with no q-point records ``ok`` with none."""
    init_rec = ctx.up("ph_init")
    n_irr_q = int(init_rec["n_irr_q"])
    chunks = q_chunks(n_irr_q, ctx.ph_jobs, init_rec.get("ph_kpoints"))  # records before session 18 have none
    if not 1 <= ctx.chunk <= len(chunks):
        raise ValueError(f"{ctx.final}: chunk {ctx.chunk} out of range: dft.ph_jobs = {ctx.ph_jobs}")
    first, last = chunks[ctx.chunk - 1]
    if last < first:
        log.info("ph_q %d: no q-point left for this job (%d q-points in %d jobs)", ctx.chunk, n_irr_q, ctx.ph_jobs)
        return {"chunk": ctx.chunk, "iqs": [], "status": OK, "star_sizes": [], "freqs_cm1": [], "wall_s": 0.0,
                "recovered": False}
    label = f"ph.x q-point {first}" if first == last else f"ph.x q-points {first}-{last}"
    ok, rec = _run_ph(ctx, first, last, label)
    rec = {"chunk": ctx.chunk, "iqs": list(range(first, last + 1)), **rec}
    if not ok:
        return rec
    stars, freqs = phwork.copy_products(ctx.work, ctx.out, rec["iqs"], int(ctx.proto["el_ph_nsigma"]),
                                        dvscf=needs_elph2(ctx.proto))
    return {**rec, "status": OK, "star_sizes": stars, "freqs_cm1": freqs}


def run_all(ctx: StepContext) -> dict:
    """ph.x over every irreducible q-point in one job (``dft.ph_jobs: 1``)."""
    ok, rec = _run_ph(ctx, 1, None, "ph.x (all q-points)")
    if not ok:
        return rec
    dyn0 = phwork.dyn0(ctx.work)
    q = qo.parse_dyn0(dyn0)
    shutil.copy2(dyn0, ctx.out / f"{qi.FILDYN}0")
    stars, freqs = phwork.copy_products(ctx.work, ctx.out, range(1, q["n_irr_q"] + 1), int(ctx.proto["el_ph_nsigma"]),
                                        dvscf=needs_elph2(ctx.proto))
    return {**rec, **_summary(q, stars, freqs, rec["wall_s"]), "split": False, "n_jobs": 1}


def collect(ctx: StepContext) -> dict:
    """Gather dyn files, elph_dir and phsave of every q-point chunk into one directory."""
    init_rec, out = ctx.up("ph_init"), ctx.out
    chunk_dirs = [ctx.cand / "ph_q" / str(i) for i in range(1, ctx.ph_jobs + 1)]
    per_chunk = [read_json(d / "ph.json") for d in chunk_dirs]
    wall = sum(r["wall_s"] for r in per_chunk)
    bad = [r for r in per_chunk if r["status"] != OK]
    if bad:
        return {"status": bad[0]["status"], "wall_s": wall}
    done = [iq for r in per_chunk for iq in r["iqs"]]
    if done != list(range(1, init_rec["n_irr_q"] + 1)):
        raise RuntimeError(f"{out}: ph_q chunks computed q-points {done}, expected 1..{init_rec['n_irr_q']}")
    shutil.copy2(ctx.dir("ph_init") / f"{qi.FILDYN}0", out / f"{qi.FILDYN}0")
    for d in chunk_dirs:
        copy_files([f for f in d.iterdir() if f.is_file() and f.name.startswith(qi.FILDYN)], out)
        copy_files(sorted((d / qi.ELPH_DIR).iterdir()) if (d / qi.ELPH_DIR).is_dir() else [], out / qi.ELPH_DIR)
        copy_files(sorted((d / "phsave").iterdir()) if (d / "phsave").is_dir() else [], out / "phsave")
        if (d / "dvscf").is_dir():
            merge_tree(d / "dvscf", out / "dvscf")
    return {**_summary(init_rec, [s for r in per_chunk for s in r["star_sizes"]],
                       [f for r in per_chunk for f in r["freqs_cm1"]], wall),
            "split": True, "n_jobs": sum(bool(r["iqs"]) for r in per_chunk), "wall_s_per_job": [r["wall_s"] for r in per_chunk],
            "recovered": any(r["recovered"] for r in per_chunk),
            "recovered_q": [iq for r in per_chunk if r["recovered"] for iq in r["iqs"]]}


def elph2(ctx: StepContext) -> dict:
    """The el-ph coefficients on the second dense grid: ph.x with ``trans = .false.`` over every
    q-point, from ph's dynamical matrices, saved dvscf and displacement patterns, the coarse scf
    and ``scf_fit2``'s a2Fsave. No phonon is recomputed; a stopped run starts over on the next
    attempt."""
    out, st, ph = ctx.out, ctx.st, ctx.dir("ph")
    if not (ph / "dvscf").is_dir():
        raise RuntimeError(f"{ph}: no dvscf directory (ph ran without a second dense grid in its protocol); "
                           "rerun the candidate's ph step")
    copy_tree(ctx.dir("scf") / qi.OUTDIR, out / qi.OUTDIR)
    merge_tree(ph / "dvscf", out / qi.OUTDIR)
    copy_files(sorted((ph / "phsave").glob("patterns.*.xml")), out / phwork.PHSAVE)  # the modes dvscf is in
    shutil.copy2(ctx.dir("scf_fit2") / f"{qi.PREFIX}.a2Fsave", out / qi.OUTDIR / f"{qi.PREFIX}.a2Fsave")
    dyns = sorted(ph.glob(f"{qi.FILDYN}*"))
    copy_files(dyns, out)
    cell = Cell.read(ctx.dir("relax") / "relaxed.json")
    text = qi.ph_input(cell, proto=ctx.proto, qgrid=st["grids"]["q"], max_seconds=ctx.max_seconds,
                       masses=st.get("masses_amu"), trans=False)
    res = run_qe("ph.x", text, out, "elph2", ctx.pooled(cell, st["grids"]["k_scf"]))
    check_resumable(res, "ph.x el-ph on the second dense grid (elph2)")
    shutil.rmtree(out / qi.OUTDIR)  # wavefunction and dvscf copies
    for f in dyns:
        (out / f.name).unlink()
    rec = {"wall_s": res.wall_s, "kgrid": st["grids"]["k_dense2"], "qe_version": qo.qe_version(res.output.read_text())}
    if not res.ok:
        return {**rec, "status": failed(res, "ph.x elph2")}
    n_q = int(ctx.up("ph")["n_irr_q"])
    missing = [iq for iq in range(1, n_q + 1) if not (out / qi.ELPH_DIR / f"elph.inp_lambda.{iq}").is_file()]
    if missing:
        return {**rec, "status": f"failed: ph.x elph2: no el-ph file for q-point(s) {missing}"}
    return {**rec, "status": OK, "n_irr_q": n_q}
