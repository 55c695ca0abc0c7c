"""The report's phonon dispersion (rule dft_dispersion): the high-symmetry path in the cell's own
reciprocal lattice, matdyn.x's input, and the step on the records of a real fcc Al run (a real
matdyn.x run from its q2r force constants)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tcflow.dft import inputs as qi
from tcflow.dft.chain import BY_RULE, DISPERSION, chain
from tcflow.dft.kpath import high_symmetry_path
from tcflow.dft.outputs import parse_matdyn_freq
from tcflow.dft.runner import QE_BANNER, Launch
from tcflow.dft.stage import StepContext, run_step
from tcflow.dft.steps.dispersion import dispersion

FIX = Path(__file__).parent / "fixtures" / "al_dispersion"
A = 4.04  # fcc Al, Å


def _point(path: dict, label: str, lattice) -> np.ndarray:
    """Cartesian q (1/Å, 2π included) at the first tick named ``label``."""
    x = next(t[0] for t in path["ticks"] if t[1] == label)
    return path["frac"][int(np.argmin(abs(path["x"] - x)))] @ lattice.reciprocal_lattice.matrix


@pytest.mark.parametrize("kind", ["primitive", "conventional", "rotated"])
def test_fcc_path_in_the_cells_own_frame(kind):
    if kind == "conventional":
        s = Structure(Lattice.cubic(A), ["Al"] * 4, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    else:
        s = Structure(Lattice([[0, A / 2, A / 2], [A / 2, 0, A / 2], [A / 2, A / 2, 0]]), ["Al"], [[0, 0, 0]])
        if kind == "rotated":  # the same crystal turned by 30° about z: the path turns with it
            c, si = np.cos(np.pi / 6), np.sin(np.pi / 6)
            s = Structure(Lattice(s.lattice.matrix @ np.array([[c, -si, 0], [si, c, 0], [0, 0, 1]]).T), ["Al"], [[0, 0, 0]])
    p = high_symmetry_path(s)
    assert [t[1] for t in p["ticks"]] == ["Γ", "X", "W", "K", "Γ", "L", "U", "W", "L", "K|U", "X"]
    assert len(p["starts"]) == 2 and p["starts"][0] == 0  # two connected pieces: ...K, then U-X
    assert p["x"][p["starts"][1]] == pytest.approx(p["ticks"][-2][0]) == p["x"][p["starts"][1] - 1]
    g = 2 * np.pi / A
    assert np.linalg.norm(_point(p, "X", s.lattice)) == pytest.approx(g, rel=1e-6)       # X = 2π/a (1, 0, 0)
    assert np.linalg.norm(_point(p, "L", s.lattice)) == pytest.approx(g * 3 ** 0.5 / 2, rel=1e-6)
    assert np.linalg.norm(_point(p, "W", s.lattice)) == pytest.approx(g * 5 ** 0.5 / 2, rel=1e-6)
    assert np.all(np.diff(p["x"]) >= -1e-12) and p["x"][0] == 0.0
    # a q-point of the path is a lattice point of the cell's reciprocal lattice only at Γ (primitive cell)
    if kind != "conventional":
        assert np.allclose(p["frac"][0], 0) and not np.allclose(p["frac"][1], np.round(p["frac"][1]))


def test_path_input_for_matdyn():
    s = Structure(Lattice.cubic(A), ["Al"], [[0, 0, 0]])
    text = qi.matdyn_path_input(s, {"matdyn_asr": "simple"}, [[0, 0, 0], [0.5, 0, 0]], masses={"Al": 26.98})
    assert "q_in_cryst_coord = .true." in text and "amass(1) = 26.98" in text and "dos" not in text
    assert text.split("/\n")[1].split("\n")[:3] == ["2", "    0.000000000    0.000000000    0.000000000",
                                                     "    0.500000000    0.000000000    0.000000000"]


def test_dispersion_is_outside_the_chain():
    assert BY_RULE["dft_dispersion"] is DISPERSION
    assert all(DISPERSION not in chain(n) for n in (1, 4))


@pytest.fixture
def cand(tmp_path):
    d = tmp_path / "al"
    shutil.copytree(FIX, d, ignore=shutil.ignore_patterns("dispersion", "README.md"))
    return d


def _ctx(cand):
    return StepContext(step=DISPERSION, cid="al", cand=cand, final=cand / "dispersion", launch=Launch(mpi=""),
                       cfg={"min_free_disk_gb": 0})


@pytest.mark.qe
def test_dispersion_step_runs_matdyn(cand):
    if not shutil.which("matdyn.x"):
        pytest.skip("matdyn.x not installed")
    rec = run_step(_ctx(cand), dispersion)
    out = cand / "dispersion"
    assert rec["status"] == "ok" and rec["n_q"] == 401 and not (cand / ".dispersion.partial").exists()
    assert json.loads((out / "dispersion.json").read_text())["ticks"][1] == [pytest.approx(1.5589046, rel=1e-6), "X"]
    q, f = parse_matdyn_freq(out / "matdyn.freq")
    ref_q, ref_f = parse_matdyn_freq(FIX / "dispersion" / "matdyn.freq")  # the workflow's run
    assert np.allclose(q, ref_q) and np.allclose(f, ref_f, atol=1e-3)
    assert not (out / qi.FLFRC).exists()  # the force constants stay in q2r/
    # acoustic branches vanish at Γ, and fcc Al's X point: two TA at 18.6 meV, LA at 38.6 meV (this protocol)
    assert np.allclose(f[0], 0, atol=0.5)
    ix = int(np.argmin(abs(np.asarray(rec["x_per_A"]) - rec["ticks"][1][0])))
    assert f[ix] == pytest.approx([150.1, 150.1, 311.4], abs=1.0)


def test_dispersion_skipped_without_force_constants(cand):
    tc = json.loads((cand / "tc.json").read_text())
    (cand / "tc.json").write_text(json.dumps({**tc, "status": "insulator"}))
    rec = run_step(_ctx(cand), dispersion)
    assert rec == {"status": "insulator", "skipped": True,
                   "reason": "DFT status 'insulator' (results/dft/al/tc.json): no dispersion"}
    assert sorted(p.name for p in (cand / "dispersion").iterdir()) == ["dispersion.json"]


def test_matdyn_failure_is_recorded(cand, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "matdyn.x").write_text(f"#!/bin/sh\necho '{QE_BANNER} v.6.7'\necho ' Error in routine readfc (1):'\n"
                                     "echo ' file ifc.fc is broken'\nexit 1\n")
    (bindir / "matdyn.x").chmod(0o755)
    ctx = _ctx(cand)
    ctx.launch = Launch(mpi="", bin_dir=str(bindir))
    rec = run_step(ctx, dispersion)
    assert rec["status"].startswith("failed: matdyn.x:") and (cand / "dispersion" / "dispersion.json").is_file()
