"""The few lines ``make run`` prints at the end: counts per stage, the best candidates with their
Tc, and where the report and the tables are. Every number is read from a file under ``results/``
(the funnel from ``results/report/funnel.csv``, the candidates from ``table1.csv``)::

    python -m tcflow.report.summary [--results results] [--top 5]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

TOP = 5


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(v: str | None, fmt: str, unit: str = "") -> str:
    """``v`` formatted with its unit, or ``n/a`` (empty cell: not computed)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if x != x else format(x, fmt) + unit


def summary_lines(results: str | Path = "results", top: int = TOP) -> list[str]:
    """The summary as lines of text (standard library only: it runs after the workflow)."""
    rep = Path(results) / "report"
    funnel, table1 = rep / "funnel.csv", rep / "table1.csv"
    if not funnel.is_file():
        return [f"No report yet: {funnel} is missing (the workflow has not reached the report rule)."]
    lines = [f"Stages ({funnel}):"]
    stages = _rows(funnel)
    width = max(len(r["stage"]) for r in stages) if stages else 0
    lines += [f"  {r['stage']:<{width}}  {r['count']:>6}" for r in stages]
    best = _rows(table1)
    if best:
        lines.append(f"Best candidates by DFT Tc ({table1}, {len(best)} with status ok):")
        for r in best[:top]:
            lines.append(f"  {r['id']:<16} {r['formula']:<12} Tc {_num(r['tc_K'], '.2f', ' K'):>9}   "
                         f"λ {_num(r['lambda'], '.3f')}   ω_log {_num(r['omega_log_K'], '.0f', ' K')}   "
                         f"E_hull {_num(r.get('e_hull_eV_atom'), '.3f', ' eV/atom')}")
    else:
        lines.append(f"No candidate finished DFT with status ok ({table1} is empty).")
    html = rep / "report.html"
    lines += [f"Report:  {rep / 'report.md'}" + (f"  and {html} (open in a browser)" if html.is_file() else ""),
              f"Tables:  {rep / 'table1.csv'}, {rep / 'candidates.csv'}   Figures: {rep / 'figures'}/",
              "Layout:  docs/output.md"]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Summary of a tcflow run")
    ap.add_argument("--results", default="results")
    ap.add_argument("--top", type=int, default=TOP)
    args = ap.parse_args(argv)
    print("\n".join(summary_lines(args.results, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
