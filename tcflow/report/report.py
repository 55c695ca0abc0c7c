"""The final Markdown report and the collated provenance file.

``report.md`` states, for the run it describes: where the data came from, what each stage
produced (samples, screen survivors, candidates, DFT outcomes), the table of candidates by DFT
Tc, and which analyses are not part of this run.
"""

from __future__ import annotations

import json
from pathlib import Path

from tcflow.io import atomic_write_json, atomic_write_text, read_json
from tcflow.provenance import package_versions

#: Columns shown in the report's table (others stay in candidates.csv).
TABLE_COLUMNS = ("id", "formula", "natoms", "status", "tc_K", "lambda", "omega_log_K", "novel", "matched_id")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.3g}"  # NaN -> blank
    return "" if v is None else str(v)


def markdown_table(df, columns=TABLE_COLUMNS) -> str:
    cols = [c for c in columns if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def collate_versions(results_dir: str | Path, out_json: str | Path) -> dict:
    """Gather every ``metadata.json`` under ``results_dir`` into one file keyed by its path."""
    results_dir = Path(results_dir)
    records = {str(p.relative_to(results_dir)): read_json(p) for p in sorted(results_dir.rglob("metadata.json"))}
    out = {"report_versions": package_versions(), "stages": records}
    atomic_write_json(out_json, out)
    return out


def write_report(out_md: str | Path, summary_csv: str | Path, manifest_json: str | Path,
                 rejected_csv: str | Path, config: dict, screened_csv: str | Path | None = None,
                 metrics_json: str | Path | None = None) -> str:
    """Write ``report.md``; return its text."""
    import pandas as pd

    try:
        summary = pd.read_csv(summary_csv)
    except pd.errors.EmptyDataError:  # no candidate reached DFT: aggregate wrote no columns
        summary = pd.DataFrame()
    manifest = read_json(manifest_json)
    rejected = pd.read_csv(rejected_csv)
    tc_min = config["report"]["tc_min_K"]
    out = ["# tcflow report", ""]
    out += ["## Data", "",
            f"Source: `{manifest['origin']}`. Rows: "
            + ", ".join(f"{k} {v['rows']}" for k, v in manifest["splits"].items())
            + f"; excluded {len(manifest['excluded'])}; {len(manifest['elements'])} elements.", ""]
    if config["candidates"]["source"] == "generate":
        out += ["## Generation and screen", ""]
        if metrics_json and Path(metrics_json).exists():
            metrics = read_json(metrics_json)
            scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
            out += ["Generation metrics (`results/generate/metrics.json`):", "", "```",
                    json.dumps(scalars, indent=1, sort_keys=True), "```", ""]
        if screened_csv and Path(screened_csv).exists():
            scr = pd.read_csv(screened_csv)
            out += [f"Screen (`{config['screen']['method']}`): {int(scr['passed'].sum())} of {len(scr)} "
                    f"samples passed (predicted Tc > {config['screen']['tc_min_K']} K, "
                    f"at most {config['screen']['max_atoms']} atoms"
                    + (", structurally and compositionally valid" if config['screen']['require_valid'] else "")
                    + ").", ""]
            reasons = scr.loc[~scr["passed"], "reason"].str.replace(r"[\d.]+", "#", regex=True).value_counts()
            out += [f"- {n} × {r}" for r, n in reasons.items()] + [""]
    else:
        out += ["## Candidates", "", f"User structures from `{config['candidates']['path']}`.", ""]
    out += ["## DFT (Quantum ESPRESSO electron-phonon)", ""]
    if len(summary):
        counts = summary["status"].value_counts()
        out += ["Status: " + ", ".join(f"{s}: {n}" for s, n in counts.items()) + ".", ""]
        hits = summary[(summary["status"] == "ok") & (summary["tc_K"] >= tc_min)]
        out += [f"{len(hits)} candidate(s) with status ok and Tc ≥ {tc_min} K.", "",
                "Tc from the Allen–Dynes formula (mu* as in the DFT protocol); full table in "
                "`results/report/candidates.csv`, per-broadening data in `results/dft/<id>/tc.json`.", "",
                markdown_table(summary), ""]
    else:
        out += ["No candidate reached the DFT stage.", ""]
    if len(rejected):
        out += ["Inputs rejected before DFT:", ""] + [f"- `{r.id}`: {r.reason}" for r in rejected.itertuples()] + [""]
    out += ["## Not part of this run", "",
            "Formation energy and energy above hull are not computed by this version of tcflow; "
            "novelty is a structure match against the JARVIS-SC training data only.", ""]
    text = "\n".join(out)
    atomic_write_text(out_md, text)
    return text
