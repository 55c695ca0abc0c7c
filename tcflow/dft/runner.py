"""Run one Quantum ESPRESSO executable in a directory and classify the result from its output.

The launcher comes from config (e.g. ``mpirun -np {tasks}`` or ``srun``), MPI tasks and OpenMP
threads from the rule's resources; ``OMP_NUM_THREADS`` is always set explicitly. Serial
post-processing codes (q2r.x, matdyn.x, lambda.x) run without the launcher, reading stdin.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tcflow.dft.outputs import classify

log = logging.getLogger(__name__)
#: codes whose input is read from stdin and that are run serially
SERIAL_CODES = ("q2r.x", "matdyn.x", "lambda.x")
#: Open MPI refuses to run as root unless both are set (containers, CI, single-user VMs)
OMPI_ROOT_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
#: every QE executable prints "Program <NAME> v.<version>" when it starts
QE_BANNER = "Program "


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
    """How to start QE: launcher template (``{tasks}`` filled in), MPI tasks, OpenMP threads, bin dir,
    and a directory put first on the child's PATH (a conda environment's ``bin``: QE and its mpirun)."""

    launcher: str = "mpirun -np {tasks}"
    tasks: int = 1
    omp_threads: int = 1
    bin_dir: str = ""
    path_prefix: str = ""

    def command(self, exe: str, input_name: str) -> list[str]:
        path = os.path.join(self.bin_dir, exe) if self.bin_dir else exe
        if exe in SERIAL_CODES:
            return [path]
        prefix = shlex.split(self.launcher.format(tasks=self.tasks)) if self.launcher else []
        return prefix + [path, "-in", input_name]


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
            proc = subprocess.run(cmd, cwd=wd, stdin=stdin, stdout=stdout, stderr=subprocess.STDOUT,
                                  env=qe_environment(launch))
    except FileNotFoundError as exc:
        raise LaunchError(f"{exe}: cannot start {' '.join(cmd)!r} ({exc.strerror}: {exc.filename})") from None
    wall = time.monotonic() - t0
    text = out.read_text(errors="replace")
    if proc.returncode != 0 and QE_BANNER not in text:
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
        raise LaunchError(f"{exe}: {' '.join(cmd)!r} did not start (exit {proc.returncode}): {last}")
    code, reason = classify(text)
    if code == "ok" and proc.returncode != 0:
        code, reason = "qe_error", f"exit status {proc.returncode} after JOB DONE"
    log.info("%s finished: %s %s (%.1f s, exit %d)", exe, code, reason, wall, proc.returncode)
    return RunResult(code, reason, proc.returncode, wall, out)


#: a handler gets (error code, attempt number, current settings) and returns new settings with a
#: one-line description of the action, or None when the error is not recoverable this way
Handler = Callable[[str, int, dict], "tuple[dict, str] | None"]


def run_with_retries(exe: str, make_input: Callable[[dict], str], workdir: str | Path, name: str,
                     launch: Launch, settings: dict, handler: Handler, max_retries: int) -> RunResult:
    """Run, and on a recoverable failure apply ``handler`` and run again (at most ``max_retries``
    times). Each attempt's output is kept as ``<name>.attempt<i>.out``; actions are recorded."""
    attempts: list[dict] = []
    current = dict(settings)
    for attempt in range(max_retries + 1):
        res = run_qe(exe, make_input(current), workdir, name, launch)
        attempts.append({"attempt": attempt, "code": res.code, "reason": res.reason, "wall_s": res.wall_s,
                         "settings": dict(current)})
        if res.ok or attempt == max_retries:
            break
        fix = handler(res.code, attempt, current)
        if fix is None:
            break
        current, action = fix
        attempts[-1]["action"] = action
        kept = Path(workdir) / f"{name}.attempt{attempt}.out"
        os.replace(res.output, kept)
        log.warning("%s attempt %d failed (%s); retrying: %s", exe, attempt, res.code, action)
    res.attempts = attempts
    res.wall_s = sum(a["wall_s"] for a in attempts)
    return res


def pw_handler(code: str, attempt: int, s: dict) -> tuple[dict, str] | None:
    """Safer settings for pw.x: halve mixing_beta and double the steps on non-convergence;
    conjugate-gradient diagonalisation on a Davidson failure."""
    if code == "scf_not_converged":
        new = dict(s, mixing_beta=s["mixing_beta"] * 0.5, electron_maxstep=s["electron_maxstep"] * 2)
        return new, f"mixing_beta -> {new['mixing_beta']}, electron_maxstep -> {new['electron_maxstep']}"
    if code == "diagonalization":
        return dict(s, diagonalization="cg"), "diagonalization -> cg"
    return None


def ph_handler(code: str, attempt: int, s: dict) -> tuple[dict, str] | None:
    """ph.x: a symmetry/representation error is retried without the mode symmetry analysis;
    non-convergence with smaller mixing."""
    if code == "symmetry":
        return dict(s, search_sym=False), "search_sym -> .false."
    if code == "ph_not_converged":
        return dict(s, alpha_mix=s.get("alpha_mix", 0.7) * 0.5), "alpha_mix halved, restart at the unfinished q-point"
    return None
