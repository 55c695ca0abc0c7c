"""The figure rules' glue (tcflow.report.figjobs), the energy columns merged from hull.csv, the
report's figure and "Not part of this run" sections, and the terminal summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from tcflow.report import figjobs
from tcflow.report.aggregate import HULL_COLUMNS, merge_hull
from tcflow.report.report import table1, table1_markdown, write_report
from tcflow.report.summary import summary_lines

FIX = Path(__file__).parent / "fixtures"
AL = FIX / "al_run" / "results" / "dft" / "al"
DISP = Path(__file__).parents[1] / "dft" / "fixtures" / "al_dispersion" / "dispersion"
HULL = FIX / "hull.csv"


def _pngs(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.png"))


def test_candidate_figures_ok(tmp_path):
    rec = figjobs.candidate("al", AL / "tc.json", AL / "matdyn", DISP, tmp_path / "al")
    assert _pngs(tmp_path / "al") == ["dispersion.png", "eliashberg.png"]
    assert sorted(p.name for p in (tmp_path / "al").glob("*.svg")) == ["dispersion.svg", "eliashberg.svg"]
    assert rec["absent"] == {} and json.loads((tmp_path / "al" / "figures.json").read_text()) == rec
    assert not list(tmp_path.glob(".al.*"))  # the staging directory was renamed


def test_candidate_without_dispersion_or_not_ok(tmp_path):
    disp = tmp_path / "disp"
    disp.mkdir()
    (disp / "dispersion.json").write_text(json.dumps({"status": "failed: matdyn.x: error: readfc"}))
    rec = figjobs.candidate("al", AL / "tc.json", AL / "matdyn", disp, tmp_path / "a")
    assert _pngs(tmp_path / "a") == ["eliashberg.png"]
    assert rec["absent"] == {"dispersion": f"rule dft_dispersion: failed: matdyn.x: error: readfc ({disp / 'dispersion.json'})"}

    tc = {**json.loads((AL / "tc.json").read_text()), "status": "insulator"}
    (tmp_path / "tc.json").write_text(json.dumps(tc))
    rec = figjobs.candidate("si", tmp_path / "tc.json", AL / "matdyn", disp, tmp_path / "si")
    assert _pngs(tmp_path / "si") == [] and rec["figures"] == {}
    assert rec["absent"]["eliashberg"] == f"DFT status 'insulator' ({tmp_path / 'tc.json'}): no Tc, no α²F figure"


def test_unstable_candidate_gets_its_dispersion_only(tmp_path):
    tc = {**json.loads((AL / "tc.json").read_text()), "status": "dynamically_unstable"}
    (tmp_path / "tc.json").write_text(json.dumps(tc))
    rec = figjobs.candidate("x", tmp_path / "tc.json", AL / "matdyn", DISP, tmp_path / "x")
    assert _pngs(tmp_path / "x") == ["dispersion.png"] and list(rec["figures"]) == ["dispersion"]
    assert rec["absent"] == {"eliashberg": f"DFT status 'dynamically_unstable' ({tmp_path / 'tc.json'}): no Tc, no α²F figure"}


def _run_files(tmp_path: Path) -> dict:
    """A small run: a training split, two candidates (one ok), the checkpoint's table, samples."""
    nb = Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    (tmp_path / "nb.cif").write_text(nb.to(fmt="cif"))
    pd.DataFrame({"material_id": ["J1", "J2"], "tc_K": [9.2, 1.0], "formula": ["Nb", "Nb"], "natoms": [2, 2],
                  "cif": [nb.to(fmt="cif")] * 2}).to_csv(tmp_path / "train.csv", index=False)
    tc = json.loads((AL / "tc.json").read_text())
    pd.DataFrame([{"id": "al", "formula": "Al", "status": "ok", "tc_K": tc["tc_K"], "lambda": tc["lambda"],
                   "omega_log_K": tc["omega_log_K"]},
                  {"id": "si", "formula": "Si", "status": "insulator", "tc_K": None}]).to_csv(tmp_path / "summary.csv", index=False)
    pd.DataFrame({"id": ["al", "si"], "formula": ["Al", "Si"], "natoms": [1, 2]}).to_csv(tmp_path / "cands.csv", index=False)
    pd.DataFrame({"id": ["s0", "s1"], "cif": [str(tmp_path / "nb.cif")] * 2, "formula": ["Nb", "NbC"],
                  "pred_tc_K": [7.0, 2.0]}).to_csv(tmp_path / "samples.csv", index=False)
    pd.DataFrame({"id": ["s0", "s1"], "passed": [True, False], "reason": ["", "predicted Tc 2.0 K <= 5.0 K"]}).to_csv(
        tmp_path / "screened.csv", index=False)
    return {"tc": tc}


def test_run_figures(tmp_path):
    tc = _run_files(tmp_path)["tc"]
    got = figjobs.tc(tmp_path / "train.csv", tmp_path / "summary.csv", tmp_path / "f3")  # user CIFs: no samples
    assert got["tc_vs_lambda"] == [[tc["lambda"], tc["tc_K"]]]
    got = figjobs.funnel(tmp_path / "summary.csv", tmp_path / "cands.csv", 1.0, tmp_path / "fun")
    assert got["stages"] == [2, 2, 1, 1] and got["reasons"] == [1]  # DFT: insulator
    got = figjobs.funnel(tmp_path / "summary.csv", tmp_path / "cands.csv", 1.0, tmp_path / "fun2",
                         screened_csv=tmp_path / "screened.csv")
    assert got["stages"] == [2, 1, 2, 2, 1, 1] and got["reasons"] == [1, 1]
    got = figjobs.periodic_table(tmp_path / "samples.csv", 5.0, tmp_path / "pt")
    assert got == {"C": (1, 0.0), "Nb": (2, 0.5)}
    got = figjobs.structures(tmp_path / "samples.csv", tmp_path / "train.csv", tmp_path / "f2")
    assert got["formula_types_generated"][0] == 1.0 and got["formula_types_training"][0] == 1.0
    for stem in ("f3", "fun", "fun2", "pt", "f2"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000 and (tmp_path / f"{stem}.svg").is_file()


def test_merge_hull_by_id():
    df = pd.DataFrame({"id": ["nb3ge", "al", "x"], "formula": ["Nb3Ge", "Al", "X"], "tc_K": [20.0, 1.0, None]})
    out = merge_hull(df, HULL)
    assert list(out["id"]) == ["nb3ge", "al", "x"] and list(out["formula"]) == ["Nb3Ge", "Al", "X"]
    assert all(c in out.columns for c in HULL_COLUMNS)
    assert out.loc[1, "e_hull_eV_atom"] == 0.0 and out.loc[0, "mlip_e_hull_eV_atom"] == 0.012
    assert pd.isna(out.loc[0, "e_form_eV_atom"]) and out.loc[0, "hull_status"].startswith("failed: no elemental")
    assert out.loc[2, list(HULL_COLUMNS)].isna().all()  # no row in hull.csv: empty, never filled in


def test_merge_hull_refuses_duplicates(tmp_path):
    (tmp_path / "h.csv").write_text(HULL.read_text() + HULL.read_text().splitlines()[1] + "\n")
    with pytest.raises(ValueError, match="more than one row for id al"):
        merge_hull(pd.DataFrame({"id": ["al"]}), tmp_path / "h.csv")


def test_table1_energy_columns_and_reasons():
    summary = pd.DataFrame({"id": ["al", "nb3ge", "x"], "formula": ["Al", "Nb3Ge", "X"], "status": ["ok"] * 3,
                            "tc_K": [1.0, 20.0, 3.0], "lambda": [0.4, 1.5, 0.5], "omega_log_K": [300.0, 200.0, 100.0]})
    text = table1_markdown(table1(summary))
    assert "| E_form (eV/atom) | E_hull (eV/atom) | E_hull, MLIP, lower bound (eV/atom) |" in text
    assert "| Al | al | 1 | n/a | n/a | n/a |" in text and "energy stage is not part of this run" in text
    text = table1_markdown(table1(merge_hull(summary, HULL)))
    assert text.index("| Nb3Ge") < text.index("| Al")  # by Tc
    assert "| Al | al | 1 | 0 | 0 | 0 |" in text and "| Nb3Ge | nb3ge | 20 | n/a | n/a | 0.012 |" in text
    assert "`nb3ge`: E_form/E_hull n/a — hull_status `failed: no elemental reference for Ge`" in text
    assert "`x`: E_form/E_hull n/a — no row in `results/energy/hull.csv`." in text
    assert "`x`: MLIP E_hull n/a" in text and "`al`:" not in text
    assert "The MLIP E_hull is a lower bound" in text


def _report(tmp_path, summary: pd.DataFrame, figures: Path, source: str = "cif_dir") -> str:
    (tmp_path / "manifest.json").write_text(json.dumps({"origin": "mirror:x", "elements": ["Al"], "excluded": [],
                                                        "splits": {"train": {"rows": 2}}}))
    pd.DataFrame(columns=["id", "reason"]).to_csv(tmp_path / "rejected.csv", index=False)
    summary.to_csv(tmp_path / "summary.csv", index=False)
    config = {"report": {"tc_min_K": 1.0}, "candidates": {"source": source, "path": "cifs"}}
    return write_report(tmp_path / "report" / "report.md", tmp_path / "summary.csv", tmp_path / "manifest.json",
                        tmp_path / "rejected.csv", config, figures_dir=figures)


def test_report_figures_and_what_is_absent(tmp_path):
    figs = tmp_path / "report" / "figures"
    figjobs.candidate("al", AL / "tc.json", AL / "matdyn", DISP, figs / "candidates" / "al")
    tc = {**json.loads((AL / "tc.json").read_text()), "status": "insulator"}
    (tmp_path / "si.json").write_text(json.dumps(tc))
    (tmp_path / "si_disp").mkdir()  # what dft_dispersion records for a candidate without force constants
    (tmp_path / "si_disp" / "dispersion.json").write_text(json.dumps(
        {"status": "insulator", "skipped": True, "reason": "DFT status 'insulator' (results/dft/si/tc.json): no dispersion"}))
    figjobs.candidate("si", tmp_path / "si.json", AL / "matdyn", tmp_path / "si_disp", figs / "candidates" / "si")
    shutil.copy(figs / "candidates" / "al" / "eliashberg.png", figs / "fig3_tc.png")  # stands in for Fig. 3 here
    summary = pd.DataFrame({"id": ["al", "si"], "formula": ["Al", "Si"], "status": ["ok", "insulator"],
                            "tc_K": [1.2, None], "lambda": [0.4, None], "omega_log_K": [300.0, None]})
    text = _report(tmp_path, summary, figs)
    assert "![Fig. 3: Tc distributions" in text and "(figures/fig3_tc.png)" in text and "figures/funnel.png" not in text
    assert "](figures/candidates/al/dispersion.png)" in text and "](figures/candidates/al/eliashberg.png)" in text
    assert "### Candidate `si` (DFT status insulator)" in text and "- no dispersion figure: rule dft_dispersion: DFT status 'insulator'" in text
    absent = text.split("## Not part of this run")[1]
    assert "energy stage" in absent and "Fig. 1b and Fig. 2" in absent and "dispersion" not in absent

    text = _report(tmp_path, merge_hull(summary, HULL), figs, source="generate")
    absent = text.split("## Not part of this run")[1]
    assert "Nothing: every analysis of tcflow is part of this run." in absent


def test_summary_lines(tmp_path):
    rep = tmp_path / "report"
    rep.mkdir()
    assert "No report yet" in summary_lines(tmp_path)[0]
    pd.DataFrame([{"stage": "candidates sent to DFT", "count": 2, "source": "x"},
                  {"stage": "DFT Tc ≥ 1 K", "count": 1, "source": "y"}]).to_csv(rep / "funnel.csv", index=False)
    pd.DataFrame([{"formula": "Nb3Ge", "id": "nb3ge", "tc_K": 20.123, "e_form_eV_atom": None, "e_hull_eV_atom": None,
                   "lambda": 1.5, "omega_log_K": 200.0}]).to_csv(rep / "table1.csv", index=False)
    lines = summary_lines(tmp_path)
    assert lines[1].split() == ["candidates", "sent", "to", "DFT", "2"]
    best = next(ln for ln in lines if ln.strip().startswith("nb3ge"))
    assert " ".join(best.split()) == "nb3ge Nb3Ge Tc 20.12 K λ 1.500 ω_log 200 K E_hull n/a"
    assert any(ln.startswith("Report:") and "report.md" in ln for ln in lines)
