"""What the figure rules of ``rules/report.smk`` run: files of the run in, figures out.

Run level (``results/report/figures/``): Fig. 1b and Fig. 2 (only when the candidates were
generated), Fig. 3 and the funnel. Per candidate (``results/report/figures/candidates/<id>/``,
written as a whole: a staging directory renamed on success): ``eliashberg`` (α²F with λ(ω), the
phonon DOS, λ(σ)) for a candidate whose DFT ended ``ok``, ``dispersion`` also for a dynamically
unstable one (its imaginary branches), and always
``figures.json``: which figures are there, and why any is absent. Every figure is PNG + SVG.
"""

from __future__ import annotations

from pathlib import Path

from tcflow.io import atomic_dir, atomic_write_json, read_json

#: the per-candidate record of what was drawn
CANDIDATE_RECORD = "figures.json"


def _read_csv(path):
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={"id": str})
    except pd.errors.EmptyDataError:  # aggregate writes an empty file when no candidate reached DFT
        return pd.DataFrame()


def periodic_table(samples_csv, threshold_K: float, out_prefix) -> dict:
    """Fig. 1b from ``results/generate/samples.csv`` (formula, pred_tc_K)."""
    from tcflow.report.figures import fig_periodic_table

    s = _read_csv(samples_csv)
    return fig_periodic_table(s["formula"], s["pred_tc_K"], threshold_K, out_prefix)


def structures(samples_csv, train_csv, out_prefix) -> dict:
    """Fig. 2: the samples' CIF files (``cif`` column: paths) against the training split (``cif``: text)."""
    from tcflow.report.figures import fig_structures, stats_from_cifs

    return fig_structures(stats_from_cifs(_read_csv(samples_csv)["cif"]),
                          stats_from_cifs(_read_csv(train_csv)["cif"]), out_prefix)


def tc(train_csv, summary_csv, out_prefix, samples_csv=None) -> dict:
    """Fig. 3: training Tc (K), the samples' predicted Tc when generated, the DFT candidates."""
    from tcflow.report.figures import fig_tc

    summary = _read_csv(summary_csv)
    samples = _read_csv(samples_csv)["pred_tc_K"] if samples_csv else None
    rows = summary.to_dict("records") if len(summary) else []
    return fig_tc(_read_csv(train_csv)["tc_K"], samples, rows, out_prefix)


def funnel(summary_csv, candidates_csv, tc_min_K: float, out_prefix, screened_csv=None) -> dict:
    """The funnel (:func:`tcflow.report.funnel.funnel`) and why structures stopped: the screen's
    reasons and the DFT statuses other than ok (``DFT: <status>``)."""
    from tcflow.report.figures import fig_funnel
    from tcflow.report.funnel import dft_reasons, funnel as stages_of, screen_reasons

    summary = _read_csv(summary_csv)
    screened = _read_csv(screened_csv) if screened_csv else None
    stages = stages_of(summary, tc_min_K, screened, len(_read_csv(candidates_csv)))
    reasons = (screen_reasons(screened) if screened is not None else []) + \
        [(f"DFT: {r}", n) for r, n in dft_reasons(summary)]
    return fig_funnel(stages, reasons, out_prefix)


def candidate(cid: str, tc_json, matdyn_dir, dispersion_dir, out_dir) -> dict:
    """The figures of one candidate into ``out_dir`` and its :data:`CANDIDATE_RECORD`:
    ``{"status", "figures": {name: source files}, "absent": {name: reason}}``."""
    from tcflow.report.figures import fig_candidate, fig_dispersion

    tc_rec = read_json(tc_json)
    record: dict = {"id": cid, "status": tc_rec["status"], "figures": {}, "absent": {}}
    with atomic_dir(out_dir) as tmp:
        if tc_rec["status"] != "ok":
            record["absent"]["eliashberg"] = f"DFT status {tc_rec['status']!r} ({tc_json}): no Tc, no α²F figure"
        else:
            fig_candidate(cid, tc_rec, matdyn_dir, tmp / "eliashberg")
            record["figures"]["eliashberg"] = [str(tc_json), str(matdyn_dir)]
        disp = Path(dispersion_dir) / "dispersion.json"
        drec = read_json(disp) if disp.is_file() else {"status": "no dispersion.json"}
        if drec["status"] == "ok":
            fig_dispersion(Path(dispersion_dir) / drec["flfrq"], tmp / "dispersion",
                           title=f"{cid}: phonon dispersion (matdyn.x from q2r's force constants)"
                           + ("; dynamically unstable" if tc_rec["status"] == "dynamically_unstable" else ""),
                           path_info=drec)
            record["figures"]["dispersion"] = [str(disp), str(Path(dispersion_dir) / drec["flfrq"])]
        else:
            record["absent"]["dispersion"] = f"rule dft_dispersion: {drec.get('reason') or drec['status']} ({disp})"
        atomic_write_json(tmp / CANDIDATE_RECORD, record)
    return record
