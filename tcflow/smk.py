"""Small helpers for the Snakefile, imported at parse time: standard library only (psutil, a
Snakemake dependency, is imported when a signal arrives).

- :func:`mark_snakemake_process`: tell the jobs which process runs the workflow, so that a DFT job
  whose Snakemake was killed stops its QE runs (:mod:`tcflow.dft.job`).
- :func:`forward_interrupt`: a SIGINT sent to the Snakemake process alone reaches its jobs.
  Snakemake 9 answers SIGINT by waiting for the jobs it started; a terminal's Ctrl-C signals the
  jobs too (they share its process group), but ``kill -INT <snakemake pid>`` did not: measured,
  pw.x ran on and Snakemake was still waiting 90 s later. The handler passes the SIGINT to every
  descendant, as a terminal would, then lets Snakemake handle it as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import traceback
from typing import Iterator

#: one line per record in every job log
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the package logger every tcflow module logs under (``logging.getLogger(__name__)``)
PACKAGE_LOGGER = "tcflow"
SNAKEMAKE_PID_ENV = "TCFLOW_SNAKEMAKE_PID"


def mark_snakemake_process() -> None:
    """Export this process's PID to the jobs it starts (``TCFLOW_SNAKEMAKE_PID``)."""
    os.environ[SNAKEMAKE_PID_ENV] = str(os.getpid())


def signal_descendants(sig: int) -> int:
    """Send ``sig`` to every descendant process of this one; returns how many were signalled."""
    import psutil

    n = 0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.send_signal(sig)
            n += 1
    return n


def forward_interrupt() -> bool:
    """Install the SIGINT forwarder (main thread only; not where SIGINT is ignored); returns
    whether it was installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    prev = signal.getsignal(signal.SIGINT)
    if prev in (signal.SIG_IGN, None) or getattr(prev, "tcflow_forward", False):
        return False

    def on_sigint(signum, frame):
        signal_descendants(signal.SIGINT)
        if callable(prev):
            return prev(signum, frame)
        raise KeyboardInterrupt

    on_sigint.tcflow_forward = True
    signal.signal(signal.SIGINT, on_sigint)
    return True


class JobError(RuntimeError):
    """An in-process job failed; the message is one line naming the rule (and candidate)."""


@contextlib.contextmanager
def job_logging(log_path: str | None, name: str) -> Iterator[logging.Logger]:
    """Send the tcflow log records to ``log_path`` for the block (used by the ``run:`` body of
    the candidates checkpoint); an exception is written to the log with its traceback and
    re-raised as :class:`JobError` with the one-line message ``<name>: <error>``."""
    pkg = logging.getLogger(PACKAGE_LOGGER)
    fh = open(log_path, "a", encoding="utf-8") if log_path else None
    handler = logging.StreamHandler(fh) if fh else logging.NullHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
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
