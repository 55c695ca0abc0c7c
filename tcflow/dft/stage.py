"""The contract every DFT step follows, owned here once.

:func:`run_step` gives a step function a :class:`StepContext` whose ``out`` is a fresh staging
directory ``.<name>.partial`` next to the final one, checks free disk space, applies the gate
(an upstream status that is not ``ok`` is recorded and nothing runs: an insulator or a missing
pseudopotential stops one candidate without failing the workflow), writes the step's record
last and renames the staging directory onto the output only when all of that succeeded. A job
that is killed, or fails, leaves no output directory: Snakemake sees it missing and reruns it.

Work that must survive an interrupted job (ph.x's finished q-points, pw.x restart files after a
walltime stop) lives in ``<name>.work`` next to the output, which is not a Snakemake output.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from tcflow.dft.chain import Step
from tcflow.dft.runner import Launch
from tcflow.io import atomic_write_json, read_json

log = logging.getLogger(__name__)
OK = "ok"
BYTES_PER_GB = 1024 ** 3


class ResumableInterruption(RuntimeError):
    """A QE run stopped by walltime or a kill: the job fails and its next attempt resumes it."""


class DiskSpaceError(RuntimeError):
    """Too little free disk space to run or stage a step (one line naming the path)."""


@dataclass
class StepContext:
    """What a step function gets: where its inputs and its (staging) output are, how to run QE.

    ``cand``: the candidate directory ``results/dft/<cid>``; ``out``: the staging directory the
    step writes into; ``final``: the output directory it becomes; ``work``: the persistent work
    directory ``<final>.work``; ``max_seconds``: when pw.x/ph.x must stop cleanly (s, or None);
    ``cfg``: the ``dft`` config section; ``chunk``/``ph_jobs``: the split ph.x job's share of the q-points.
    """

    step: Step
    cid: str
    cand: Path
    final: Path
    launch: Launch = field(default_factory=Launch)
    max_seconds: float | None = None
    cfg: Mapping[str, Any] = field(default_factory=dict)
    chunk: int | None = None
    ph_jobs: int = 1
    pseudo_dir: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    out: Path = field(init=False)
    _records: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.final = Path(self.final)
        self.cand = Path(self.cand)
        self.out = self.final.parent / f".{self.final.name}.partial"

    @property
    def work(self) -> Path:
        return self.final.parent / f"{self.final.name}.work"

    def dir(self, name: str) -> Path:
        """Output directory of the upstream step ``name``."""
        return self.cand / name

    def up(self, name: str) -> dict:
        """The record of upstream step ``name`` (read once)."""
        if name not in self._records:
            from tcflow.dft.chain import BY_NAME_RECORD

            self._records[name] = read_json(self.cand / name / BY_NAME_RECORD[name])
        return self._records[name]

    @property
    def st(self) -> dict:
        """The structure step's record (protocol, grids, cutoffs, pseudos, masses)."""
        return self.up("structure")

    @property
    def proto(self) -> dict:
        return self.st["protocol"]

    def pooled(self, cell, kgrid) -> Launch:
        """``launch`` with the k-point pools (``-nk``) for a pw.x / ph.x run of ``cell`` (a
        :class:`tcflow.dft.cell.Cell`) on ``kgrid``, within ``dft.pools`` (:mod:`tcflow.dft.pools`)."""
        from dataclasses import replace

        from tcflow.dft.pools import irreducible_kpoints, pool_count

        if self.launch.tasks <= 1:
            return self.launch
        n_k = irreducible_kpoints(cell, kgrid)
        return replace(self.launch, pools=pool_count(self.launch.tasks, n_k, self.cfg.get("pools", "auto")))


def free_gb(path: Path) -> float:
    """Free space (GiB) of the file system holding ``path`` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free / BYTES_PER_GB


def check_free_space(path: Path, floor_gb: float) -> None:
    """Refuse to start a step when less than ``floor_gb`` GiB are free where it writes."""
    if floor_gb and (free := free_gb(path)) < floor_gb:
        raise DiskSpaceError(f"{path}: only {free:.2f} GiB free, below dft.min_free_disk_gb = "
                             f"{floor_gb:g} GiB; free some space and rerun")


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a directory (replacing ``dst``); a failed copy (disk full) removes what it wrote and
    raises one line naming both paths."""
    if dst.exists():
        shutil.rmtree(dst)
    try:
        shutil.copytree(src, dst, symlinks=True)
    except (OSError, shutil.Error) as exc:
        shutil.rmtree(dst, ignore_errors=True)
        reason = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args and exc.args[0] else str(exc)
        raise DiskSpaceError(f"copying {src} to {dst} failed ({reason}); "
                             f"{free_gb(dst.parent):.2f} GiB free") from None


def copy_files(files, dst_dir: Path, root: Path | None = None) -> None:
    """Copy files into ``dst_dir`` (keeping their path relative to ``root`` when given)."""
    for f in files:
        target = dst_dir / (f.relative_to(root) if root else f.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def merge_tree(src: Path, dst: Path) -> None:
    """Copy every file under ``src`` to the same relative path under ``dst``, keeping what
    ``dst`` already holds (:func:`copy_tree` replaces it)."""
    copy_files([f for f in src.rglob("*") if f.is_file()], dst, root=src)


def publish(stage: Path, final: Path) -> None:
    """Rename the finished staging directory onto ``final``."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(stage, final)


def skip_record(step: Step, upstream: Mapping[str, Any], name: str | None = None) -> dict:
    """What a step records when its gate (upstream ``name``) is closed (nothing run)."""
    log.info("upstream %s status %r: skipping", name or step.gate, upstream["status"])
    rec = {"status": upstream["status"], "skipped": True}
    if step.name == "ph_init":
        rec["n_irr_q"] = 0
    return rec


def failed(res, what: str) -> str:
    """The status of a step whose QE run failed for good."""
    return f"failed: {what}: {res.code}: {res.reason}"


def check_resumable(res, what: str) -> None:
    """Raise :class:`ResumableInterruption` for a walltime stop or a killed run."""
    if res.code in ("walltime", "interrupted"):
        raise ResumableInterruption(f"{what}: {res.code} ({res.reason}); the next attempt resumes it")


@contextmanager
def step_lock(final: Path):
    """Hold ``.<step>.lock`` next to the step's directory while the step runs.

    Two jobs of one step at once happen when the Snakemake process dies but its cluster jobs run
    on (a lost login node, a SIGKILL) and a rerun submits the step again: the second job waits
    here for the first to end, then resumes from what it left (its work directory), instead of
    running a second QE in the same files. ``flock`` is per open file: on NFS it needs locking
    enabled on the mount (the default of NFSv4); Lustre needs ``flock`` in its mount options.
    """
    path = final.parent / f".{final.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another job of this step is running; waiting for it to end", final)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_step(ctx: StepContext, func: Callable[[StepContext], dict]) -> dict:
    """Run one step under the contract above (one job at a time per step: :func:`step_lock`);
    returns its record."""
    with step_lock(ctx.final):
        return _run_step(ctx, func)


def _run_step(ctx: StepContext, func: Callable[[StepContext], dict]) -> dict:
    step, stage = ctx.step, ctx.out
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        check_free_space(stage, float(ctx.cfg.get("min_free_disk_gb") or 0))
        closed = next((g for g in step.gates if ctx.up(g)["status"] != OK), None)
        rec = skip_record(step, ctx.up(closed), closed) if closed else func(ctx)
        atomic_write_json(stage / step.record, rec)
        publish(stage, ctx.final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # never leave a partial copy (it may fill the disk)
        raise
    return rec
