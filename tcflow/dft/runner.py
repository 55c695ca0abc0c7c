"""Run one Quantum ESPRESSO executable in a directory and classify the result from its output.

How QE is launched comes from the rule's resources, in one place (:class:`Launch`): ``mpi`` (the
MPI launcher program: ``mpirun`` by default, ``srun`` in the SLURM profile) and ``tasks``
(``<mpi> -n <tasks> pw.x [-nk <pools>] -in <input>``, pools from :mod:`tcflow.dft.pools`); OpenMP
threads from ``cpus_per_task``, always set explicitly. Serial post-processing codes (q2r.x, matdyn.x, lambda.x) run without the launcher,
reading stdin.

Every QE launch dies with its job: the launcher is asked to receive SIGTERM when the job process
dies (Linux ``PR_SET_PDEATHSIG``), and :func:`stop_running` (called by the job on SIGINT/SIGTERM,
or when its Snakemake is gone; see :mod:`tcflow.dft.job`) ends the launcher and every process
under it (the MPI ranks), with SIGTERM and then SIGKILL. QE stays in the job's process group, so a
terminal's Ctrl-C, or a SIGKILL to the whole group, reaches the ranks directly.
"""

from __future__ import annotations

import ctypes
from contextlib import suppress as _suppress
import logging
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tcflow.dft.outputs import classify
from tcflow.dft.pools import POOL_CODES

log = logging.getLogger(__name__)
#: codes whose input is read from stdin and that are run serially
SERIAL_CODES = ("q2r.x", "matdyn.x", "lambda.x")
#: Open MPI refuses to run as root unless both are set (containers, CI, single-user VMs)
OMPI_ROOT_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
#: every QE executable prints "Program <NAME> v.<version>" when it starts
QE_BANNER = "Program "
#: seconds a QE process group gets between SIGTERM and SIGKILL
TERMINATE_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36



class LaunchError(RuntimeError):
    """The executable never started (launcher or binary missing, MPI refused): not a QE failure."""


def qe_environment(launch: "Launch") -> dict[str, str]:
    """The child's environment: OMP_NUM_THREADS explicit; ``launch.path_prefix`` leading PATH;
    Open MPI's root opt-in when root. Built per call: the process environment is never changed."""
    env = dict(os.environ, OMP_NUM_THREADS=str(launch.omp_threads))
    if launch.path_prefix:
        env["PATH"] = os.pathsep.join(filter(None, [launch.path_prefix, env.get("PATH")]))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        for key, value in OMPI_ROOT_ENV.items():
            env.setdefault(key, value)
    return env


@dataclass
class Launch:
    """How to start QE: the MPI launcher program (``mpi``, may carry options), MPI tasks, OpenMP
    threads, the QE bin dir, a directory put first on the child's PATH (a conda
    environment's ``bin``: QE and its mpirun), and k-point pools (``-nk``, :mod:`tcflow.dft.pools`)."""

    mpi: str = "mpirun"
    tasks: int = 1
    omp_threads: int = 1
    bin_dir: str = ""
    path_prefix: str = ""
    pools: int = 1

    def command(self, exe: str, input_name: str) -> list[str]:
        path = os.path.join(self.bin_dir, exe) if self.bin_dir else exe
        if exe in SERIAL_CODES:
            return [path]
        prefix = [*shlex.split(self.mpi), "-n", str(self.tasks)] if self.mpi else []
        pools = ["-nk", str(self.pools)] if self.pools > 1 and exe in POOL_CODES else []
        return prefix + [path, *pools, "-in", input_name]


@dataclass
class RunResult:
    code: str          # "ok" or an error code of tcflow.dft.outputs.ERROR_CODES
    reason: str
    returncode: int
    wall_s: float
    output: Path
    attempts: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == "ok"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the job's own signal handling still applies
        pass


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``): MPI
    ranks whose launcher died first stay findable by :func:`stop_running`. Returns success."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
    except (OSError, AttributeError):
        return False


def stop_running() -> int:
    """End every process this one started (the QE launchers, their ranks and any orphan it
    adopted as subreaper): SIGTERM, then SIGKILL after a grace period. Returns how many there
    were. Safe in a signal handler."""
    import psutil

    tree = psutil.Process().children(recursive=True)
    for p in tree:
        with _suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(tree, timeout=TERMINATE_GRACE_S)
    for p in alive:
        with _suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=TERMINATE_GRACE_S)
    return len(tree)


def run_qe(exe: str, input_text: str, workdir: str | Path, name: str, launch: Launch) -> RunResult:
    """Write ``<name>.in``, run ``exe`` in ``workdir`` with stdout to ``<name>.out``, classify it."""
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    inp, out = wd / f"{name}.in", wd / f"{name}.out"
    inp.write_text(input_text)
    cmd = launch.command(exe, inp.name)
    log.info("run %s in %s: %s", exe, wd, " ".join(cmd))
    t0 = time.monotonic()
    try:
        with open(inp) as stdin, open(out, "w") as stdout:
            proc = subprocess.Popen(cmd, cwd=wd, stdin=stdin, stdout=stdout, stderr=subprocess.STDOUT,
                                    env=qe_environment(launch), preexec_fn=_die_with_parent)
            returncode = proc.wait()
    except FileNotFoundError as exc:
        raise LaunchError(f"{exe}: cannot start {' '.join(cmd)!r} ({exc.strerror}: {exc.filename})") from None
    wall = time.monotonic() - t0
    text = out.read_text(errors="replace")
    if returncode != 0 and QE_BANNER not in text:
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
        raise LaunchError(f"{exe}: {' '.join(cmd)!r} did not start (exit {returncode}): {last}")
    code, reason = classify(text)
    if code == "ok" and returncode != 0:
        code, reason = "qe_error", f"exit status {returncode} after JOB DONE"
    log.info("%s finished: %s %s (%.1f s, exit %d)", exe, code, reason, wall, returncode)
    return RunResult(code, reason, returncode, wall, out)


def run_with_retries(exe: str, make_input: Callable[[dict], str], workdir: str | Path, name: str,
                     launch: Launch, settings: dict, handlers, max_retries: int) -> RunResult:
    """Run, and on a recoverable failure apply the handler for its error code
    (:mod:`tcflow.dft.handlers`) and run again, at most ``max_retries`` times. Each failed
    attempt's output is kept as ``<name>.attempt<i>.out``; every action is recorded."""
    from tcflow.dft.handlers import apply_handler

    attempts: list[dict] = []
    current = dict(settings)
    for attempt in range(max_retries + 1):
        res = run_qe(exe, make_input(current), workdir, name, launch)
        attempts.append({"attempt": attempt, "code": res.code, "reason": res.reason, "wall_s": res.wall_s,
                         "settings": dict(current)})
        if res.ok or attempt == max_retries:
            break
        fix = apply_handler(handlers, res.code, current)
        if fix is None:
            break
        current, action = fix
        attempts[-1]["action"] = action
        os.replace(res.output, Path(workdir) / f"{name}.attempt{attempt}.out")
        log.warning("%s attempt %d failed (%s); retrying: %s", exe, attempt, res.code, action)
    res.attempts = attempts
    res.wall_s = sum(a["wall_s"] for a in attempts)
    return res
