"""Logging for ``workflow_scripts/``: everything a script logs or prints to stderr goes to the
rule's ``log:`` file, and an exception becomes one line naming what failed (plus the traceback in
the log), so that Snakemake shows the cause, not a wall of text."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from typing import Iterator

from tcflow.smk import LOG_FORMAT

#: starts the last line of a failed job's log
FAILED_PREFIX = "FAILED: "


@contextlib.contextmanager
def rule_logging(log_path: str | None, name: str) -> Iterator[logging.Logger]:
    """Send logging and stderr to ``log_path`` for the duration of the block.

    On an exception (or a stop signal turned into SystemExit) the traceback is written to the
    log, followed by one line ``FAILED: <name>: <error>`` (what the end-of-run summary reads),
    and the script exits with status 1 after printing ``<name>: <error>`` to the real stderr.
    """
    real_stderr = sys.stderr
    fh = open(log_path, "a", encoding="utf-8") if log_path else real_stderr
    handler = logging.StreamHandler(fh)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    sys.stderr = fh
    try:
        yield logging.getLogger(name)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        traceback.print_exc(file=fh)
        print(f"{FAILED_PREFIX}{name}: {exc or type(exc).__name__}", file=fh)
        fh.flush()
        sys.stderr = real_stderr
        print(f"{name}: {exc}", file=real_stderr)
        sys.exit(1)
    finally:
        sys.stderr = real_stderr
        if fh is not real_stderr:
            fh.close()
