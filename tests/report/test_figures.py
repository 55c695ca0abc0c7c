"""Every figure renders from small fixture data (the fcc Al records of a real QE run) and plots
the numbers it was given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tcflow.report import figures as F
from tcflow.report.funnel import funnel, reason_category, screen_reasons

AL = Path(__file__).parent / "fixtures" / "al_run" / "results" / "dft" / "al"


def _check(prefix: Path):
    png, svg = prefix.with_suffix(".png"), prefix.with_suffix(".svg")
    assert png.stat().st_size > 1000 and svg.stat().st_size > 1000
    w, h = Image.open(png).size
    assert w > 300 and h > 200
    assert svg.read_text().lstrip().startswith("<?xml")


def test_candidate_figure(tmp_path):
    tc = json.loads((AL / "tc.json").read_text())
    got = F.fig_candidate("al", tc, AL / "matdyn", tmp_path / "al")
    _check(tmp_path / "al")
    # the cumulative lambda of the chosen broadening ends at the value matdyn prints in a2F.dos2
    assert tc["broadening_index"] == 1 and got["lambda_file"] == pytest.approx(0.40109783459817)
    assert got["lambda_cumulative"][-1] == pytest.approx(got["lambda_file"], rel=1e-3)
    assert got["lambda_matdyn"] == [r["matdyn"]["lambda"] for r in tc["table"]]
    assert got["chosen_sigma_ry"] == tc["sigma_ry"] == 0.01
    w, dos = F.read_phonon_dos(AL / "matdyn" / "phonon.dos")
    assert np.allclose(got["dos"], dos) and np.allclose(got["dos_meV"], w * F.MEV_PER_CM1)


def test_dispersion_from_flfrq(tmp_path):
    q, f = F.read_flfrq(AL / "matdyn" / "matdyn.freq")
    assert q.shape == (47, 3) and f.shape == (47, 3) and f[1].tolist() == [47.2836, 47.2836, 83.6434]
    got = F.fig_dispersion(AL / "matdyn" / "matdyn.freq", tmp_path / "d")
    _check(tmp_path / "d")
    assert np.allclose(got["branches_meV"][2], f[:, 2] * F.MEV_PER_CM1)


def test_generation_figures(tmp_path):
    import pandas as pd
    from pymatgen.core import Lattice, Structure

    formulas = ["NbC", "NbC", "MgB2", "Nb"]
    pred = [4.0, 2.0, 10.0, 3.5]
    got = F.fig_periodic_table(formulas, pred, 3.0, tmp_path / "pt")
    _check(tmp_path / "pt")
    assert got == {"B": (1, 1.0), "C": (2, 0.5), "Mg": (1, 1.0), "Nb": (3, pytest.approx(2 / 3))}

    nb = Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nbc = Structure(Lattice.cubic(4.47), ["Nb"] * 4 + ["C"] * 4,
                    [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]])
    gen = F.stats_from_cifs([nb.to(fmt="cif"), nbc.to(fmt="cif"), "not a cif"])
    assert gen.shape == (2, 3) and gen[0, 1] == pytest.approx(nb.density)
    got = F.fig_structures(gen, F.stats_from_cifs([nbc.to(fmt="cif")]), tmp_path / "f2")
    _check(tmp_path / "f2")
    assert got["formula_types_generated"][:2] == [0.5, 0.5] and got["formula_types_training"][1] == 1.0

    tc = json.loads((AL / "tc.json").read_text())
    got = F.fig_tc([1.0, 5.0, 9.0], pred, [{"id": "al", **tc}, {"id": "x", "status": "insulator"}], tmp_path / "f3")
    _check(tmp_path / "f3")
    assert got["lambda_vs_omega_log"] == [[tc["omega_log_K"], tc["lambda"]]]

    screened = pd.DataFrame({"passed": [True, False, False, False],
                             "reason": ["", "predicted Tc 3.21 K <= 5.0 K", "predicted Tc 1.5 K <= 5.0 K", "natoms 9 > 4"]})
    reasons = screen_reasons(screened)
    assert reasons == [("predicted Tc ≤ 5.0 K", 2), ("more than 4 atoms", 1)]
    assert reason_category("not in top 1 by predicted Tc") == "not in top 1 by predicted Tc"
    stages = funnel(pd.DataFrame([{"status": "ok", "tc_K": 1.5}]), 1.0, screened, 1)
    assert [s["count"] for s in stages] == [4, 1, 1, 1, 1, 1]
    got = F.fig_funnel(stages, reasons, tmp_path / "fun")
    _check(tmp_path / "fun")
    assert got["stages"] == [4, 1, 1, 1, 1, 1] and got["reasons"] == [2, 1]


DISP = Path(__file__).parents[1] / "dft" / "fixtures" / "al_dispersion"


def test_dispersion_with_path_labels(tmp_path):
    rec = json.loads((DISP / "dispersion" / "dispersion.json").read_text())
    got = F.fig_dispersion(DISP / "dispersion" / "matdyn.freq", tmp_path / "disp", title="al", path_info=rec)
    _check(tmp_path / "disp")
    assert got["tick_labels"] == ["Γ", "X", "W", "K", "Γ", "L", "U", "W", "L", "K|U", "X"]
    assert got["segments"] == 2 and got["x"] == pytest.approx(rec["x_per_A"])
    _, f = F.read_flfrq(DISP / "dispersion" / "matdyn.freq")
    assert np.allclose(got["branches_meV"][2], f[:, 2] * F.MEV_PER_CM1)
    assert "Γ" in (tmp_path / "disp.svg").read_text() or "K|U" in (tmp_path / "disp.svg").read_text()
    with pytest.raises(ValueError, match="401 q-points, the path record has 3"):
        F.fig_dispersion(DISP / "dispersion" / "matdyn.freq", tmp_path / "bad", path_info={**rec, "x_per_A": [0, 1, 2]})
