"""The end-of-run summary of the DFT stage: which candidates did not end with ``status: ok``,
and why (printed by the Snakefile's ``onsuccess``/``onerror``; a local run keeps going past a
failed candidate, so this is where the failures are listed together)."""

from __future__ import annotations

import json
from pathlib import Path

from tcflow.scriptlog import FAILED_PREFIX


def _job_failure(cand_log: Path, cand_dir: Path) -> str | None:
    """The last failure line of a job of this candidate whose output is missing."""
    for log in sorted(cand_log.rglob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
        step = log.relative_to(cand_log).with_suffix("")
        out = cand_dir / ("tc.json" if str(step) == "tc" else step)
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith(FAILED_PREFIX)]
        if lines and not out.exists():
            return f"job {step} failed: {lines[-1][len(FAILED_PREFIX):]} (log: {log})"
    return None


def candidate_summary(workdir: str | Path = ".") -> list[str]:
    """One line per candidate that has no ``ok`` Tc record: its recorded status, or why its job
    failed, or that it has not finished."""
    wd = Path(workdir)
    lines = []
    for cif in sorted((wd / "results/candidates").glob("*.cif")):
        cid = cif.stem
        cand, tc = wd / "results/dft" / cid, wd / "results/dft" / cid / "tc.json"
        if tc.is_file():
            status = json.loads(tc.read_text()).get("status")
            if status != "ok":
                lines.append(f"{cid}: {status}")
            continue
        failure = _job_failure(wd / "logs/dft" / cid, cand)
        if failure:
            lines.append(f"{cid}: {failure}")
        elif cand.exists():
            lines.append(f"{cid}: not finished")
    return lines


def print_summary(workdir: str | Path = ".") -> None:
    lines = candidate_summary(workdir)
    if lines:
        print(f"DFT candidates without a Tc ({len(lines)}):")
        for line in lines:
            print(f"  {line}")
