"""tc.json assembly and the stability gate, on the step records of a real Al pipeline run."""

import json
import shutil
from pathlib import Path

import pytest

from tcflow.dft import steps
from tcflow.dft.outputs import parse_matdyn_freq

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def cand(tmp_path):
    d = tmp_path / "al"
    shutil.copytree(FIX / "al_records", d)
    return d


def _edit(path: Path, **changes):
    rec = json.loads(path.read_text())
    rec.update(changes)
    path.write_text(json.dumps(rec))


def test_tc_from_real_records(cand):
    tc = steps.step_tc("al", cand, cand / "tc.json")
    assert tc["status"] == "ok" and tc["n_irr_q"] == 8
    assert tc["sigma_ry"] == 0.01 and tc["broadening_converged"] is True
    assert tc["tc_K"] > 0 and tc["lambda"] == tc["table"][1]["matdyn"]["lambda"]
    assert json.loads((cand / "tc.json").read_text())["status"] == "ok"


def test_unstable_keeps_numbers(cand):
    _edit(cand / "matdyn/matdyn.json", dynamically_stable=False, min_freq_cm1=-80.0)
    tc = steps.step_tc("al", cand, cand / "tc.json")
    assert tc["status"] == "dynamically_unstable" and tc["lambda"] is not None and tc["min_freq_cm1"] == -80.0


def test_first_failed_step_names_the_status(cand):
    _edit(cand / "scf_fit/scf_fit.json", status="insulator")
    for name in ("scf/scf.json", "ph_init/qpoints.json", "ph/ph.json", "q2r/q2r.json", "matdyn/matdyn.json",
                 "lambda/lambda.json"):
        (cand / name).write_text(json.dumps({"status": "insulator", "skipped": True}))
    tc = steps.step_tc("al", cand, cand / "tc.json")
    assert tc["status"] == "insulator" and tc["lambda"] is None and tc["table"] == []


def test_gamma_exclusion_in_stability_check():
    from pymatgen.core import Structure

    s = Structure.from_file(str(FIX / "al_records/relax/relaxed.json"))
    q, f = parse_matdyn_freq(FIX / "ok/matdyn.freq")
    assert min(min(x) for x in f) == pytest.approx(0.0, abs=1.0)  # acoustic modes at Γ
    low = steps._min_freq_outside_gamma(s, q, f, 0.1)
    assert 20.0 < low < 200.0  # Al: all modes away from Γ are real and positive
    assert steps._min_freq_outside_gamma(s, q, f, 0.0) == pytest.approx(min(min(x) for x in f))


def test_repair_of_qe67_elph_recover_files(tmp_path):
    # excerpt (first k-point) of an elph.<iq>.<irr>.xml written by QE 6.7 ph.x before a kill
    shutil.copy(FIX / "recover/elph.8.1.xml", tmp_path / "elph.8.1.xml")
    assert steps.repair_elph_recover_files(tmp_path) == 1
    import xml.etree.ElementTree as ET

    root = ET.parse(tmp_path / "elph.8.1.xml").getroot()
    assert root.find("PARTIAL_EL_PHON/NUMBER_OF_K").text.strip() == "87"
    assert root.find("PARTIAL_EL_PHON/K_POINT.1/PARTIAL_ELPH") is not None
    assert steps.repair_elph_recover_files(tmp_path) == 0  # idempotent
