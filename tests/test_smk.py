"""tcflow.smk.job_logging, the log wrapper of in-process (run:) jobs: logs stay per job when jobs run
side by side in threads, and a failure becomes one line naming the job, with the traceback in its log."""

from __future__ import annotations

import logging
import threading

import pytest

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
