"""Small helpers for the Snakefile itself (imported at parse time: standard library only)."""

from __future__ import annotations

import threading


def release_rescheduling_timers() -> int:
    """Cancel pending ``threading.Timer`` threads at the end of a run; returns how many.

    Snakemake 9's scheduler starts a 1 s ``threading.Timer`` (a non-daemon thread) each time it
    waits for jobs, to re-check its job-rate limit (``--max-jobs-per-timespan``, default 100/1s).
    After the last job, Python's interpreter shutdown waits for the last of these timers, so every
    run exits up to a second after its work is done. The timers only wake the scheduler, which has
    finished by the time ``onsuccess``/``onerror`` run, so cancelling them loses nothing.
    """
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]
    for t in timers:
        t.cancel()
    return len(timers)
