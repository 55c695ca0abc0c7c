"""tcflow.smk.job_logging, the log wrapper of in-process (run:) jobs: logs stay per job when jobs run
side by side in threads, and a failure becomes one line naming the job, with the traceback in its log.
tcflow.smk.watch_interrupt: after a Ctrl-C, a threaded job that goes on publishes nothing."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from workflow_helpers import REPO, SNAKEMAKE
from tcflow import smk
from tcflow.smk import JobError, job_logging

log = logging.getLogger("tcflow.dft.test_job")


def _job(path, name, barrier):
    with job_logging(str(path), name):
        for i in range(50):
            log.info("%s line %d", name, i)
            if i == 10:
                barrier.wait()  # both jobs are logging at the same time


def test_concurrent_jobs_keep_their_own_logs(tmp_path):
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_job, args=(tmp_path / f"{n}.log", n, barrier)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for own, other in (("a", "b"), ("b", "a")):
        text = (tmp_path / f"{own}.log").read_text()
        assert text.count(f"{own} line") == 50
        assert f"{other} line" not in text
    assert not logging.getLogger("tcflow").handlers  # handlers removed after each job


def test_failure_is_one_line_with_traceback_in_log(tmp_path):
    path = tmp_path / "job.log"
    with pytest.raises(JobError) as err:
        with job_logging(str(path), "dft_scf (Nb3Sn)"):
            raise ValueError("scf_fit/scf_fit.json: not found")
    assert str(err.value) == "dft_scf (Nb3Sn): scf_fit/scf_fit.json: not found"
    assert "Traceback" in path.read_text() and "ValueError" in path.read_text()


def test_prepare_exit_cancels_timers_and_freezes_heap():
    import gc

    from tcflow.smk import prepare_exit

    fired = []
    timer = threading.Timer(30, fired.append, args=(1,))
    timer.start()
    try:
        prepare_exit()
        timer.join(timeout=5)
        assert not timer.is_alive() and not fired
        assert gc.get_freeze_count() > 0
    finally:
        timer.cancel()
        gc.unfreeze()


@pytest.fixture
def sigint_watch():
    prev = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, prev)
    smk.INTERRUPTED.clear()


def test_after_ctrl_c_nothing_is_published(tmp_path, sigint_watch):
    """The handler records the Ctrl-C and still raises KeyboardInterrupt in the main thread (what
    Snakemake acts on); from then on atomic writes and the DFT steps' staged directories refuse
    to rename anything into place, and leave no temporary file behind."""
    from tcflow.dft.steps import _staged
    from tcflow.io import atomic_dir, atomic_write_text

    assert smk.watch_interrupt()
    assert not smk.watch_interrupt()  # once only
    atomic_write_text(tmp_path / "before.txt", "x")
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert smk.INTERRUPTED.is_set()

    def in_thread(fn):
        err = []
        t = threading.Thread(target=lambda: err.append(pytest.raises(smk.Interrupted, fn)))
        t.start()
        t.join()
        assert err and "not published: the run was interrupted" in str(err[0].value)

    in_thread(lambda: atomic_write_text(tmp_path / "after.txt", "x"))

    def fill():
        with atomic_dir(tmp_path / "dir") as d:
            (d / "f").write_text("x")

    in_thread(fill)

    @_staged
    def step(outdir):
        (outdir / "record.json").write_text("{}")

    in_thread(lambda: step(outdir=tmp_path / "step"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".step.partial", "before.txt"]


def test_job_running_at_ctrl_c_leaves_nothing_snakemake_calls_incomplete(tmp_path):
    """A real Snakemake run with a threaded run: job that finishes its work after the Ctrl-C (as a
    DFT step past its QE run does): its output does not appear, and the next dry run plans the
    job again instead of stopping with IncompleteFilesException."""
    (tmp_path / "Snakefile").write_text(f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tcflow.smk import watch_interrupt
watch_interrupt()

rule slow:
    output: "out.txt"
    run:
        import time
        from tcflow.io import atomic_write_text
        open("started", "w").close()
        time.sleep(3)
        atomic_write_text(output[0], "done")
""")
    cmd = [str(SNAKEMAKE), "--cores", "1", "--force-use-threads", "--workflow-profile", "none",
           "--directory", str(tmp_path),
           "-s", str(tmp_path / "Snakefile")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert "out.txt: not published: the run was interrupted" in out, out
    assert not (tmp_path / "out.txt").exists()
    plan = subprocess.run(cmd + ["-n"], capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0 and "IncompleteFiles" not in plan.stdout + plan.stderr, plan.stdout + plan.stderr
    assert "slow" in plan.stdout
