"""Parsers and run classification against frozen real QE outputs (one folder per outcome)."""

from pathlib import Path

import pytest

from tcflow.dft import outputs as qo
from workflow_helpers import SHARED

FIX = Path(__file__).parent / "fixtures"
AL_REF = SHARED / "reference" / "qe_test_suite_ph_metal_al"


@pytest.mark.parametrize("path, code", [
    ("ok/pw_ok.out", "ok"),
    ("ok/ph_ok.out", "ok"),
    ("scf_not_converged/pw_scf_not_converged.out", "scf_not_converged"),
    ("relax_not_converged/pw_relax_not_converged.out", "relax_not_converged"),
    ("walltime/ph_walltime.out", "walltime"),
    ("interrupted/ph_killed.out", "interrupted"),
    ("qe_error/pw_qe_error.out", "qe_error"),
])
def test_classify_frozen_outputs(path, code):
    got, reason = qo.classify((FIX / path).read_text())
    assert got == code
    assert (reason == "") == (code == "ok")


def test_error_block_names_routine():
    assert qo.error_block((FIX / "qe_error/pw_qe_error.out").read_text()).startswith("readpp: file ")


def test_parse_pw_scalars():
    r = qo.parse_pw((FIX / "ok/pw_ok.out").read_text())
    assert r["qe_version"].startswith("6.7")
    assert r["n_sym_ops"] == 48 and r["scf_iterations"] > 0
    assert r["total_energy_ry"] < 0 and r["fermi_energy_eV"] > 0 and r["qe_wall_s"] > 0


def test_metallicity_from_xml():
    al = qo.band_gap_from_xml(FIX / "ok/al_metal.xml")
    si = qo.band_gap_from_xml(FIX / "insulator/si_insulator.xml")
    assert al["gap_eV"] == 0.0 and al["n_crossing_bands"] >= 1
    assert si["n_crossing_bands"] == 0 and 0.3 < si["gap_eV"] < 1.2  # PBEsol Si, coarse grid


def test_dyn_files():
    d = qo.parse_dyn0(FIX / "ok/dyn0")
    assert d["qgrid"] == [2, 2, 2] and d["n_irr_q"] == 3 and len(d["qpoints"]) == 3
    assert qo.dyn_star_size(FIX / "ok/dyn2") == 4  # L point of fcc: star of 4 (with -q)
    assert len(qo.dyn_frequencies_cm1(FIX / "ok/dyn2")) == 3


def test_matdyn_lambda_file_and_lambda_x_output():
    md = qo.parse_matdyn_lambda(AL_REF / "reference_matdyn_lambda_file_qe6.7.txt")
    assert len(md) == 10 and md[0] == {"sigma_ry": 0.005, "lambda": 0.2035, "n_ef": 1.3392, "omega_log_K": 813.0227}
    lx = qo.parse_lambda_x((AL_REF / "benchmark.out.git.inp=lambda.in.args=5").read_text())
    assert len(lx) == 10
    assert lx[1]["lambda"] == 0.434897 and lx[1]["omega_log_K"] == 352.859 and lx[1]["tc_K_lambda_x"] == 2.311
    assert lx[-1]["sigma_ry"] == 0.05


def test_wall_time_units():
    assert qo._qe_time("1m23.50s") == pytest.approx(83.5)
    assert qo._qe_time("1h 2m") == pytest.approx(3720)


def test_lambda_x_nan_omega_log():
    # bcc Nb, jarvis protocol: a Γ acoustic mode not > 0 makes lambda.x print NaN for <log w> and T_c
    rows = qo.parse_lambda_x((FIX / "lambda_nan/lambda_nb.out").read_text())
    assert len(rows) == 10 and rows[1]["lambda"] == 1.357725
    assert rows[1]["omega_log_K"] is None and rows[1]["tc_K_lambda_x"] is None and rows[1]["lambda_alt"] is None


def test_matdyn_a2f_dos_file(tmp_path):
    # fcc Al (jarvis protocol), broadening 7 of 10: 50 bins of 6.07e-5 Ry, three modes
    a = qo.parse_a2f_dos(FIX / "al_jarvis/matdyn/a2F.dos7")
    assert len(a["omega_ry"]) == len(a["a2f"]) == len(a["a2f_modes"]) == 50
    assert all(len(m) == 3 for m in a["a2f_modes"])
    assert a["lambda"] == pytest.approx(0.4908850, abs=1e-6)
    assert a["omega_ry"][0] == pytest.approx(a["delta_ry"] / 2, rel=1e-4)   # bin centres
    assert sum(a["a2f_modes"][20]) == pytest.approx(a["a2f"][20], rel=1e-4)
    bad = tmp_path / "a2F.dos1"
    bad.write_text(" # Eliashberg function a2F (per both spin)\n")
    with pytest.raises(ValueError, match=r"a2F.dos1: no a2F table"):
        qo.parse_a2f_dos(bad)
