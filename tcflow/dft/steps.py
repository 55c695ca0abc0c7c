"""One function per step of the per-candidate el-ph chain; the Snakemake rules call them.

Layout under ``results/dft/<cid>/`` (one directory per step, each with its QE inputs, outputs and a
parsed ``<step>.json`` carrying ``status``)::

    structure/  relax/  scf_fit/  scf/  ph_init/  ph_q/<iq>/  ph/  q2r/  matdyn/  lambda/  tc.json

A step whose upstream status is not ``ok`` writes its record with that status and runs nothing,
so an insulator or a missing pseudopotential stops one candidate without failing the workflow.
QE failures that retries cannot fix become ``failed: <code>: <reason>``. Interrupted runs
(walltime, kill) raise, so Snakemake reruns the job; ph.x then resumes with ``recover``.
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
from tcflow.dft import outputs as qo
from tcflow.dft.eliashberg import choose_broadening, tc_table
from tcflow.dft.protocol import derive_cutoffs, derive_grids, get_protocol
from tcflow.dft.pseudos import MissingPseudopotential, load_family, resolve_pseudos
from tcflow.dft.runner import Launch, ph_handler, pw_handler, run_qe, run_with_retries
from tcflow.dft.symmetry import standardise
from tcflow.io import atomic_write_json, atomic_write_text, read_json

log = logging.getLogger(__name__)
OK = "ok"
RESUMABLE = ("walltime", "interrupted")
STEP_ORDER = ("structure", "relax", "scf_fit", "scf", "ph_init", "ph", "q2r", "matdyn", "lambda")
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
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
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
        "cutoffs": cutoffs, "grids": grids, "elements": elements,
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
                           max_seconds=max_seconds, extra_electrons=extra)

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
    s = _structure(sd / "standard.json")
    rec: dict[str, Any] = {"relaxed": bool(proto["relax"])}
    if proto["relax"]:
        res = _run_pw(s, st, out, "relax", "vc-relax", st["grids"]["k_relax"], launch, False, max_seconds)
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
    s = _structure(rd / "relaxed.json")
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
    s = _structure(rd / "relaxed.json")
    res = _run_pw(s, st, out, "scf", "scf", st["grids"]["k_scf"], launch, False, max_seconds)
    rec = {"separate_scf": True, "wall_s": res.wall_s, "attempts": res.attempts, "kgrid": st["grids"]["k_scf"],
           **qo.parse_pw(res.output.read_text())}
    _check_resumable(res, "pw.x scf")
    if not res.ok:
        return _record(rec_path, {**rec, "status": _failed(res, "scf")})
    return _record(rec_path, {**rec, "status": OK})


# ----------------------------------------------------------------------------- ph.x
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
    s = _structure(rd / "relaxed.json")
    _copy_outdir(scd / qi.OUTDIR, out / qi.OUTDIR)
    text = qi.ph_input(s, proto=st["protocol"], qgrid=st["grids"]["q"], start_q=1, last_q=1, patterns_only=True)
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


def repair_elph_recover_files(phsave: Path) -> int:
    """QE 6.7's ph.x writes ``elph.<iq>.<irr>.xml`` without the ``<PARTIAL_EL_PHON>`` element that its
    own ``recover`` reader looks for, so a resumed el-ph run dies reading them ("tag PARTIAL_EL_PHON
    not found") and overwrites its recover state. Wrap the data in that element before resuming;
    returns the number of files repaired."""
    fixed = 0
    for path in sorted(phsave.glob("elph.*.xml")):
        text = path.read_text()
        if "<PARTIAL_EL_PHON>" in text or "<NUMBER_OF_K>" not in text or "</Root>" not in text:
            continue
        i, j = text.index("<NUMBER_OF_K>"), text.rindex("</Root>")
        atomic_write_text(path, text[:i] + "<PARTIAL_EL_PHON>\n" + text[i:j] + "</PARTIAL_EL_PHON>\n" + text[j:])
        fixed += 1
    return fixed


def step_ph_q(structure_dir, relax_dir, scf_dir, iq: int, outdir, launch: Launch, max_seconds=None) -> dict:
    """ph.x for irreducible q-point ``iq`` alone, in its own work directory ``<outdir>.work``
    (not a Snakemake output, so it survives an interrupted job); resumes with ``recover``."""
    sd, rd, scd, out = Path(structure_dir), Path(relax_dir), Path(scf_dir), Path(outdir)
    work = out.parent / f"{out.name}.work"
    final, out = out, out.parent / f".{out.name}.partial"  # renamed onto `final` when done
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rec_path = out / "ph.json"
    st = _upstream(sd / "structure.json")
    proto = st["protocol"]
    s = _structure(rd / "relaxed.json")
    recover = (work / PHSAVE / "status_run.xml").is_file()
    if not recover:
        work.mkdir(parents=True, exist_ok=True)
        _copy_outdir(scd / qi.OUTDIR, work / qi.OUTDIR)
    log.info("q-point %d: %s", iq, "resuming from recover data" if recover else "fresh start")
    repaired = repair_elph_recover_files(work / PHSAVE) if recover else 0

    def make(settings: dict) -> str:
        extra = {k: v for k, v in settings.items() if k in ("search_sym",)}
        p = dict(proto, alpha_mix_ph=settings.get("alpha_mix", proto["alpha_mix_ph"]))
        return qi.ph_input(s, proto=p, qgrid=st["grids"]["q"], start_q=iq, last_q=iq,
                           recover=settings.get("recover", False), max_seconds=max_seconds, extra=extra)

    res = run_with_retries("ph.x", make, work, "ph", launch, {"recover": recover}, ph_handler,
                           int(proto["ph_retries"]))
    rec = {"iq": iq, "recovered": recover, "repaired_elph_xml": repaired, "wall_s": res.wall_s,
           "attempts": res.attempts,
           "qe_version": qo.qe_version(res.output.read_text())}
    _check_resumable(res, f"ph.x q-point {iq}")
    if not res.ok:
        rec = _record(rec_path, {**rec, "status": _failed(res, f"ph.x q-point {iq}")})
        _publish(out, final)
        return rec
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    for f in _ph_products(work, iq):
        dest = out / f.relative_to(work)
        shutil.copy2(f, dest)
    _copy_outdir(work / PHSAVE, out / "phsave")
    dyn = out / f"{qi.FILDYN}{iq}"
    rec = _record(rec_path, {**rec, "status": OK, "star_size": qo.dyn_star_size(dyn),
                             "freqs_cm1": qo.dyn_frequencies_cm1(dyn)})
    _publish(out, final)
    return rec


def _publish(stage: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(stage, final)


@_staged
def step_ph_collect(ph_init_dir, ph_q_dirs, outdir) -> dict:
    """Gather dyn files, elph_dir and phsave of every q-point into one directory."""
    pi, out = Path(ph_init_dir), Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / "ph.json"
    init = _upstream(pi / "qpoints.json")
    if init["status"] != OK:
        return _skip(rec_path, init)
    per_q = [read_json(Path(d) / "ph.json") for d in ph_q_dirs]
    bad = [r for r in per_q if r["status"] != OK]
    wall = sum(r["wall_s"] for r in per_q)
    if bad:
        return _record(rec_path, {"status": bad[0]["status"], "wall_s": wall})
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
    all_freqs = [f for r in per_q for f in r["freqs_cm1"]]
    return _record(rec_path, {
        "status": OK, "n_irr_q": init["n_irr_q"], "qgrid": init["qgrid"], "qpoints": init["qpoints"],
        "star_sizes": [r["star_size"] for r in per_q], "freqs_cm1": [r["freqs_cm1"] for r in per_q],
        "max_freq_cm1": max(all_freqs), "wall_s": wall, "wall_s_per_q": [r["wall_s"] for r in per_q],
        "recovered_q": [r["iq"] for r in per_q if r["recovered"]],
    })


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


def _min_freq_outside_gamma(structure, qpts, freqs, frac: float) -> float:
    """Lowest frequency (cm^-1) over q-points farther than ``frac`` x the shortest reciprocal
    vector from Γ (q in 2π/alat Cartesian, alat = |a_1| for CELL_PARAMETERS angstrom)."""
    import numpy as np

    alat = structure.lattice.abc[0]
    lat = structure.lattice.matrix / alat               # direct vectors in alat units
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
    s = _structure(rd / "relaxed.json")
    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    shutil.copy2(qd / qi.FLFRC, out / qi.FLFRC)
    for f in (qd / qi.ELPH_DIR).glob("a2Fmatdyn.*"):
        shutil.copy2(f, out / qi.ELPH_DIR / f.name)
    res = run_qe("matdyn.x", qi.matdyn_input(s, proto), out, "matdyn", launch)
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
    names = {"structure": "structure/structure.json", "relax": "relax/relax.json",
             "scf_fit": "scf_fit/scf_fit.json", "scf": "scf/scf.json", "ph_init": "ph_init/qpoints.json",
             "ph": "ph/ph.json", "q2r": "q2r/q2r.json", "matdyn": "matdyn/matdyn.json",
             "lambda": "lambda/lambda.json"}
    recs = {k: read_json(d / v) for k, v in names.items()}
    status = next((r["status"] for k in STEP_ORDER if (r := recs[k])["status"] != OK), OK)
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
    if recs["ph_init"].get("n_irr_q"):
        out["n_irr_q"] = recs["ph_init"]["n_irr_q"]
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
    per-q ph.x work directories (wavefunction copies and recover data), never before tc.json."""
    from tcflow.provenance import run_metadata

    d = Path(cand_dir)
    tc = step_tc(cid, d, tc_json)
    qe = next((r.get("qe_version") for r in (read_json(p) for p in sorted(d.glob("*/*.json")))
               if isinstance(r, dict) and r.get("qe_version")), None)
    settings = {k: cfg[k] for k in ("protocol", "overrides", "pseudo_map") if k in cfg}
    atomic_write_json(meta_json, run_metadata("dft", settings, seed, [p for p in inputs if Path(p).exists()],
                                              candidate=cid, quantum_espresso=qe, status=tc["status"]))
    if cfg.get("cleanup"):
        for work in sorted((d / "ph_q").glob("*.work")):
            shutil.rmtree(work, ignore_errors=True)
    return tc
