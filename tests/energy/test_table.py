"""hull.csv rows from step records (no QE): E_form and E_hull by hand on a toy Nb-Al system, what
a failed reference, a failed phase, an insulator, a failed candidate, a mixed protocol or cutoff
or pseudopotential do to a row, and the MLIP columns."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from tcflow.dft.protocol import get_protocol
from tcflow.energy.steps import RY_EV
from tcflow.energy.table import HULL_COLUMNS, hull_row, hull_rows, write_hull

CUT = {"ecutwfc_ry": 25.0, "ecutrho_ry": 200.0}
PSEUDOS = {"Nb": "Nb.upf", "Al": "Al.upf"}
MU = {"Nb": -10.0, "Al": -3.0}  # eV/atom


def _chain(root, species, e_form, status="ok", proto=None, cutoffs=CUT, pseudos=PSEUDOS):
    """structure/, relax/ and scf_fit/ records of a cell with ``species`` whose energy is
    sum(mu) + N * e_form (eV)."""
    s = Structure(Lattice.cubic(3.0 * len(species)), species, [[i / len(species), 0, 0] for i in range(len(species))])
    for d in ("structure", "relax", "scf_fit"):
        (root / d).mkdir(parents=True)
    st = {"status": "ok", "protocol": proto or get_protocol("fast"), "cutoffs": cutoffs, "pseudo_dir": "/x/sssp",
          "pseudos": {el: pseudos[el] for el in set(species)}}
    (root / "structure" / "structure.json").write_text(json.dumps(st))
    (root / "relax" / "relaxed.json").write_text(s.to_json())
    energy = sum(MU[el] for el in species) + len(species) * e_form
    fit = {"status": status, "total_energy_ry": energy / RY_EV, "qe_version": "6.7MaX"}
    (root / "scf_fit" / "scf_fit.json").write_text(json.dumps(fit))


def _system(cid, phases, **kw):
    return {"id": cid, "formula": "", "ecut": "25-200", "phases": " ".join(phases), "excluded": "", "status": "ok", **kw}


@pytest.fixture
def tree(tmp_path):
    dft, ph = tmp_path / "dft", tmp_path / "phases" / "25-200"
    _chain(dft / "c1", ["Nb", "Al", "Al", "Al"], -0.30)
    _chain(dft / "c2", ["Nb", "Nb", "Nb", "Al"], -0.10, status="insulator")
    _chain(ph / "el-Nb", ["Nb", "Nb"], 0.0)
    _chain(ph / "el-Al", ["Al"], 0.0, status="insulator")
    _chain(ph / "J-NbAl", ["Nb", "Al"], -0.40)
    _chain(ph / "J-bad", ["Nb", "Al", "Al"], -1.0, status="failed: vc-relax: relax_not_converged: bfgs")
    return tmp_path


def _row(tree, system):
    return hull_row(system, tree / "dft", tree / "phases")


def test_hull_by_hand(tree):
    r1 = _row(tree, _system("c1", ["el-Al", "el-Nb", "J-NbAl", "J-bad"]))
    assert r1["hull_status"] == "ok" and r1["formula"] == "NbAl3"
    assert r1["e_form_eV_atom"] == pytest.approx(-0.30) and r1["e_hull_eV_atom"] == 0.0
    assert r1["hull_decomposition"] == "1 NbAl3" and r1["hull_n_phases"] == 3
    assert "J-bad left out (scf_fit: failed: vc-relax: relax_not_converged: bfgs)" in r1["hull_notes"]
    assert r1["hull_label"].startswith("QE 6.7MaX / sssp / protocol fast [") and "ecutwfc 25 Ry" in r1["hull_label"]
    # an insulating candidate still has an energy: Nb3Al is 0.10 eV/atom above the Nb--NbAl tie line
    r2 = _row(tree, _system("c2", ["el-Al", "el-Nb", "J-NbAl"]))
    assert r2["e_form_eV_atom"] == pytest.approx(-0.10) and r2["e_hull_eV_atom"] == pytest.approx(0.10)
    assert r2["hull_decomposition"] == "0.5 Nb + 0.5 NbAl"


def test_rows_that_cannot_be_computed_say_why(tree):
    ph = tree / "phases" / "25-200"
    _chain(tree / "dft" / "c3", ["Nb", "Al"], -0.2, status="failed: vc-relax: relax_not_converged: bfgs")
    assert _row(tree, _system("c3", ["el-Nb", "el-Al"]))["hull_status"] == \
        "candidate's scf_fit: failed: vc-relax: relax_not_converged: bfgs"
    _chain(ph / "el-Nb2", ["Nb"], 0.0, status="failed: scf_fit: scf_not_converged: convergence NOT achieved")
    r = _row(tree, _system("c1", ["el-Al", "el-Nb2"]))
    assert r["hull_status"] == "reference el-Nb2: scf_fit: failed: scf_fit: scf_not_converged: convergence NOT achieved"
    assert "e_form_eV_atom" not in r  # nothing filled in
    assert _row(tree, _system("c1", [], status="S: no ground-state structure"))["hull_status"] == \
        "S: no ground-state structure"
    _chain(ph / "J-other", ["Nb", "Al"], -0.5, proto=get_protocol("jarvis"))
    r = _row(tree, _system("c1", ["el-Al", "el-Nb", "J-other"]))
    assert r["hull_status"].startswith("refusing to mix energies of different methods")
    _chain(ph / "J-pp", ["Nb", "Al"], -0.5, pseudos={"Nb": "Nb_other.upf", "Al": "Al.upf"})
    assert _row(tree, _system("c1", ["el-Al", "el-Nb", "J-pp"]))["hull_status"] == \
        "mixed pseudopotentials: Nb: pseudopotential Nb.upf (c1) differs from Nb_other.upf (J-pp)"
    assert _row(tree, _system("c1", ["el-Al", "el-Nb"], ecut="30-240"))["hull_status"].startswith(
        "candidate's cutoffs {'ecutwfc_ry': 25.0, 'ecutrho_ry': 200.0} differ from the plan's")


def test_hull_csv_with_mlip_columns(tree):
    systems = tree / "systems.csv"
    pd.DataFrame([_system("c1", ["el-Al", "el-Nb", "J-NbAl"]), _system("c2", ["el-Al", "el-Nb", "J-NbAl"])]).to_csv(
        systems, index=False)
    mlip = tree / "mlip.csv"
    pd.DataFrame([{"id": "c1", "mlip_e_form_eV_atom": -0.25, "mlip_e_hull_eV_atom": 0.01, "mlip_label": "CHGNet x",
                   "mlip_status": "ok"},
                  {"id": "c2", "mlip_e_form_eV_atom": "", "mlip_e_hull_eV_atom": "", "mlip_label": "",
                   "mlip_status": "CHGNet relaxation: relaxation exploded"}]).to_csv(mlip, index=False)
    rows = hull_rows(systems, tree / "dft", tree / "phases", mlip)
    write_hull(rows, tree / "hull.csv")
    df = pd.read_csv(tree / "hull.csv")
    assert list(df.columns) == list(HULL_COLUMNS)
    assert df.loc[0, "mlip_e_form_eV_atom"] == pytest.approx(-0.25) and df.loc[0, "mlip_label"] == "CHGNet x"
    assert math.isnan(df.loc[1, "mlip_e_hull_eV_atom"])
    assert df.loc[1, "mlip_label"] == "none: CHGNet relaxation: relaxation exploded"
    assert df["e_form_eV_atom"].tolist() == pytest.approx([-0.30, -0.10])
    no_mlip = hull_rows(systems, tree / "dft", tree / "phases")
    assert no_mlip[0]["mlip_label"] == "none: energy.mlip is none"
