"""ph.x's work directory: which q-points are finished, what a killed run left, where to resume.

A ph job (all q-points, or one block of them) works in ``<step>.work``, which is not a Snakemake
output and so survives a killed or failed job. Each start of the job is a run directory
``run<k>`` with its own copy of the scf outdir; inside it ph.x is started once per irreducible
q-point (``start_q = last_q = iq``), so what ph.x computes for a q-point never depends on which
q-points the same process computed before it. A rerun keeps every q-point some run finished
(:func:`q_point_complete`) and starts a new run directory at the first unfinished one: it never
continues in a killed run's outdir, whose files a kill may have cut mid-write.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tcflow.dft import inputs as qi
from tcflow.dft import outputs as qo

PHSAVE = f"{qi.OUTDIR}/_ph0/{qi.PREFIX}.phsave"


def products(work: Path, iq: int) -> list[Path]:
    """The files ph.x leaves for irreducible q-point ``iq``: ``dyn<iq>`` and its el-ph files."""
    return [work / f"{qi.FILDYN}{iq}", *sorted((work / qi.ELPH_DIR).glob(f"*.{iq}"))]


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
    a2f = [p for p in (work / qi.ELPH_DIR).glob(f"a2Fq2r.*.{iq}") if p.stat().st_size > 0]
    dyn_text = dyn.read_text(errors="replace").rstrip()
    return (len(lines) >= 2 + n_sigma * (2 + n_modes) and len(a2f) == n_sigma
            and len(qo.dyn_frequencies_cm1(dyn)) == n_modes and dyn_text.endswith("*" * 20))


def discard_partial_q(work: Path, iq: int) -> None:
    """Remove what an interrupted ph.x left of q-point ``iq``: its dyn and el-ph files, its
    partial-representation records in phsave and its k+q bands directory."""
    for f in [work / f"{qi.FILDYN}{iq}", *(work / qi.ELPH_DIR).glob(f"*.{iq}"),
              *(work / PHSAVE).glob(f"dynmat.{iq}.*.xml"), *(work / PHSAVE).glob(f"elph.{iq}.*.xml")]:
        f.unlink(missing_ok=True)
    (work / PHSAVE / "status_run.xml").unlink(missing_ok=True)
    shutil.rmtree(work / qi.OUTDIR / "_ph0" / f"{qi.PREFIX}.q_{iq}", ignore_errors=True)


def segments(work: Path) -> list[Path]:
    """The run directories made in ``work`` so far (``run1``, ``run2``, ...: one per start)."""
    runs = [d for d in work.glob("run*") if d.is_dir() and d.name[3:].isdigit()]
    return sorted(runs, key=lambda d: int(d.name[3:]))


def q_source(work: Path, iq: int, n_sigma: int) -> Path | None:
    """The latest run directory in which q-point ``iq`` is complete, or None."""
    return next((seg for seg in reversed(segments(work)) if q_point_complete(seg, iq, n_sigma)), None)


def dyn0(work: Path) -> Path | None:
    """The q-point list (``dyn0``) some run in ``work`` wrote, if any."""
    return next((seg / f"{qi.FILDYN}0" for seg in segments(work) if (seg / f"{qi.FILDYN}0").is_file()), None)


def resume_point(work: Path, first: int, last: int | None, n_sigma: int) -> tuple[list[int], int, int | None]:
    """(q-points finished in the runs under ``work``, counted from ``first`` without a gap; the
    q-point to start at; the last q-point, or None while no run has listed the q-points yet)."""
    d0 = dyn0(work)
    end = last if last is not None else (qo.parse_dyn0(d0)["n_irr_q"] if d0 else None)
    kept: list[int] = []
    if end is not None:
        for iq in range(first, end + 1):
            if q_source(work, iq, n_sigma) is None:
                break
            kept.append(iq)
    return kept, first + len(kept), end


def dvscf_files(run: Path, iq: int) -> list[Path]:
    """The self-consistent potential changes ph.x saved for irreducible q-point ``iq`` in run
    directory ``run`` (``fildvscf``; with PAW also ``..._paw``): in ``_ph0`` for q-point 1 (Γ),
    in ``_ph0/<prefix>.q_<iq>`` for the others."""
    ph0 = run / qi.OUTDIR / "_ph0"
    where = ph0 if iq == 1 else ph0 / f"{qi.PREFIX}.q_{iq}"
    return sorted(where.glob(f"{qi.PREFIX}.{qi.FILDVSCF}*"))


def copy_products(work: Path, out: Path, iqs, n_sigma: int, dvscf: bool = False) -> tuple[list[int], list[list[float]]]:
    """``dyn<iq>`` and el-ph files of q-points ``iqs`` (each from the run that finished it), and
    the last run's phsave, ``work`` -> ``out``; with ``dvscf`` also each q-point's saved potential
    change, under ``out/dvscf`` with its path in the outdir (what a ph.x ``trans = .false.`` run
    reads); returns each q-point's star size and frequencies (cm^-1)."""
    from tcflow.dft.stage import copy_files, copy_tree

    (out / qi.ELPH_DIR).mkdir(exist_ok=True)
    stars, freqs = [], []
    for iq in iqs:
        src = q_source(work, iq, n_sigma)
        if src is None:
            raise RuntimeError(f"{work}: ph.x reported success but q-point {iq} is incomplete")
        copy_files(products(src, iq), out, root=src)
        if dvscf:
            files = dvscf_files(src, iq)
            if not files:
                raise RuntimeError(f"{src}: ph.x finished q-point {iq} but left no {qi.FILDVSCF} file")
            copy_files(files, out / "dvscf", root=src / qi.OUTDIR)
        dyn = out / f"{qi.FILDYN}{iq}"
        stars.append(qo.dyn_star_size(dyn))
        freqs.append(qo.dyn_frequencies_cm1(dyn))
    last_run = segments(work)[-1]
    if (last_run / PHSAVE).is_dir():
        copy_tree(last_run / PHSAVE, out / "phsave")
    return stars, freqs
