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


# --- the geometry of a relax / vc-relax output (no ASE: relax_geometry) ---------------------------
RELAX_OK = FIX / "pw_walltime" / "pw_relax_ok.out"


def _start(species=("Al",)):
    from tcflow.dft.cell import Cell

    return Cell(lattice=((0.0, 2.0, 2.0), (2.0, 0.0, 2.0), (2.0, 2.0, 0.0)), species=species,
                frac_coords=((0.0, 0.0, 0.0),))


def test_relax_geometry_is_the_final_coordinates_of_a_finished_vc_relax():
    from tcflow.dft.outputs import relax_geometry

    cell = relax_geometry(RELAX_OK.read_text(), _start())
    # "Begin final coordinates": CELL_PARAMETERS (angstrom), then the final scf (line 627)
    assert cell.lattice == ((0.0, 2.005007538, 2.005007538), (2.005007538, 0.0, 2.005007538),
                            (2.005007538, 2.005007538, 0.0))
    assert cell.species == ("Al",) and cell.frac_coords == ((0.0, 0.0, 0.0),)


def test_relax_geometry_of_a_stopped_run_is_its_last_scf_and_none_before_the_first():
    from tcflow.dft.outputs import relax_geometry

    text = RELAX_OK.read_text()
    cut = text[:text.index("Begin final coordinates")]           # stopped during the BFGS steps
    last_scf = cut.rindex("!    total energy")
    cards = [i for i in range(len(cut)) if cut.startswith("CELL_PARAMETERS", i) and i < last_scf]
    expect = cut[cards[-1]:].splitlines()[1:4]
    cell = relax_geometry(cut, _start())
    assert cell.lattice == tuple(tuple(float(x) for x in row.split()) for row in expect)
    first = text[:text.index("!    total energy") + 40]          # one scf: the input geometry
    assert relax_geometry(first, _start()) == _start()
    assert relax_geometry(text[:text.index("!    total energy")], _start()) is None


def test_relax_geometry_reads_bohr_alat_and_cartesian_cards():
    from tcflow.dft.outputs import BOHR_A, relax_geometry

    text = RELAX_OK.read_text()
    ref = relax_geometry(text, _start())
    a = 2.005007538
    # the same final cell written in the other units pw.x can print (alat = 7.5 bohr here)
    for header, rows in (("CELL_PARAMETERS (bohr)", a / BOHR_A), ("CELL_PARAMETERS (alat=  7.50000000)", a / BOHR_A / 7.5)):
        card = f"{header}\n   0.0 {rows:.12f} {rows:.12f}\n   {rows:.12f} 0.0 {rows:.12f}\n   {rows:.12f} {rows:.12f} 0.0\n"
        alt = text.replace(text[text.index("CELL_PARAMETERS (angstrom)\n   0.000000000   2.005007538"):
                                text.index("ATOMIC_POSITIONS (crystal)\nAl            0.0000000000        0.0000000000"
                                           "        0.0000000000\nEnd final")], card + "\n")
        got = relax_geometry(alt, _start())
        assert [x for r in got.lattice for x in r] == pytest.approx([x for r in ref.lattice for x in r], abs=1e-9)
    # Cartesian positions (angstrom): a site at (a, a, 0) Å is the cell's third vector, fractional (0, 0, 1)
    two = text.replace("ATOMIC_POSITIONS (crystal)\nAl            0.0000000000        0.0000000000        0.0000000000\nEnd",
                       f"ATOMIC_POSITIONS (angstrom)\nAl 0.0 0.0 0.0\nAl {a} {a} 0.0\nEnd")
    got = relax_geometry(two, _start(("Al", "Al")))
    assert got.species == ("Al", "Al")
    assert got.frac_coords[1] == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)
    with pytest.raises(ValueError, match=r"ATOMIC_POSITIONS \(furlong\)"):
        relax_geometry(text.replace("ATOMIC_POSITIONS (crystal)", "ATOMIC_POSITIONS (furlong)"), _start())
