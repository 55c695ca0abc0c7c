"""One DFT job: what ``workflow_scripts/dft_step.py`` runs for every rule of ``rules/dft.smk``.

The rule's step comes from :data:`tcflow.dft.chain.BY_RULE`; its function from the step's
``func``. Each job is an ordinary Snakemake ``script:`` job in its own process, on one machine
as on a cluster. QE is launched from the rule's resources (:class:`tcflow.dft.runner.Launch`:
``mpi``, ``tasks``, ``cpus_per_task``); pw.x / ph.x stop cleanly at
``dft.max_seconds_fraction`` of the rule's ``runtime`` (minutes), which grows with the attempt.

No QE process outlives its job:

- SIGINT, SIGTERM or SIGHUP to the job end its QE process groups (:func:`runner.stop_running`)
  and the job fails without publishing anything (a terminal Ctrl-C reaches the job this way;
  a SIGINT sent to the Snakemake process alone is passed on to the jobs by
  :func:`tcflow.smk.forward_interrupt`);
- a watchdog thread ends the job the same way when the Snakemake process that started it is
  gone (killed with SIGKILL, say): its PID comes from ``TCFLOW_SNAKEMAKE_PID``, which the
  Snakefile sets at parse time.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from tcflow.dft.chain import BY_RULE, TC_RULE
from tcflow.dft.runner import Launch, become_subreaper, stop_running
from tcflow.smk import SNAKEMAKE_PID_ENV

log = logging.getLogger(__name__)
SECONDS_PER_MINUTE = 60
WATCHDOG_INTERVAL_S = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_stop_signal(signum, frame) -> None:
    stop_running()
    raise SystemExit(f"stopped by {signal.Signals(signum).name}: QE ended, nothing published")


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def start_watchdog(pid: int, interval: float = WATCHDOG_INTERVAL_S) -> threading.Thread:
    """A daemon thread that sends this process SIGTERM once ``pid`` is gone."""

    def watch() -> None:
        while process_alive(pid):
            threading.Event().wait(interval)
        log.error("Snakemake (PID %d) is gone: stopping QE and this job", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=watch, name="snakemake-watchdog", daemon=True)
    t.start()
    return t


def guard_process() -> None:
    """Install the stop-signal handlers, adopt orphaned descendants and, under Snakemake, start
    the watchdog."""
    become_subreaper()
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    pid = os.environ.get(SNAKEMAKE_PID_ENV)
    if pid and pid.isdigit() and int(pid) != os.getpid():
        start_watchdog(int(pid))


def launch_from(resources: Any, cfg) -> Launch:
    """How QE starts, from the rule's resources (one place: ``mpi``, ``tasks``, ``cpus_per_task``)."""
    return Launch(mpi=str(getattr(resources, "mpi", "") or "mpirun"), tasks=int(getattr(resources, "tasks", 1) or 1),
                  omp_threads=int(getattr(resources, "cpus_per_task", 1) or 1), bin_dir=cfg.get("qe_bin_dir") or "")


def run(smk: Any) -> dict:
    """Run the step of ``smk.rule`` for one candidate (``smk``: Snakemake's script object)."""
    from tcflow.dft.stage import StepContext
    from tcflow.dft.steps import resolve

    cfg, wc = smk.config["dft"], smk.wildcards
    cid = wc.cid
    cand = Path("results/dft") / cid
    if smk.rule == TC_RULE:
        from tcflow.dft.steps.tc import finish_candidate

        log.info("%s (%s) in process %d: no QE", smk.rule, cid, os.getpid())
        return finish_candidate(cid, Path(smk.output.tc).parent, smk.output.tc, smk.output.meta, cfg,
                                seed=smk.params.seed, inputs=[Path(smk.input.structure) / "input.cif"])
    step = BY_RULE[smk.rule]
    max_s, limit = walltime(smk.resources, cfg)
    log.info("%s (%s) in process %d: %s", smk.rule, cid, os.getpid(), limit)
    ctx = StepContext(step=step, cid=cid, cand=cand, final=Path(smk.output.dir), launch=launch_from(smk.resources, cfg),
                      max_seconds=max_s, cfg=cfg, chunk=int(wc.chunk) if step.chunked else None,
                      ph_jobs=int(cfg["ph_jobs"]), inputs=dict(smk.input.items()),
                      pseudo_dir=cfg["pseudo_dir"] or smk.input.get("pseudo"))
    return run_named(ctx, resolve(step.func), limit)


def walltime(resources: Any, cfg) -> tuple[float | None, str]:
    """When pw.x/ph.x must stop cleanly (s: ``dft.max_seconds_fraction`` of the rule's
    ``runtime`` in minutes; None without one) and the limit in words, for the log."""
    runtime = getattr(resources, "runtime", None)
    max_s = runtime * SECONDS_PER_MINUTE * cfg["max_seconds_fraction"] if runtime else None
    # (Snakemake tells a script its resources, not its attempt: runtime x attempt shows which)
    limit = f"runtime {runtime} min, QE stops at {max_s:.{'0f' if max_s >= 10 else '3g'}} s" if runtime else "no runtime"
    return max_s, limit


def run_named(ctx, func, limit: str) -> dict:
    """:func:`tcflow.dft.stage.run_step`; a walltime stop names the limit the job ran past and
    what the retry gets."""
    from tcflow.dft.stage import ResumableInterruption, run_step

    try:
        return run_step(ctx, func)
    except ResumableInterruption as exc:
        raise ResumableInterruption(f"{exc}; the job's limit was {limit} (dft.max_seconds_fraction "
                                    f"{ctx.cfg['max_seconds_fraction']} of the rule's runtime; a retry "
                                    "gets runtime x attempt)") from exc


def main(smk: Any) -> None:
    """The script body: guarded process, the rule's log, one-line failure."""
    from tcflow.scriptlog import rule_logging

    guard_process()
    with rule_logging(smk.log[0] if smk.log else None, f"{smk.rule} ({smk.wildcards.cid})"):
        run(smk)
