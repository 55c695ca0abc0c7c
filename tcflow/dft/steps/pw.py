"""The pw.x steps: vc-relax, the la2F scf on the dense k-grid (the metallicity gate) and the
coarse scf ph.x starts from.

pw.x runs in the step's work directory ``<step>.work``. When it stops at ``max_seconds`` (the
rule's walltime budget), the job fails and leaves a marker with the stopped output; the next
attempt (whose runtime grows with ``attempt``) continues a vc-relax from the last geometry pw.x
reached, in a fresh run (an scf starts over). pw.x's own ``restart_mode = 'restart'`` is not used:
measured with QE 6.7 on fcc Al, a restarted vc-relax reached the uninterrupted enthalpy but then
stalled in its final scf until ``max_seconds`` (600 s; tests/dft/fixtures/pw_walltime). A
finished run's files move into the step's output.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from tcflow.dft import inputs as qi
from tcflow.dft import outputs as qo
from tcflow.dft.cell import Cell
from tcflow.dft.handlers import pw_handlers, pw_settings
from tcflow.dft.runner import RunResult, run_with_retries
from tcflow.dft.stage import OK, StepContext, check_resumable, copy_tree, failed, free_gb
from tcflow.dft.steps.structure import save_structure
from tcflow.dft.symmetry import standardise
from tcflow.io import atomic_write_json, read_json

log = logging.getLogger(__name__)
#: left in the work directory when pw.x stopped at max_seconds: the next attempt restarts
WALLTIME_MARKER = "walltime_stop.json"


class QEOutputError(RuntimeError):
    """QE reported success but its files are empty or unreadable (typically a full disk)."""


def check_save_dir(outdir: Path) -> None:
    """Refuse a pw.x run whose ``<prefix>.save`` has an empty file or an unreadable XML."""
    import xml.etree.ElementTree as ET

    save = outdir / f"{qi.PREFIX}.save"
    empty = sorted(str(p.relative_to(outdir)) for p in save.rglob("*") if p.is_file() and p.stat().st_size == 0)
    bad_xml = None
    try:
        ET.parse(save / "data-file-schema.xml")
    except (ET.ParseError, OSError) as exc:
        bad_xml = str(exc)
    if empty or bad_xml:
        what = f"empty files {', '.join(empty)}" if empty else f"unreadable data-file-schema.xml ({bad_xml})"
        raise QEOutputError(f"{save}: pw.x printed JOB DONE but left {what} (disk full? "
                            f"{free_gb(save):.2f} GiB free); the run is not accepted")


def last_geometry(output: Path, cell: Cell) -> Cell:
    """The last complete geometry of a (stopped) relax / vc-relax output, or ``cell`` (its
    input) when it has none."""
    try:
        last = qo.relax_geometry(output.read_text(errors="replace"), cell)
    except (OSError, ValueError) as exc:  # an output cut inside a card: start from the input again
        log.warning("%s: no geometry read (%s); starting from the input cell", output, exc)
        return cell
    return cell if last is None else last


def final_geometry(res: RunResult, start: Cell) -> Cell:
    """The geometry a finished relax / vc-relax ended on (:func:`outputs.relax_geometry`)."""
    final = qo.relax_geometry(res.output.read_text(errors="replace"), start)
    if final is None:
        raise QEOutputError(f"{res.output}: pw.x printed JOB DONE but no completed scf")
    return final


def run_pw(ctx: StepContext, calculation: str, kgrid, cell: Cell, la2f: bool = False,
           outdir_from: Path | None = None) -> RunResult:
    """pw.x in a fresh ``ctx.work`` (seeded with a copy of ``outdir_from`` when given; a vc-relax
    stopped at max_seconds before continues from its last geometry); on success its files are
    moved into ``ctx.out``."""
    work, name, st, proto = ctx.work, ctx.step.name, ctx.st, ctx.proto
    marker = work / WALLTIME_MARKER
    if marker.is_file():  # the previous attempt stopped at max_seconds: keep its outputs
        stops = read_json(marker)["stops"]
        stopped = work / f"{name}.out"
        if stopped.is_file():
            os.replace(stopped, work / f"{name}.walltime{stops}.out")
            if calculation == "vc-relax":
                cell = last_geometry(work / f"{name}.walltime{stops}.out", cell)
        log.info("pw.x %s: continuing after %d stop(s) at max_seconds", name, stops)
    keep = {WALLTIME_MARKER} | {p.name for p in work.glob(f"{name}.walltime*.out")} if marker.is_file() else set()
    work.mkdir(parents=True, exist_ok=True)
    for entry in work.iterdir():  # a fresh run: only the walltime record survives
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if outdir_from is not None:
        copy_tree(outdir_from, work / qi.OUTDIR)

    def make(settings: dict) -> str:
        extra = {"diagonalization": settings["diagonalization"]} if "diagonalization" in settings else None
        ions = {"trust_radius_ini": settings["trust_radius_ini"]} if "trust_radius_ini" in settings else None
        p = dict(proto, mixing_beta=settings["mixing_beta"], electron_maxstep=settings["electron_maxstep"])
        geometry = cell
        if settings.get("from_last_geometry"):  # a failed BFGS: its last geometry, a fresh history
            failed_runs = sorted(work.glob(f"{name}.attempt*.out"), key=lambda f: int(f.stem.rsplit("attempt", 1)[1]))
            geometry = last_geometry(failed_runs[-1], cell) if failed_runs else cell
        return qi.pw_input(geometry, calculation=calculation, proto=p, cutoffs=st["cutoffs"], kgrid=kgrid,
                           pseudo_dir=st["pseudo_dir"], pseudos=st["pseudos"], la2f=la2f,
                           max_seconds=ctx.max_seconds, extra_electrons=extra, extra_ions=ions,
                           masses=st.get("masses_amu"))

    res = run_with_retries("pw.x", make, work, name, ctx.pooled(cell, kgrid), pw_settings(proto), pw_handlers(proto),
                           int(proto["scf_retries"]))
    if res.code == "walltime":
        stops = read_json(marker)["stops"] + 1 if marker.is_file() else 1
        atomic_write_json(marker, {"stops": stops, "reason": res.reason})
    check_resumable(res, f"pw.x {calculation} ({name})")
    if res.ok and (work / qi.OUTDIR).is_dir():
        check_save_dir(work / qi.OUTDIR)
    marker.unlink(missing_ok=True)
    for entry in work.iterdir():
        os.replace(entry, ctx.out / entry.name)
    work.rmdir()
    res.output = ctx.out / res.output.name
    return res


def pw_record(res: RunResult, **extra: Any) -> dict:
    """A finished pw.x run's record: wall time, attempts, walltime restarts and :func:`parse_pw`."""
    walltime_stops = sorted(res.output.parent.glob(f"{res.output.stem}.walltime*.out"))
    return {"wall_s": res.wall_s, "attempts": res.attempts, "walltime_restarts": len(walltime_stops),
            **qo.parse_pw(res.output.read_text()), **extra}


def relax(ctx: StepContext) -> dict:
    """vc-relax (or none, per protocol), then re-standardise the relaxed cell."""
    sd, out, st, proto = ctx.dir("structure"), ctx.out, ctx.st, ctx.proto
    if not proto["relax"]:  # the standardised input cell, as it is (no second standardisation needed)
        for suffix in (".json", ".cif"):
            shutil.copy2(sd / f"standard{suffix}", out / f"relaxed{suffix}")
        return {"relaxed": False, "status": OK, "symmetry_relaxed": st["symmetry_input"],
                "volume_A3": Cell.read(out / "relaxed.json").volume}
    res = run_pw(ctx, "vc-relax", st["grids"]["k_relax"], Cell.read(sd / "standard.json"))
    rec = pw_record(res, relaxed=True)
    if not res.ok:
        return {**rec, "status": failed(res, "vc-relax")}
    final = final_geometry(res, Cell.read(sd / "standard.json"))
    sym = standardise(final.to_structure(), proto["symprec_A"], proto["angle_tolerance_deg"])
    save_structure(sym.structure, out / "relaxed.json")
    return {**rec, "status": OK, "symmetry_relaxed": sym.record(), "volume_A3": sym.structure.volume}


def scf_fit(ctx: StepContext) -> dict:
    """scf with ``la2F`` on the dense k-grid; the metallicity gate (an insulator stops here)."""
    st = ctx.st
    res = run_pw(ctx, "scf", st["grids"]["k_dense"], Cell.read(ctx.dir("relax") / "relaxed.json"), la2f=True)
    rec = pw_record(res, kgrid=st["grids"]["k_dense"])
    if not res.ok:
        return {**rec, "status": failed(res, "scf_fit")}
    gap = qo.band_gap_from_xml(ctx.out / qi.OUTDIR / f"{qi.PREFIX}.xml")
    threshold = float(ctx.proto["metal_gap_eV"])
    return {**rec, **gap, "status": "insulator" if gap["gap_eV"] > threshold else OK,
            "metal_gap_eV_threshold": threshold}


def scf(ctx: StepContext) -> dict:
    """The scf ph.x starts from: the coarse k-grid run in a copy of the la2F outdir (keeps
    ``<prefix>.a2Fsave``), or the la2F run itself when the protocol has one scf only."""
    st, fit_out = ctx.st, ctx.dir("scf_fit") / qi.OUTDIR
    if st["grids"]["k_scf"] == st["grids"]["k_dense"]:
        copy_tree(fit_out, ctx.out / qi.OUTDIR)
        return {"status": OK, "separate_scf": False, "wall_s": 0.0, "kgrid": st["grids"]["k_scf"]}
    res = run_pw(ctx, "scf", st["grids"]["k_scf"], Cell.read(ctx.dir("relax") / "relaxed.json"),
                 outdir_from=fit_out)
    rec = pw_record(res, separate_scf=True, kgrid=st["grids"]["k_scf"])
    return {**rec, "status": OK if res.ok else failed(res, "scf")}


def scf_fit2(ctx: StepContext) -> dict:
    """scf with ``la2F`` on the second dense k-grid (``k_dense2``): the eigenvalues
    (``<prefix>.a2Fsave``) ph.x's el-ph interpolation reads in ``elph2``. Only the a2Fsave is kept."""
    grid = ctx.st["grids"]["k_dense2"]
    res = run_pw(ctx, "scf", grid, Cell.read(ctx.dir("relax") / "relaxed.json"), la2f=True)
    rec = pw_record(res, kgrid=grid)
    if not res.ok:
        return {**rec, "status": failed(res, "scf_fit2")}
    a2f = ctx.out / qi.OUTDIR / f"{qi.PREFIX}.a2Fsave"
    if not a2f.is_file() or a2f.stat().st_size == 0:
        raise QEOutputError(f"{a2f}: pw.x with la2F printed JOB DONE but left no a2Fsave")
    os.replace(a2f, ctx.out / a2f.name)
    shutil.rmtree(ctx.out / qi.OUTDIR)  # the wavefunctions of the dense grid are not needed
    return {**rec, "status": OK, "a2fsave": a2f.name}
