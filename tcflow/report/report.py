"""The final Markdown report and the collated provenance file.

``report.md`` states, for the run it describes: where the data came from, what each stage
produced (generation metrics, the funnel with the failure reasons and their counts, DFT
outcomes, novelty), Table 1 (the DFT-verified candidates by Tc), the figures, and which analyses
are not part of this run. Every number is read from a file under ``results/`` named next to it.
"""

from __future__ import annotations

import math
from pathlib import Path

from tcflow.io import atomic_path, atomic_write_json, atomic_write_text, read_json
from tcflow.provenance import package_versions

#: Columns shown in the report's table (others stay in candidates.csv).
TABLE_COLUMNS = ("id", "formula", "natoms", "status", "tc_K", "lambda", "omega_log_K", "novelty", "matched_id",
                 "duplicate_of")
#: Table 1 (the paper's): column -> header; E_form and E_hull in eV/atom
TABLE1_COLUMNS = {"formula": "formula", "id": "id", "tc_K": "Tc (K)", "e_form_eV_atom": "E_form (eV/atom)",
                  "e_hull_eV_atom": "E_hull (eV/atom)", "lambda": "λ", "omega_log_K": "ω_log (K)",
                  "novelty": "novelty"}
ENERGY_COLUMNS = ("e_form_eV_atom", "e_hull_eV_atom")
NA = "n/a"
#: generation metrics shown in the report: key path in metrics.json -> (label, kind)
METRICS = (
    ("n_samples", "samples", "int"), ("struct_validity", "structural validity", "pct"),
    ("comp_validity", "compositional validity", "pct"), ("cov_recall", "COV-R", "pct"),
    ("cov_precision", "COV-P", "pct"), ("wdist_density_g_cm3", "density W-distance (g/cm³)", "num"),
    ("wdist_num_elements", "element-count W-distance", "num"), ("fraction_not_P1", "not P1", "pct"),
    ("tc.pred_tc_latent_start_K_mean", "predicted Tc of the starting latents, mean (K)", "num"),
    ("tc.pred_tc_latent_K_mean", "predicted Tc of the optimised latents, mean (K)", "num"),
    ("tc.pred_tc_decoded_K_mean", "predicted Tc of the decoded crystals, mean (K)", "num"),
)


def _fmt(v, na: str = "") -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return na if v != v else f"{v:.3g}"  # NaN -> blank (or n/a)
    return na if v is None else str(v)


def markdown_table(df, columns=TABLE_COLUMNS, headers: dict | None = None, na: str = "") -> str:
    cols = [c for c in columns if c in df.columns]
    heads = [(headers or {}).get(c, c) for c in cols]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c], na) for c in cols) + " |")
    return "\n".join(lines)


def rows_table(header: tuple, rows) -> str:
    """A Markdown table from a header and rows of already formatted cells."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _metric(metrics: dict, path: str):
    v = metrics
    for k in path.split("."):
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def metrics_rows(metrics: dict) -> list[tuple[str, str]]:
    """(label, formatted value) for the :data:`METRICS` present in ``metrics``."""
    rows = []
    for path, label, kind in METRICS:
        v = _metric(metrics, path)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        text = f"{int(v)}" if kind == "int" else f"{100 * v:.1f} %" if kind == "pct" else f"{v:.3g}"
        rows.append((label, text))
    return rows


def table1(summary):
    """The DFT-verified candidates (status ok, with a Tc), highest Tc first, with the Table 1
    columns; E_form / E_hull are NaN where the run has none (never filled in)."""
    import pandas as pd

    if not len(summary) or "tc_K" not in summary.columns:
        return pd.DataFrame(columns=list(TABLE1_COLUMNS))
    ok = summary[(summary["status"].astype(str) == "ok") & summary["tc_K"].notna()].copy()
    for c in TABLE1_COLUMNS:
        if c not in ok.columns:
            ok[c] = float("nan") if c in ENERGY_COLUMNS else None
    return ok.sort_values("tc_K", ascending=False, kind="stable")[list(TABLE1_COLUMNS)]


def collate_versions(results_dir: str | Path, out_json: str | Path) -> dict:
    """Gather every ``metadata.json`` under ``results_dir`` into one file keyed by its path."""
    results_dir = Path(results_dir)
    records = {str(p.relative_to(results_dir)): read_json(p) for p in sorted(results_dir.rglob("metadata.json"))}
    out = {"report_versions": package_versions(), "stages": records}
    atomic_write_json(out_json, out)
    return out




def write_table1(summary, out_csv: str | Path, out_md: str | Path) -> str:
    """Table 1 as CSV (empty cells where a value is not computed) and Markdown (``n/a``)."""
    t = table1(summary)
    text = table1_markdown(t)
    with atomic_path(out_csv) as tmp:
        t.to_csv(tmp, index=False)
    atomic_write_text(out_md, text + "\n")
    return text


def table1_markdown(t) -> str:
    if not len(t):
        return "No candidate finished DFT with status ok: Table 1 is empty."
    text = markdown_table(t, tuple(TABLE1_COLUMNS), TABLE1_COLUMNS, na=NA)
    if t[list(ENERGY_COLUMNS)].isna().all().all():
        text += ("\n\nE_form and E_hull: n/a — this run computes no DFT formation energies (the elemental "
                 "references and competing phases are not part of tcflow yet); no value is filled in.")
    return text


def _read_csv(path):
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={"id": str})
    except pd.errors.EmptyDataError:  # no candidate reached DFT: aggregate wrote no columns
        return pd.DataFrame()


def _figure_lines(figures: dict[str, str], out_md: Path) -> list[str]:
    lines = []
    for caption, path in figures.items():
        p = Path(path)
        if p.is_file():
            rel = p.relative_to(out_md.parent) if p.is_relative_to(out_md.parent) else p
            lines += [f"![{caption}]({rel.as_posix()})", "", f"*{caption}* (`{p.as_posix()}`)", ""]
    return lines


def write_report(out_md: str | Path, summary_csv: str | Path, manifest_json: str | Path,
                 rejected_csv: str | Path, config: dict, screened_csv: str | Path | None = None,
                 metrics_json: str | Path | None = None, candidates_csv: str | Path | None = None,
                 table1_csv: str | Path | None = None, table1_md: str | Path | None = None,
                 funnel_csv: str | Path | None = None, figures: dict[str, str] | None = None) -> str:
    """Write ``report.md`` (and, when their paths are given, Table 1 as CSV/Markdown and the
    funnel as CSV); return the report's text. ``figures``: caption -> image path to embed."""
    import pandas as pd

    from tcflow.report.funnel import dft_reasons, funnel, screen_reasons
    from tcflow.report.novelty import CLASSES

    out_md = Path(out_md)
    summary = _read_csv(summary_csv)
    manifest = read_json(manifest_json)
    rejected = pd.read_csv(rejected_csv)
    tc_min = float(config["report"]["tc_min_K"])
    out = ["# tcflow report", ""]
    out += ["## Data", "", f"Source: `{manifest['origin']}` (`{manifest_json}`); "
            f"{len(manifest['elements'])} elements, {len(manifest['excluded'])} rows excluded.", "",
            rows_table(("split", "rows"), [(k, v["rows"]) for k, v in manifest["splits"].items()]), ""]
    screened = None
    if config["candidates"]["source"] == "generate":
        out += ["## Generation", ""]
        if metrics_json and Path(metrics_json).exists():
            rows = metrics_rows(read_json(metrics_json))
            out += [f"CDVAE samples (`{metrics_json}`; all keys there):", "",
                    rows_table(("metric", "value"), rows), ""]
        if screened_csv and Path(screened_csv).exists():
            screened = pd.read_csv(screened_csv, dtype={"id": str})
            scfg = config["screen"]
            out += ["## Screen", "", f"Method `{scfg['method']}`: predicted Tc > {scfg['tc_min_K']} K, at most "
                    f"{scfg['max_atoms']} atoms" + (", structurally and compositionally valid" if scfg["require_valid"] else "")
                    + (f", the top {scfg['top_k']} by predicted Tc" if scfg.get("top_k") else "")
                    + f"; {int(screened['passed'].sum())} of {len(screened)} samples passed (`{screened_csv}`).", ""]
            reasons = screen_reasons(screened)
            if reasons:
                out += ["Why the others stopped (first failed criterion):", "",
                        rows_table(("reason", "samples"), reasons), ""]
    else:
        out += ["## Candidates", "", f"User structures from `{config['candidates']['path']}`.", ""]
    n_cand = len(_read_csv(candidates_csv)) if candidates_csv and Path(candidates_csv).exists() else None
    stages = funnel(summary, tc_min, screened, n_cand, {"screened": str(screened_csv), "summary": str(summary_csv),
                                                        "candidates": str(candidates_csv)})
    out += ["## Funnel", "", rows_table(("stage", "count", "from"), [(r["stage"], r["count"], f"`{r['source']}`")
                                                                      for r in stages]), ""]
    if funnel_csv:
        with atomic_path(funnel_csv) as tmp:
            pd.DataFrame(stages).to_csv(tmp, index=False)
    out += ["## DFT (Quantum ESPRESSO electron-phonon)", ""]
    if len(summary):
        out += [rows_table(("status", "candidates"), [(s, int(n)) for s, n in summary["status"].value_counts().items()]), ""]
        bad = dft_reasons(summary)
        if bad:
            out += ["Status other than ok: " + ", ".join(f"{r} ({n})" for r, n in bad) + ".", ""]
        hits = summary[(summary["status"] == "ok") & (summary["tc_K"] >= tc_min)]
        out += [f"{len(hits)} candidate(s) with status ok and Tc ≥ {tc_min:g} K. Tc from the Allen–Dynes formula "
                f"(μ* of the DFT protocol); every candidate in `{summary_csv}`, per-broadening data in "
                "`results/dft/<id>/tc.json`.", "", markdown_table(summary), ""]
        if "novelty" in summary.columns:
            counts = {c: int((summary["novelty"] == c).sum()) for c in CLASSES}
            dups = int(summary["duplicate_of"].notna().sum()) if "duplicate_of" in summary.columns else 0
            out += ["Novelty (pymatgen StructureMatcher against the JARVIS-SC splits and any reference set): "
                    + ", ".join(f"{c} {n}" for c, n in counts.items()) + f"; {dups} duplicate(s) within the run.", ""]
    else:
        out += ["No candidate reached the DFT stage.", ""]
    if len(rejected):
        out += ["Inputs rejected before DFT:", ""] + [f"- `{r.id}`: {r.reason}" for r in rejected.itertuples()] + [""]
    t1 = table1(summary)
    out += ["## Table 1: DFT-verified candidates by Tc", ""]
    if table1_csv and table1_md:
        write_table1(summary, table1_csv, table1_md)
        out += [f"(`{table1_csv}`)", ""]
    out += [table1_markdown(t1), ""]
    if figures:
        fig_lines = _figure_lines(figures, out_md)
        if fig_lines:
            out += ["## Figures", ""] + fig_lines
    missing = ["the phonon dispersion along a high-symmetry path"]
    if not len(t1) or t1[list(ENERGY_COLUMNS)].isna().all().all():
        missing.insert(0, "DFT formation energy and energy above hull (E_form, E_hull in Table 1 are n/a)")
    text = "; ".join(missing)
    out += ["## Not part of this run", "", text[0].upper() + text[1:] + ".", ""]
    text = "\n".join(out)
    atomic_write_text(out_md, text)
    return text
