"""One function per step of the per-candidate el-ph chain; the Snakemake rules call them.

Layout under ``results/dft/<cid>/`` (one directory per step, each with its QE inputs, outputs and a
parsed ``<step>.json`` carrying ``status``)::

    structure/  relax/  scf_fit/  scf/  [ph_init/  ph_q/<chunk>/]  ph/  q2r/  matdyn/  lambda/  tc.json

ph.x runs either once over all irreducible q-points inside the ``ph`` step (``dft.q_per_job: 0``),
or split: ``ph_init`` lists the irreducible q-points and each ``ph_q/<chunk>`` job computes
``q_per_job`` of them, then ``ph`` collects their files.

A step whose upstream status is not ``ok`` writes its record with that status and runs nothing,
so an insulator or a missing pseudopotential stops one candidate without failing the workflow.
QE failures that retries cannot fix become ``failed: <code>: <reason>``. Interrupted runs
(walltime, kill) raise, so Snakemake reruns the job; ph.x then resumes at the first q-point it
had not finished (see :func:`_run_ph`).
The ``<step>.json`` is always written last and atomically: its presence means the step finished.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from tcflow.dft import inputs as qi
from tcflow.dft.cell import Cell, element_masses
from tcflow.dft import outputs as qo
from tcflow.dft.eliashberg import choose_broadening, tc_table
from tcflow.dft.protocol import derive_cutoffs, derive_grids, get_protocol
from tcflow.dft.pseudos import MissingPseudopotential, load_family, resolve_pseudos
from tcflow.dft.runner import Launch, ph_handler, pw_handler, run_qe, run_with_retries
from tcflow.dft.symmetry import standardise
from tcflow.io import atomic_write_json, atomic_write_text, read_json
from tcflow.smk import raise_if_interrupted

log = logging.getLogger(__name__)
OK = "ok"
RESUMABLE = ("walltime", "interrupted")
#: step -> its record under the candidate directory, in chain order (ph_init only in the split mode)
STEP_RECORDS = {"structure": "structure/structure.json", "relax": "relax/relax.json",
                "scf_fit": "scf_fit/scf_fit.json", "scf": "scf/scf.json", "ph_init": "ph_init/qpoints.json",
                "ph": "ph/ph.json", "q2r": "q2r/q2r.json", "matdyn": "matdyn/matdyn.json",
                "lambda": "lambda/lambda.json"}
STEP_ORDER = tuple(STEP_RECORDS)
PHSAVE = f"{qi.OUTDIR}/_ph0/{qi.PREFIX}.phsave"
THZ_PER_CM1 = 1.0 / qo.THZ_TO_CM1
EMAX_FACTOR, EMAX_MARGIN_THZ = 1.5, 1.0


class ResumableInterruption(RuntimeError):
    """A QE run stopped by walltime or a kill: the job fails and a rerun resumes it."""


def _staged(func):
    """Run a step in ``.<outdir>.partial`` and rename it onto ``outdir`` only when the step returns:
    a killed job leaves no output directory, so Snakemake sees the output missing and reruns it."""
    sig = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        out = Path(bound.arguments["outdir"])
        stage = out.parent / f".{out.name}.partial"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        bound.arguments["outdir"] = stage
        result = func(*bound.args, **bound.kwargs)
        _publish(stage, out)
        return result

    return wrapper


def _record(path: Path, rec: Mapping[str, Any]) -> dict:
    rec = dict(rec)
    atomic_write_json(path, rec)
    return rec


def _upstream(json_path: str | Path) -> dict:
    return read_json(json_path)


def _skip(out_json: Path, upstream: Mapping[str, Any]) -> dict:
    log.info("upstream status %r: skipping", upstream["status"])
    return _record(out_json, {"status": upstream["status"], "skipped": True})


def _failed(res, what: str) -> str:
    return f"failed: {what}: {res.code}: {res.reason}"


def _check_resumable(res, what: str) -> None:
    if res.code in RESUMABLE:
        raise ResumableInterruption(f"{what}: {res.code} ({res.reason}); rerun to resume")


def _structure(path: str | Path):
    from pymatgen.core import Structure

    return Structure.from_file(str(path))


def _cell(path: str | Path) -> Cell:
    """The cell of a structure JSON without importing pymatgen (see tcflow.dft.cell)."""
    return Cell.read(path)


def _masses(st: Mapping[str, Any]) -> dict[str, float] | None:
    return st.get("masses_amu")


def _save_structure(structure, json_path: Path) -> None:
    """Keep the exact lattice matrix (JSON), not only a CIF: QE finds symmetry operations only
    in spglib's standard orientation, which a CIF (lengths and angles) does not preserve."""
    atomic_write_text(json_path, structure.to_json())
    atomic_write_text(json_path.with_suffix(".cif"), structure.to(fmt="cif"))


def _copy_outdir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)


# ----------------------------------------------------------------------------- structure
@_staged
def step_structure(cif: str | Path, outdir: str | Path, cfg: Mapping[str, Any], pseudo_dir: str | Path) -> dict:
    """Read, standardise (spglib) and check a candidate; resolve protocol, pseudos, cutoffs, grids."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "structure.json"
    proto = get_protocol(cfg["protocol"], cfg.get("overrides"))  # a config error fails loudly
    try:
        s = _structure(cif)
    except Exception as exc:  # pymatgen raises many types for a bad CIF
        return _record(rec_path, {"status": f"error: malformed CIF {cif}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"})
    atomic_write_text(out / "input.cif", Path(cif).read_text())
    try:
        sym_in = standardise(s, proto["symprec_A"], proto["angle_tolerance_deg"])
    except Exception as exc:
        return _record(rec_path, {"status": f"error: symmetry analysis failed for {cif}: {exc}"})
    std = sym_in.structure
    elements = sorted({site.specie.symbol for site in std})
    try:
        pseudos = resolve_pseudos(elements, pseudo_dir, cfg.get("pseudo_map"))
    except MissingPseudopotential as exc:
        return _record(rec_path, {"status": f"error: no pseudopotential for {exc.element}",
                                  "detail": str(exc), "symmetry_input": sym_in.record()})
    cutoffs = derive_cutoffs(proto, elements, load_family(pseudo_dir))
    grids = derive_grids(proto, std.lattice.abc)
    _save_structure(std, out / "standard.json")
    return _record(rec_path, {
        "status": OK, "protocol": proto, "pseudo_dir": str(Path(pseudo_dir).resolve()), "pseudos": pseudos,
        "cutoffs": cutoffs, "grids": grids, "elements": elements, "masses_amu": element_masses(elements),
        "symmetry_input": {**sym_in.record(), "natoms_input": len(s)},
    })


# ----------------------------------------------------------------------------- pw.x steps
def _pw_settings(proto: Mapping[str, Any]) -> dict:
    return {"mixing_beta": float(proto["mixing_beta"]), "electron_maxstep": int(proto["electron_maxstep"])}


def _run_pw(structure, st: Mapping[str, Any], workdir: Path, name: str, calculation: str, kgrid,
            launch: Launch, la2f: bool, max_seconds: float | None):
    proto = st["protocol"]

    def make(settings: dict) -> str:
        p = dict(proto, mixing_beta=settings["mixing_beta"], electron_maxstep=settings["electron_maxstep"])
        extra = {"diagonalization": settings["diagonalization"]} if "diagonalization" in settings else None
        return qi.pw_input(structure, calculation=calculation, proto=p, cutoffs=st["cutoffs"], kgrid=kgrid,
                           pseudo_dir=st["pseudo_dir"], pseudos=st["pseudos"], la2f=la2f,
                           max_seconds=max_seconds, extra_electrons=extra, masses=_masses(st))

    return run_with_retries("pw.x", make, workdir, name, launch, _pw_settings(proto), pw_handler,
                            int(proto["scf_retries"]))


@_staged
def step_relax(structure_dir: str | Path, outdir: str | Path, launch: Launch,
               max_seconds: float | None = None) -> dict:
    """vc-relax (or none, per protocol), then re-standardise the relaxed cell."""
    sd, out = Path(structure_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "relax.json"
    st = _upstream(sd / "structure.json")
    if st["status"] != OK:
        return _skip(rec_path, st)
    proto = st["protocol"]
    rec: dict[str, Any] = {"relaxed": bool(proto["relax"])}
    if not proto["relax"]:  # the standardised input cell, as it is (no second standardisation needed)
        for suffix in (".json", ".cif"):
            shutil.copy2(sd / f"standard{suffix}", out / f"relaxed{suffix}")
        cell = _cell(out / "relaxed.json")
        return _record(rec_path, {**rec, "status": OK, "symmetry_relaxed": st["symmetry_input"],
                                  "volume_A3": cell.volume})
    res = _run_pw(_cell(sd / "standard.json"), st, out, "relax", "vc-relax", st["grids"]["k_relax"], launch,
                  False, max_seconds)
    rec.update(wall_s=res.wall_s, attempts=res.attempts, **qo.parse_pw(res.output.read_text()))
    _check_resumable(res, "pw.x vc-relax")
    if not res.ok:
        return _record(rec_path, {**rec, "status": _failed(res, "vc-relax")})
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    s = AseAtomsAdaptor.get_structure(read(res.output, format="espresso-out", index=-1))
    sym = standardise(s, proto["symprec_A"], proto["angle_tolerance_deg"])
    _save_structure(sym.structure, out / "relaxed.json")
    return _record(rec_path, {**rec, "status": OK, "symmetry_relaxed": sym.record(),
                              "volume_A3": sym.structure.volume})


@_staged
def step_scf_fit(structure_dir, relax_dir, outdir, launch: Launch, max_seconds=None) -> dict:
    """scf with ``la2F`` on the dense k-grid; the metallicity gate (insulator stops here)."""
    sd, rd, out = Path(structure_dir), Path(relax_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "scf_fit.json"
    up = _upstream(rd / "relax.json")
    if up["status"] != OK:
        return _skip(rec_path, up)
    st = _upstream(sd / "structure.json")
    s = _cell(rd / "relaxed.json")
    res = _run_pw(s, st, out, "scf_fit", "scf", st["grids"]["k_dense"], launch, True, max_seconds)
    rec = {"wall_s": res.wall_s, "attempts": res.attempts, "kgrid": st["grids"]["k_dense"],
           **qo.parse_pw(res.output.read_text())}
    _check_resumable(res, "pw.x scf (la2F)")
    if not res.ok:
        return _record(rec_path, {**rec, "status": _failed(res, "scf_fit")})
    gap = qo.band_gap_from_xml(out / qi.OUTDIR / f"{qi.PREFIX}.xml")
    rec.update(gap)
    threshold = float(st["protocol"]["metal_gap_eV"])
    rec["status"] = "insulator" if gap["gap_eV"] > threshold else OK
    rec["metal_gap_eV_threshold"] = threshold
    return _record(rec_path, rec)


@_staged
def step_scf(structure_dir, relax_dir, scf_fit_dir, outdir, launch: Launch, max_seconds=None) -> dict:
    """The scf ph.x starts from: the coarse k-grid run in a copy of the la2F outdir (keeps
    ``<prefix>.a2Fsave``), or the la2F run itself when the protocol has one scf only."""
    sd, rd, fd, out = Path(structure_dir), Path(relax_dir), Path(scf_fit_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "scf.json"
    up = _upstream(fd / "scf_fit.json")
    if up["status"] != OK:
        return _skip(rec_path, up)
    st = _upstream(sd / "structure.json")
    _copy_outdir(fd / qi.OUTDIR, out / qi.OUTDIR)
    if st["grids"]["k_scf"] == st["grids"]["k_dense"]:
        return _record(rec_path, {"status": OK, "separate_scf": False, "wall_s": 0.0,
                                  "kgrid": st["grids"]["k_scf"]})
    s = _cell(rd / "relaxed.json")
    res = _run_pw(s, st, out, "scf", "scf", st["grids"]["k_scf"], launch, False, max_seconds)
    rec = {"separate_scf": True, "wall_s": res.wall_s, "attempts": res.attempts, "kgrid": st["grids"]["k_scf"],
           **qo.parse_pw(res.output.read_text())}
    _check_resumable(res, "pw.x scf")
    if not res.ok:
        return _record(rec_path, {**rec, "status": _failed(res, "scf")})
    return _record(rec_path, {**rec, "status": OK})


# ----------------------------------------------------------------------------- ph.x
def q_chunks(n_irr_q: int, q_per_job: int) -> list[tuple[int, int]]:
    """1-based inclusive (first, last) irreducible q-point ranges of the split ph.x jobs."""
    if q_per_job < 1:
        raise ValueError(f"q_per_job must be >= 1 for split ph.x runs, got {q_per_job}")
    return [(first, min(first + q_per_job - 1, n_irr_q)) for first in range(1, n_irr_q + 1, q_per_job)]


@_staged
def step_ph_init(structure_dir, relax_dir, scf_dir, outdir, launch: Launch) -> dict:
    """The irreducible q-points and displacement patterns (ph.x with start_irr = last_irr = 0)."""
    sd, rd, scd, out = Path(structure_dir), Path(relax_dir), Path(scf_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "qpoints.json"
    up = _upstream(scd / "scf.json")
    if up["status"] != OK:
        return _record(rec_path, {"status": up["status"], "skipped": True, "n_irr_q": 0})
    st = _upstream(sd / "structure.json")
    s = _cell(rd / "relaxed.json")
    _copy_outdir(scd / qi.OUTDIR, out / qi.OUTDIR)
    text = qi.ph_input(s, proto=st["protocol"], qgrid=st["grids"]["q"], start_q=1, last_q=1, patterns_only=True,
                       masses=_masses(st))
    res = run_qe("ph.x", text, out, "ph_init", launch)
    dyn0 = out / f"{qi.FILDYN}0"
    if res.code in ("ok", "interrupted") and dyn0.is_file():  # ph.x stops after the patterns (no JOB DONE)
        q = qo.parse_dyn0(dyn0)
        rec = {"status": OK, **q, "wall_s": res.wall_s, "qe_version": qo.qe_version(res.output.read_text())}
    else:
        rec = {"status": _failed(res, "ph.x init"), "n_irr_q": 0, "wall_s": res.wall_s}
    if (out / PHSAVE).is_dir():
        _copy_outdir(out / PHSAVE, out / "phsave")
    shutil.rmtree(out / qi.OUTDIR, ignore_errors=True)  # wavefunction copy no longer needed
    return _record(rec_path, rec)


def _ph_products(work: Path, iq: int) -> list[Path]:
    elph = sorted((work / qi.ELPH_DIR).glob(f"*.{iq}"))
    return [work / f"{qi.FILDYN}{iq}", *elph]


def q_point_complete(work: Path, iq: int, n_sigma: int) -> bool:
    """True when ph.x finished irreducible q-point ``iq`` in ``work``: its el-ph files are complete
    (``elph.inp_lambda.<iq>`` with every broadening, one ``a2Fq2r.*.<iq>`` per broadening) and its
    dynamical-matrix file ``dyn<iq>``, which ph.x finishes last, ends with the frequency block."""
    lam, dyn = work / qi.ELPH_DIR / f"elph.inp_lambda.{iq}", work / f"{qi.FILDYN}{iq}"
    if not (lam.is_file() and dyn.is_file()):
        return False
    lines = lam.read_text(errors="replace").splitlines()
    try:
        n_modes = int(lines[0].split()[-1])
    except (IndexError, ValueError):
        return False
    a2f = list((work / qi.ELPH_DIR).glob(f"a2Fq2r.*.{iq}"))
    dyn_text = dyn.read_text(errors="replace").rstrip()
    return (len(lines) >= 2 + n_sigma * (2 + n_modes) and len(a2f) == n_sigma
            and len(qo.dyn_frequencies_cm1(dyn)) == n_modes and dyn_text.endswith("*" * 20))


def _discard_partial_q(work: Path, iq: int) -> None:
    """Remove what an interrupted ph.x left of q-point ``iq``: its dyn and el-ph files, its
    partial-representation records in phsave and its k+q bands directory."""
    for f in [work / f"{qi.FILDYN}{iq}", *(work / qi.ELPH_DIR).glob(f"*.{iq}"),
              *(work / PHSAVE).glob(f"dynmat.{iq}.*.xml"), *(work / PHSAVE).glob(f"elph.{iq}.*.xml")]:
        f.unlink(missing_ok=True)
    (work / PHSAVE / "status_run.xml").unlink(missing_ok=True)
    shutil.rmtree(work / qi.OUTDIR / "_ph0" / f"{qi.PREFIX}.q_{iq}", ignore_errors=True)


def _segments(work: Path) -> list[Path]:
    """The ph.x runs made in ``work`` so far (``run1``, ``run2``, ...: one per start or restart)."""
    runs = [d for d in work.glob("run*") if d.is_dir() and d.name[3:].isdigit()]
    return sorted(runs, key=lambda d: int(d.name[3:]))


def _q_source(work: Path, iq: int, n_sigma: int) -> Path | None:
    """The latest run directory in which q-point ``iq`` is complete, or None."""
    return next((seg for seg in reversed(_segments(work)) if q_point_complete(seg, iq, n_sigma)), None)


def _resume_point(work: Path, first: int, last: int | None, n_sigma: int) -> tuple[list[int], int, int | None]:
    """(q-points finished in the runs under ``work``, counted from ``first`` without a gap; the
    q-point to start at; the last q-point, or None while no run has listed the q-points yet)."""
    dyn0 = next((seg / f"{qi.FILDYN}0" for seg in _segments(work) if (seg / f"{qi.FILDYN}0").is_file()), None)
    end = last if last is not None else (qo.parse_dyn0(dyn0)["n_irr_q"] if dyn0 else None)
    kept: list[int] = []
    if end is not None:
        for iq in range(first, end + 1):
            if _q_source(work, iq, n_sigma) is None:
                break
            kept.append(iq)
    return kept, first + len(kept), end


def _run_ph(st: Mapping[str, Any], rd: Path, scd: Path, work: Path, first: int, last: int | None,
            launch: Launch, max_seconds: float | None, what: str) -> tuple[Any, dict]:
    """ph.x on irreducible q-points first..last (None: to the end) under ``work``, which is not a
    Snakemake output and so survives an interrupted job.

    Each start is a run directory ``work/run<k>`` with its own copy of the scf outdir. A rerun
    after an interruption keeps the q-points that earlier runs finished (see
    :func:`q_point_complete`) and starts a new run directory at the first unfinished q-point
    (``start_q``). It neither uses ph.x's own ``recover`` nor reuses the killed run's outdir, whose
    files a kill may have cut mid-write: with QE 6.7, resuming a representation whose
    self-consistent cycle was cut by a kill gave wrong frequencies (fcc Al, q-point 5: a mode at
    410.5 cm^-1 instead of 293.4). A restarted run reproduces the uninterrupted lambda to the
    run-history noise of ph.x (<= 0.14 % for fcc Al at tr2_ph = 1e-10).
    ``st`` is the structure step's record. Returns (result, record); the record's ``run_dir``
    holds the last run."""
    proto = st["protocol"]
    s = _cell(rd / "relaxed.json")
    n_sigma = int(proto["el_ph_nsigma"])
    previous = _segments(work)
    kept, start, end = _resume_point(work, first, last, n_sigma)
    resumed = bool(previous)
    if end is not None and start > end:  # every q-point was finished before the interruption
        log.info("%s: every q-point finished in %s", what, previous[-1])
        return _AllDone(), {"recovered": True, "q_kept": kept, "restart_q": None, "wall_s": 0.0, "attempts": [],
                            "qe_version": None, "run_dir": str(previous[-1])}
    seg = work / f"run{int(previous[-1].name[3:]) + 1 if previous else 1}"
    seg.mkdir(parents=True)
    _copy_outdir(scd / qi.OUTDIR, seg / qi.OUTDIR)
    log.info("%s: %s", what, f"resuming in {seg.name}: q-points {kept} kept, restarting at q-point {start}"
             if resumed else "fresh start")
    starts: list[int] = []

    def make(settings: dict) -> str:
        q0 = start
        if starts:  # a retry in the same run directory: keep what it finished, drop the partial q-point
            q0 = _resume_point(work, first, last, n_sigma)[1]
            _discard_partial_q(seg, q0)
        starts.append(q0)
        extra = {k: v for k, v in settings.items() if k in ("search_sym",)}
        p = dict(proto, alpha_mix_ph=settings.get("alpha_mix", proto["alpha_mix_ph"]))
        return qi.ph_input(s, proto=p, qgrid=st["grids"]["q"], start_q=q0, last_q=last,
                           max_seconds=max_seconds, extra=extra, masses=_masses(st))

    res = run_with_retries("ph.x", make, seg, "ph", launch, {}, ph_handler, int(proto["ph_retries"]))
    rec = {"recovered": resumed, "q_kept": kept, "restart_q": start if resumed else None,
           "start_q_per_attempt": starts, "run_dir": str(seg), "wall_s": res.wall_s, "attempts": res.attempts,
           "qe_version": qo.qe_version(res.output.read_text())}
    _check_resumable(res, what)
    return res, rec


class _AllDone:
    """Stands in for a QE result when a rerun finds every q-point already finished."""

    ok = True
    code = "ok"
    reason = "all q-points finished before the interruption"


def _copy_ph_products(work: Path, out: Path, iqs, n_sigma: int) -> tuple[list[int], list[list[float]]]:
    """dyn<iq> and elph_dir files of q-points ``iqs`` (each from the run that finished it) and the
    last run's phsave directory, work -> out; returns the star size and frequencies (cm^-1) of
    each q-point."""
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    stars, freqs = [], []
    for iq in iqs:
        src = _q_source(work, iq, n_sigma)
        if src is None:
            raise RuntimeError(f"{work}: ph.x reported success but q-point {iq} is incomplete")
        for f in _ph_products(src, iq):
            shutil.copy2(f, out / f.relative_to(src))
        dyn = out / f"{qi.FILDYN}{iq}"
        stars.append(qo.dyn_star_size(dyn))
        freqs.append(qo.dyn_frequencies_cm1(dyn))
    last_run = _segments(work)[-1]
    if (last_run / PHSAVE).is_dir():
        _copy_outdir(last_run / PHSAVE, out / "phsave")
    return stars, freqs


def step_ph_q(structure_dir, relax_dir, scf_dir, ph_init_dir, chunk: int, q_per_job: int, outdir,
              launch: Launch, max_seconds=None) -> dict:
    """ph.x for the ``chunk``-th block of ``q_per_job`` irreducible q-points, in its own work
    directory ``<outdir>.work``; a rerun keeps the q-points it finished."""
    sd, rd, scd, out = Path(structure_dir), Path(relax_dir), Path(scf_dir), Path(outdir)
    work = out.parent / f"{out.name}.work"
    final, out = out, out.parent / f".{out.name}.partial"  # renamed onto `final` when done
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rec_path = out / "ph.json"
    n_irr_q = int(_upstream(Path(ph_init_dir) / "qpoints.json")["n_irr_q"])
    chunks = q_chunks(n_irr_q, q_per_job)
    if not 1 <= chunk <= len(chunks):
        raise ValueError(f"{final}: chunk {chunk} out of range: {n_irr_q} q-points in {len(chunks)} chunks")
    first, last = chunks[chunk - 1]
    label = f"ph.x q-point {first}" if first == last else f"ph.x q-points {first}-{last}"
    st = _upstream(sd / "structure.json")
    res, rec = _run_ph(st, rd, scd, work, first, last, launch, max_seconds, label)
    rec = {"chunk": chunk, "iqs": list(range(first, last + 1)), **rec}
    if not res.ok:
        rec = _record(rec_path, {**rec, "status": _failed(res, label)})
    else:
        stars, freqs = _copy_ph_products(work, out, rec["iqs"], int(st["protocol"]["el_ph_nsigma"]))
        rec = _record(rec_path, {**rec, "status": OK, "star_sizes": stars, "freqs_cm1": freqs})
    _publish(out, final)
    return rec


def _publish(stage: Path, final: Path) -> None:
    """Rename the finished ``stage`` directory onto ``final`` (not after a Ctrl-C: see
    :func:`tcflow.smk.watch_interrupt`)."""
    raise_if_interrupted(final)
    if final.exists():
        shutil.rmtree(final)
    os.replace(stage, final)


def _ph_summary(q: Mapping[str, Any], stars: list[int], freqs: list[list[float]], wall: float) -> dict:
    return {"status": OK, "n_irr_q": q["n_irr_q"], "qgrid": q["qgrid"], "qpoints": q["qpoints"],
            "star_sizes": stars, "freqs_cm1": freqs, "max_freq_cm1": max(f for fq in freqs for f in fq),
            "wall_s": wall}


@_staged
def step_ph_collect(ph_init_dir, ph_q_dirs, outdir) -> dict:
    """Gather dyn files, elph_dir and phsave of every q-point chunk into one directory."""
    pi, out = Path(ph_init_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "ph.json"
    init = _upstream(pi / "qpoints.json")
    if init["status"] != OK:
        return _skip(rec_path, init)
    per_chunk = [read_json(Path(d) / "ph.json") for d in ph_q_dirs]
    bad = [r for r in per_chunk if r["status"] != OK]
    wall = sum(r["wall_s"] for r in per_chunk)
    if bad:
        return _record(rec_path, {"status": bad[0]["status"], "wall_s": wall})
    done = [iq for r in per_chunk for iq in r["iqs"]]
    if done != list(range(1, init["n_irr_q"] + 1)):
        raise RuntimeError(f"{out}: ph_q chunks computed q-points {done}, expected 1..{init['n_irr_q']}")
    shutil.copy2(pi / f"{qi.FILDYN}0", out / f"{qi.FILDYN}0")
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    (out / "phsave").mkdir(exist_ok=True)
    for d in map(Path, ph_q_dirs):
        for f in d.iterdir():
            if f.is_file() and f.name.startswith(qi.FILDYN):
                shutil.copy2(f, out / f.name)
        for f in (d / qi.ELPH_DIR).iterdir():
            shutil.copy2(f, out / qi.ELPH_DIR / f.name)
        for f in (d / "phsave").iterdir():
            shutil.copy2(f, out / "phsave" / f.name)
    return _record(rec_path, {
        **_ph_summary(init, [s for r in per_chunk for s in r["star_sizes"]],
                      [f for r in per_chunk for f in r["freqs_cm1"]], wall),
        "split": True, "n_jobs": len(per_chunk), "wall_s_per_job": [r["wall_s"] for r in per_chunk],
        "recovered": any(r["recovered"] for r in per_chunk),
        "recovered_q": [iq for r in per_chunk if r["recovered"] for iq in r["iqs"]],
    })


def step_ph(structure_dir, relax_dir, scf_dir, outdir, launch: Launch, max_seconds=None) -> dict:
    """ph.x over all irreducible q-points in one run (``dft.q_per_job: 0``), in the work directory
    ``<outdir>.work`` (kept across an interrupted job: a rerun keeps the q-points it finished)."""
    sd, rd, scd, out = Path(structure_dir), Path(relax_dir), Path(scf_dir), Path(outdir)
    work = out.parent / f"{out.name}.work"
    final, out = out, out.parent / f".{out.name}.partial"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rec_path = out / "ph.json"
    up = _upstream(scd / "scf.json")
    if up["status"] != OK:
        rec = _skip(rec_path, up)
        _publish(out, final)
        return rec
    st = _upstream(sd / "structure.json")
    res, rec = _run_ph(st, rd, scd, work, 1, None, launch, max_seconds, "ph.x (all q-points)")
    if not res.ok:
        rec = _record(rec_path, {**rec, "status": _failed(res, "ph.x")})
    else:
        dyn0 = next(seg / f"{qi.FILDYN}0" for seg in _segments(work) if (seg / f"{qi.FILDYN}0").is_file())
        q = qo.parse_dyn0(dyn0)
        shutil.copy2(dyn0, out / f"{qi.FILDYN}0")
        stars, freqs = _copy_ph_products(work, out, range(1, q["n_irr_q"] + 1), int(st["protocol"]["el_ph_nsigma"]))
        rec = _record(rec_path, {**rec, **_ph_summary(q, stars, freqs, res.wall_s), "split": False, "n_jobs": 1})
    _publish(out, final)
    return rec


# ----------------------------------------------------------------------------- post-processing
@_staged
def step_q2r(structure_dir, ph_dir, outdir, launch: Launch) -> dict:
    sd, pd, out = Path(structure_dir), Path(ph_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "q2r.json"
    up = _upstream(pd / "ph.json")
    if up["status"] != OK:
        return _skip(rec_path, up)
    st = _upstream(sd / "structure.json")
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    for f in pd.glob(f"{qi.FILDYN}*"):
        shutil.copy2(f, out / f.name)
    for f in (pd / qi.ELPH_DIR).glob("a2Fq2r.*"):
        shutil.copy2(f, out / qi.ELPH_DIR / f.name)
    res = run_qe("q2r.x", qi.q2r_input(st["protocol"]), out, "q2r", launch)
    rec = {"wall_s": res.wall_s}
    if not res.ok:
        return _record(rec_path, {**rec, "status": _failed(res, "q2r.x")})
    return _record(rec_path, {**rec, "status": OK})


def _min_freq_outside_gamma(cell: Cell, qpts, freqs, frac: float) -> float:
    """Lowest frequency (cm^-1) over q-points farther than ``frac`` x the shortest reciprocal
    vector from Γ (q in 2π/alat Cartesian, alat = |a_1| for CELL_PARAMETERS angstrom)."""
    import numpy as np

    alat = cell.lengths[0]
    lat = np.array(cell.lattice) / alat                            # direct vectors in alat units
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


@_staged
def step_matdyn(structure_dir, relax_dir, q2r_dir, outdir, launch: Launch) -> dict:
    """Phonon DOS and a2F on the dense grid (ASR imposed); the dynamical-stability gate."""
    sd, rd, qd, out = Path(structure_dir), Path(relax_dir), Path(q2r_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "matdyn.json"
    up = _upstream(qd / "q2r.json")
    if up["status"] != OK:
        return _skip(rec_path, up)
    st = _upstream(sd / "structure.json")
    proto = st["protocol"]
    s = _cell(rd / "relaxed.json")
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    shutil.copy2(qd / qi.FLFRC, out / qi.FLFRC)
    for f in (qd / qi.ELPH_DIR).glob("a2Fmatdyn.*"):
        shutil.copy2(f, out / qi.ELPH_DIR / f.name)
    res = run_qe("matdyn.x", qi.matdyn_input(s, proto, masses=_masses(st)), out, "matdyn", launch)
    rec: dict[str, Any] = {"wall_s": res.wall_s}
    if not res.ok:
        return _record(rec_path, {**rec, "status": _failed(res, "matdyn.x")})
    qpts, freqs = qo.parse_matdyn_freq(out / qi.FLFRQ)
    min_f = _min_freq_outside_gamma(s, qpts, freqs, float(proto["gamma_exclusion_frac"]))
    threshold = float(proto["unstable_freq_cm1"])
    return _record(rec_path, {**rec, "status": OK, "lambda_table": qo.parse_matdyn_lambda(out / "lambda"),
                              "min_freq_cm1": min_f, "min_freq_cm1_all": min(min(f) for f in freqs),
                              "unstable_freq_cm1": threshold, "dynamically_stable": min_f >= threshold})


@_staged
def step_lambda(structure_dir, ph_dir, outdir, launch: Launch) -> dict:
    """lambda.x on the per-q elph files (coarse q-grid, star weights from the dyn files)."""
    sd, pd, out = Path(structure_dir), Path(ph_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "lambda.json"
    up = _upstream(pd / "ph.json")
    if up["status"] != OK:
        return _skip(rec_path, up)
    proto = _upstream(sd / "structure.json")["protocol"]
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    for f in (pd / qi.ELPH_DIR).glob("elph.inp_lambda.*"):
        shutil.copy2(f, out / qi.ELPH_DIR / f.name)
    emax = proto["lambda_emax_THz"]
    if emax is None:
        emax = EMAX_FACTOR * up["max_freq_cm1"] * THZ_PER_CM1 + EMAX_MARGIN_THZ
    text = qi.lambda_input(up["qpoints"], up["star_sizes"], emax_THz=float(emax),
                           degauss_THz=float(proto["lambda_degauss_THz"]), mustar=float(proto["mustar"]))
    res = run_qe("lambda.x", text, out, "lambda", launch)
    rows = qo.parse_lambda_x(res.output.read_text())
    if not rows:  # lambda.x prints no JOB DONE; its table is the success criterion
        return _record(rec_path, {"status": f"failed: lambda.x: no lambda table in {res.output}", "wall_s": res.wall_s})
    return _record(rec_path, {"status": OK, "wall_s": res.wall_s, "emax_THz": emax, "lambda_table": rows})


# ----------------------------------------------------------------------------- Tc
def step_tc(cid: str, cand_dir, out_json, mustar_override: float | None = None) -> dict:
    """Combine the step records into ``tc.json``: status, chosen lambda / omega_log / Tc, the
    per-broadening table (matdyn a2F and lambda.x), N(E_F), min frequency, symmetry, wall times."""
    d = Path(cand_dir)
    recs = {k: read_json(d / v) for k, v in STEP_RECORDS.items() if k != "ph_init" or (d / v).is_file()}
    status = next((r["status"] for k in STEP_ORDER if k in recs and (r := recs[k])["status"] != OK), OK)
    st = recs["structure"]
    out: dict[str, Any] = {
        "cid": cid, "status": status, "lambda": None, "omega_log_K": None, "tc_K": None, "n_ef": None,
        "sigma_ry": None, "min_freq_cm1": None, "table": [],
        "wall_s": {k: r.get("wall_s") for k, r in recs.items() if r.get("wall_s") is not None},
    }
    out["wall_s_total"] = sum(out["wall_s"].values())
    if "symmetry_input" in st:
        out["spacegroup_input"] = st["symmetry_input"]
    if "symmetry_relaxed" in recs["relax"]:
        out["spacegroup"] = recs["relax"]["symmetry_relaxed"]
    for key in ("gap_eV", "n_crossing_bands", "fermi_energy_eV"):
        if key in recs["scf_fit"]:
            out[key] = recs["scf_fit"][key]
    if st["status"] == OK:
        out.update(protocol=st["protocol"]["name"], grids=st["grids"], cutoffs=st["cutoffs"], pseudos=st["pseudos"])
    n_irr_q = recs["ph"].get("n_irr_q") or recs.get("ph_init", {}).get("n_irr_q")
    if n_irr_q:
        out["n_irr_q"] = n_irr_q
        out["ph_jobs"] = recs["ph"].get("n_jobs")
    if status == OK and not recs["matdyn"]["dynamically_stable"]:
        out["status"] = status = "dynamically_unstable"
    if recs["matdyn"]["status"] == OK and recs["lambda"]["status"] == OK:
        proto = st["protocol"]
        mustar = float(proto["mustar"] if mustar_override is None else mustar_override)
        md = tc_table(recs["matdyn"]["lambda_table"], mustar)
        lx = tc_table(recs["lambda"]["lambda_table"], mustar)
        out["table"] = [{"sigma_ry": a["sigma_ry"],
                         "matdyn": {k: a[k] for k in ("lambda", "omega_log_K", "n_ef", "tc_K")},
                         "lambda_x": {k: b[k] for k in ("lambda", "omega_log_K", "n_ef", "tc_K", "tc_K_lambda_x")}}
                        for a, b in zip(md, lx)]
        src = proto["tc_source"]
        rows = md if src == "matdyn" else lx
        i, converged = choose_broadening([r["lambda"] for r in rows], float(proto["lambda_conv_tol"]))
        out.update({"lambda": rows[i]["lambda"], "omega_log_K": rows[i]["omega_log_K"], "tc_K": rows[i]["tc_K"],
                    "n_ef": rows[i]["n_ef"], "sigma_ry": rows[i]["sigma_ry"], "broadening_index": i,
                    "broadening_converged": converged, "tc_source": src, "mustar": mustar,
                    "selection_rule": f"first broadening whose lambda differs from the next by <= "
                                      f"{proto['lambda_conv_tol']} (relative); else the last",
                    "min_freq_cm1": recs["matdyn"]["min_freq_cm1"]})
    atomic_write_json(out_json, out)
    return out


def finish_candidate(cid: str, cand_dir, tc_json, meta_json, cfg: Mapping[str, Any], seed: int | None = None,
                     inputs=()) -> dict:
    """Write ``tc.json`` and ``metadata.json``; then, if ``dft.cleanup`` asks for it, remove the
    ph.x work directories (wavefunction copies and restart data), never before tc.json."""
    from tcflow.provenance import run_metadata

    d = Path(cand_dir)
    tc = step_tc(cid, d, tc_json)
    qe = next((r.get("qe_version") for r in (read_json(p) for p in sorted(d.glob("*/*.json")))
               if isinstance(r, dict) and r.get("qe_version")), None)
    settings = {k: cfg[k] for k in ("protocol", "overrides", "pseudo_map") if k in cfg}
    atomic_write_json(meta_json, run_metadata("dft", settings, seed, [p for p in inputs if Path(p).exists()],
                                              candidate=cid, quantum_espresso=qe, status=tc["status"]))
    if cfg.get("cleanup"):
        for work in [*sorted((d / "ph_q").glob("*.work")), d / "ph.work"]:
            shutil.rmtree(work, ignore_errors=True)
    return tc
