"""The run's funnel: how many structures reached each stage, and why the others stopped.

Every count is read from a file of the run and carries that file's path, so the report's
numbers trace back to ``results/``:

- screen: ``results/screen/screened.csv`` (one row per sample, ``passed`` and the first failed
  criterion ``reason``, see :mod:`tcflow.screen.property_head`);
- candidates: ``results/screen/candidates.csv`` and ``rejected.csv``;
- DFT: ``results/report/candidates.csv`` (one row per candidate, ``status`` and ``tc_K`` in K).
"""

from __future__ import annotations

import re

#: (pattern of a screen reason, the category it counts under; \\1 keeps the threshold)
_REASON_CATEGORIES = (
    (re.compile(r"^predicted Tc [-+\d.eE]+ K <= ([-+\d.eE]+) K$"), r"predicted Tc ≤ \1 K"),
    (re.compile(r"^natoms \d+ > (\d+)$"), r"more than \1 atoms"),
)


def reason_category(reason: str) -> str:
    """A screen reason without the sample's own value, keeping the threshold:
    ``"predicted Tc 3.21 K <= 5.0 K"`` -> ``"predicted Tc ≤ 5.0 K"``. Others stay as they are."""
    for pattern, repl in _REASON_CATEGORIES:
        if pattern.match(reason):
            return pattern.sub(repl, reason)
    return reason


def screen_reasons(screened) -> list[tuple[str, int]]:
    """(reason category, count) of the failed samples, most frequent first."""
    failed = screened.loc[~screened["passed"].astype(bool), "reason"].fillna("").astype(str)
    counts = failed.map(reason_category).value_counts()
    return [(str(r), int(n)) for r, n in counts.items()]


def dft_status_category(status: str) -> str:
    """``failed: <code>: <detail>`` -> ``failed: <code>``; other statuses unchanged."""
    parts = str(status).split(": ")
    return ": ".join(parts[:2]) if parts[0] in ("failed", "error") else str(status)


def funnel(summary, tc_min_K: float, screened=None, n_candidates: int | None = None,
           paths: dict | None = None) -> list[dict]:
    """Stages in order: ``{"stage", "count", "source"}``.

    ``summary``: results/report/candidates.csv as a DataFrame; ``screened``: screened.csv (None
    when the candidates are the user's CIFs); ``n_candidates``: accepted candidates.
    """
    paths = {"screened": "results/screen/screened.csv", "candidates": "results/screen/candidates.csv",
             "summary": "results/report/candidates.csv", **(paths or {})}
    rows = []
    if screened is not None:
        rows.append({"stage": "generated samples", "count": len(screened), "source": paths["screened"]})
        rows.append({"stage": "passed the screen", "count": int(screened["passed"].astype(bool).sum()),
                     "source": paths["screened"]})
    if n_candidates is not None:
        rows.append({"stage": "candidates sent to DFT", "count": int(n_candidates), "source": paths["candidates"]})
    n = len(summary)
    status = summary["status"].astype(str) if n else None
    rows.append({"stage": "DFT finished", "count": n, "source": paths["summary"]})
    ok = (status == "ok") if n else None
    rows.append({"stage": "metallic and dynamically stable (status ok)", "count": int(ok.sum()) if n else 0,
                 "source": paths["summary"]})
    hits = int((ok & (summary["tc_K"].astype(float) >= tc_min_K)).sum()) if n else 0
    rows.append({"stage": f"DFT Tc ≥ {tc_min_K:g} K", "count": hits, "source": paths["summary"]})
    return rows


def dft_reasons(summary) -> list[tuple[str, int]]:
    """(status category, count) of the candidates whose DFT status is not ``ok``."""
    if not len(summary):
        return []
    bad = summary.loc[summary["status"].astype(str) != "ok", "status"].astype(str).map(dft_status_category)
    return [(str(r), int(n)) for r, n in bad.value_counts().items()]
