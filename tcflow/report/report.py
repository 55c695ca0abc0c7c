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
TABLE_COLUMNS = ("id", "formula", "natoms", "status", "tc_K", "lambda", "omega_log_K", "converged", "novelty",
                 "matched_id", "duplicate_of")
#: Table 1 (the paper's): column -> header; E_form and E_hull in eV/atom
TABLE1_COLUMNS = {"formula": "formula", "id": "id", "tc_K": "Tc (K)", "e_form_eV_atom": "E_form (eV/atom)",
                  "e_hull_eV_atom": "E_hull (eV/atom)", "mlip_e_hull_eV_atom": "E_hull, MLIP, lower bound (eV/atom)",
                  "lambda": "λ", "omega_log_K": "ω_log (K)", "converged": "λ converged", "novelty": "novelty"}
ENERGY_COLUMNS = ("e_form_eV_atom", "e_hull_eV_atom", "mlip_e_hull_eV_atom")
HULL_CSV = "results/energy/hull.csv"
#: hull.csv columns Table 1 keeps after its own (why an energy is n/a, how the energies were computed)
ENERGY_NOTE_COLUMNS = ("hull_status", "hull_label", "mlip_label")
#: run-level figures: file stem under the figures directory -> caption
RUN_FIGURES = {
    "fig1b_periodic_table": "Fig. 1b: per element, fraction of generated samples with predicted Tc above the screen threshold",
    "fig2_structures": "Fig. 2: formula types, density and packing fraction, generated vs training",
    "fig3_tc": "Fig. 3: Tc distributions; λ vs ω_log and Tc vs λ of the DFT candidates",
    "funnel": "Funnel: structures per stage and why the others stopped",
}
CANDIDATE_FIGURES = {"eliashberg": "α²F(ω) with λ(ω), phonon DOS, λ(σ) with the chosen broadening",
                     "dispersion": "phonon dispersion along the standard high-symmetry path"}
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
    columns (and :data:`ENERGY_NOTE_COLUMNS` when the energy stage ran); E_form / E_hull are NaN
    where the run has none (never filled in)."""
    import pandas as pd

    if not len(summary) or "tc_K" not in summary.columns:
        return pd.DataFrame(columns=list(TABLE1_COLUMNS))
    ok = summary[(summary["status"].astype(str) == "ok") & summary["tc_K"].notna()].copy()
    for c in TABLE1_COLUMNS:
        if c not in ok.columns:
            ok[c] = float("nan") if c in ENERGY_COLUMNS else None
    notes = [c for c in ENERGY_NOTE_COLUMNS if c in ok.columns]  # the energies' provenance and status
    return ok.sort_values("tc_K", ascending=False, kind="stable")[list(TABLE1_COLUMNS) + notes]


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


def table1_markdown(t, hull_csv: str | Path = HULL_CSV) -> str:
    """Table 1 in Markdown, ``n/a`` where a value is missing, and below it the reason of each
    ``n/a`` energy: the energy stage not in the run, or the candidate's row in ``hull_csv``."""
    if not len(t):
        return "No candidate finished DFT with status ok: Table 1 is empty."
    text = markdown_table(t, tuple(TABLE1_COLUMNS), TABLE1_COLUMNS, na=NA)
    return "\n\n".join([text, *energy_notes(t, hull_csv)])


def energy_notes(t, hull_csv: str | Path = HULL_CSV) -> list[str]:
    """Why an E_form / E_hull / MLIP E_hull cell of Table 1 ``t`` is ``n/a`` (one line per case)."""
    if "hull_status" not in t.columns and "mlip_label" not in t.columns:
        return ["E_form, E_hull and the MLIP E_hull: n/a — the energy stage is not part of this run "
                "(config energy.enabled is false, no `results/energy/hull.csv`); no value is filled in."]
    notes = []
    for _, row in t.iterrows():
        dft_na = [c for c in ENERGY_COLUMNS[:2] if _missing(row.get(c))]
        if dft_na:
            why = row.get("hull_status")
            why = f"hull_status `{why}`" if not _missing(why) else "no row"
            notes.append(f"`{row['id']}`: E_form/E_hull n/a — {why} in `{hull_csv}`.")
        if _missing(row.get("mlip_e_hull_eV_atom")):
            lab = row.get("mlip_label")
            notes.append(f"`{row['id']}`: MLIP E_hull n/a — no MLIP value in `{hull_csv}`"
                         + (f" (mlip_label `{lab}`)." if not _missing(lab) else "."))
    labels = {str(v) for c in ("hull_label", "mlip_label") if c in t.columns for v in t[c].dropna()}
    if labels:
        notes.append("Energies computed with: " + "; ".join(f"`{lab}`" for lab in sorted(labels))
                     + f" (`{hull_csv}`). The MLIP E_hull is a lower bound, not a DFT value.")
    return notes


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


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
            lines += [f"![{caption}]({rel.as_posix()})", "", f"*{caption}* (`{p.as_posix()}`, SVG next to it)", ""]
    return lines


def figure_section(figures_dir: str | Path, out_md: Path, generated: bool) -> tuple[list[str], list[str]]:
    """The report's figures under ``figures_dir`` (run level, then per candidate from each
    ``candidates/<id>/figures.json``): (Markdown lines, what is absent from the whole run)."""
    figures_dir = Path(figures_dir)
    run = {cap: figures_dir / f"{stem}.png" for stem, cap in RUN_FIGURES.items()}
    lines = _figure_lines(run, out_md)
    absent = [] if generated else [
        "Fig. 1b and Fig. 2 (they describe generated samples; the candidates are user CIFs, "
        "candidates.source: cif_dir)"]
    records = [read_json(p) for p in sorted((figures_dir / "candidates").glob("*/figures.json"))]
    for rec in records:
        cdir = figures_dir / "candidates" / rec["id"]
        lines += [f"### Candidate `{rec['id']}` (DFT status {rec['status']})", ""]
        lines += _figure_lines({f"{rec['id']}: {cap}": cdir / f"{stem}.png" for stem, cap in CANDIDATE_FIGURES.items()
                                if stem in rec["figures"]}, out_md)
        lines += [f"- no {stem} figure: {why}" for stem, why in rec["absent"].items()]
        lines += [""] if rec["absent"] else []
    if records and not any("dispersion" in r["figures"] for r in records):
        absent.append("the phonon dispersion (no candidate has one; reasons under Figures)")
    return lines, absent


def write_report(out_md: str | Path, summary_csv: str | Path, manifest_json: str | Path,
                 rejected_csv: str | Path, config: dict, screened_csv: str | Path | None = None,
                 metrics_json: str | Path | None = None, candidates_csv: str | Path | None = None,
                 table1_csv: str | Path | None = None, table1_md: str | Path | None = None,
                 funnel_csv: str | Path | None = None, figures_dir: str | Path | None = None) -> str:
    """Write ``report.md`` (and, when their paths are given, Table 1 as CSV/Markdown and the
    funnel as CSV); return the report's text. ``figures_dir``: the figure rules' directory
    (``results/report/figures``), embedded with relative links."""
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
            cut = (f"predicted Tc > {scfg['tc_min_K']} K" if scfg.get("tc_recall_target") is None else
                   f"predicted Tc above the cut calibrated for recall {scfg['tc_recall_target']:g} of Tc > "
                   f"{scfg['tc_min_K']} K on the validation split (`results/screen/tc_calibration.json`)")
            out += ["## Screen", "", f"Method `{scfg['method']}`: {cut}, at most "
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
    missing = []
    if figures_dir:
        fig_lines, missing = figure_section(figures_dir, out_md, config["candidates"]["source"] == "generate")
        out += ["## Figures", ""] + fig_lines
    if "hull_status" not in summary.columns and "mlip_label" not in summary.columns:
        missing.insert(0, "DFT formation energy and energy above the hull, and the MLIP hull (the energy stage: "
                          "config energy.enabled is false; E_form, E_hull in Table 1 are n/a)")
    out += ["## Not part of this run", ""]
    out += [f"- {m}." for m in missing] if missing else ["Nothing: every analysis of tcflow is part of this run."]
    out += [""]
    text = "\n".join(out)
    atomic_write_text(out_md, text)
    return text
