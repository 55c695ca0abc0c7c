"""Interrupts with real processes: every job runs in its own process, and no QE-like process
outlives its job.

- tcflow.smk.forward_interrupt: a SIGINT sent to the Snakemake process alone reaches the running
  jobs (Snakemake 9 by itself waits for them), so the run stops within seconds and the job that
  was running publishes nothing; the next dry run plans it again (no IncompleteFilesException).
- tcflow.dft.runner / tcflow.dft.job: a launched program runs in its own process group that dies
  with the job: on SIGTERM/SIGINT to the job, and when the job's Snakemake is killed (SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from workflow_helpers import REPO, SNAKEMAKE
from tcflow import smk
from tcflow.dft.job import process_alive

def _fake_qe(seconds: str) -> str:
    """A stand-in for ``mpirun pw.x`` as a Launch.mpi: a launcher (sh) printing QE's banner with a
    long-running child (``sleep <seconds>``, the argument marks it), like mpirun and its ranks."""
    return f"sh -c 'echo Program FAKE v.0; sleep {seconds} & wait'"


def _wait_for(pred, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sleepers(seconds: str) -> list[psutil.Process]:
    """Live processes running ``sleep <seconds>``."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["cmdline"] == ["sleep", seconds] and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


SNAKEFILE = """
import sys
sys.path.insert(0, {repo!r})
from tcflow.smk import forward_interrupt, mark_snakemake_process
mark_snakemake_process()
forward_interrupt()

rule slow:
    output: "out.txt"
    shell: "{python} {job}"
"""

JOB = """
import sys
sys.path.insert(0, {repo!r})
from tcflow.dft.job import guard_process
from tcflow.dft.runner import Launch, run_qe
from tcflow.io import atomic_write_text

guard_process()
run_qe("pw.x", "", "run", "pw", Launch(mpi={fake!r}, tasks=1))
atomic_write_text("out.txt", "done")
"""


def _workflow(tmp_path: Path, seconds: str) -> list[str]:
    (tmp_path / "job.py").write_text(JOB.format(repo=str(REPO), fake=_fake_qe(seconds)))
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(repo=str(REPO), python=sys.executable,
                                                        job=str(tmp_path / "job.py")))
    return [str(SNAKEMAKE), "--cores", "1", "--directory", str(tmp_path), "-s", str(tmp_path / "Snakefile")]


def _start(cmd: list[str]) -> subprocess.Popen:
    # SIGINT back to its default in the child: a test run started in the background (`cmd &`)
    # inherits SIGINT ignored, and then Python would not turn it into KeyboardInterrupt
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_sigint_to_snakemake_pid_stops_job_and_its_child_within_seconds(tmp_path):
    marker = f"300.{os.getpid()}1"
    cmd = _workflow(tmp_path, marker)
    proc = _start(cmd)
    _wait_for(lambda: _sleepers(marker), what="the fake QE process")
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)  # the Snakemake process alone, not its group
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20, out
    assert proc.returncode != 0
    _wait_for(lambda: not _sleepers(marker), timeout=10, what="the fake QE process to end")
    assert not (tmp_path / "out.txt").exists()
    plan = subprocess.run(cmd + ["-n"], capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0 and "IncompleteFiles" not in plan.stdout + plan.stderr, plan.stdout + plan.stderr
    assert "slow" in plan.stdout


def test_sigkill_of_snakemake_ends_the_job_and_its_child(tmp_path):
    marker = f"300.{os.getpid()}2"
    cmd = _workflow(tmp_path, marker)
    proc = _start(cmd)
    _wait_for(lambda: _sleepers(marker), what="the fake QE process")
    job = [p for p in psutil.Process(proc.pid).children(recursive=True) if str(tmp_path / "job.py") in p.cmdline()]
    assert job, "job process not found"
    os.kill(proc.pid, signal.SIGKILL)  # no clean shutdown: a lost head node
    proc.wait()
    _wait_for(lambda: not _sleepers(marker), timeout=20, what="the fake QE process to end")
    _wait_for(lambda: not job[0].is_running() or job[0].status() == psutil.STATUS_ZOMBIE, timeout=10,
              what="the job to end")
    assert not (tmp_path / "out.txt").exists()


def test_forward_interrupt_signals_descendants_and_chains(monkeypatch):
    prev = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            assert smk.forward_interrupt()
            assert not smk.forward_interrupt()  # once only
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            assert child.wait(timeout=10) != 0  # the child got the SIGINT too
        finally:
            child.kill()
    finally:
        signal.signal(signal.SIGINT, prev)


def test_process_alive_treats_zombies_as_dead():
    child = subprocess.Popen(["true"])
    _wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, what="a zombie")
    assert not process_alive(child.pid)
    child.wait()
    assert not process_alive(child.pid) and process_alive(os.getpid())
