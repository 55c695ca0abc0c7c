"""Small helpers for the Snakefile and its in-process (``run:``) jobs; imported at parse time, so
standard library only."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
import traceback
from typing import Iterator

#: one line per record in every job log (script and in-process jobs alike)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the package logger every tcflow module logs under (``logging.getLogger(__name__)``)
PACKAGE_LOGGER = "tcflow"


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


def prepare_exit() -> None:
    """What the Snakefile's ``onsuccess``/``onerror`` do: release the scheduler's timers and freeze
    the heap (``gc.freeze``).

    At exit CPython runs a full collection over everything the run imported (Snakemake, and the
    pymatgen/numpy that in-process jobs loaded): 0.15-0.2 s measured on this machine, paid at the
    end of every run. Frozen objects are skipped by it; objects made afterwards are collected as
    usual, and reference counting still finalises the frozen ones.
    """
    release_rescheduling_timers()
    gc.freeze()


class JobError(RuntimeError):
    """An in-process job failed; the message is one line naming the rule (and candidate)."""


class Interrupted(JobError):
    """An output was about to be published after Snakemake had been interrupted (Ctrl-C)."""


#: Set by the SIGINT handler of :func:`watch_interrupt`: Snakemake is shutting down.
INTERRUPTED = threading.Event()


def watch_interrupt() -> bool:
    """Record a Ctrl-C for the in-process jobs, then let Snakemake handle it as before.

    Called by the Snakefile at parse time (main thread). On SIGINT Snakemake stops scheduling and
    waits for the running jobs, but an in-process (``run:``, threaded) job that was past its QE
    run goes on and would publish its output after Snakemake had already given it up: the output
    then looks finished while Snakemake keeps its "incomplete" marker, and the next run stops
    with ``IncompleteFilesException`` (or, with ``--rerun-incomplete``, redoes the job anyway).
    With the Ctrl-C recorded, :func:`raise_if_interrupted` makes such a job fail before it
    publishes anything, like a job whose QE run was cut. Returns whether a handler was installed
    (not outside the main thread, nor where SIGINT is ignored).
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    prev = signal.getsignal(signal.SIGINT)
    if prev in (signal.SIG_IGN, None) or getattr(prev, "tcflow_watch", False):
        return False

    def on_sigint(signum, frame):
        INTERRUPTED.set()
        if callable(prev):
            return prev(signum, frame)
        raise KeyboardInterrupt

    on_sigint.tcflow_watch = True
    signal.signal(signal.SIGINT, on_sigint)
    return True


def raise_if_interrupted(what) -> None:
    """Refuse to publish ``what`` (a path) once Snakemake has been interrupted."""
    if INTERRUPTED.is_set():
        raise Interrupted(f"{what}: not published: the run was interrupted (Ctrl-C) while this job ran; "
                          "rerunning the workflow redoes it")


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.ident = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


@contextlib.contextmanager
def job_logging(log_path: str | None, name: str) -> Iterator[logging.Logger]:
    """Send the tcflow log records of the calling thread to ``log_path`` for the block.

    Jobs running side by side in other threads keep their own files. An exception is written to
    the log with its traceback and re-raised as :class:`JobError` with the one-line message
    ``<name>: <error>``.
    """
    pkg = logging.getLogger(PACKAGE_LOGGER)
    fh = open(log_path, "a", encoding="utf-8") if log_path else None
    handler = logging.StreamHandler(fh) if fh else logging.NullHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_ThisThread())
    pkg.addHandler(handler)
    if pkg.level == logging.NOTSET or pkg.level > logging.INFO:
        pkg.setLevel(logging.INFO)
    try:
        yield logging.getLogger(f"{PACKAGE_LOGGER}.{name.split()[0]}")
    except Exception as exc:
        if fh:
            traceback.print_exc(file=fh)
        raise JobError(f"{name}: {exc}") from None
    finally:
        pkg.removeHandler(handler)
        if fh:
            fh.close()
