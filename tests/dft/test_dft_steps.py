"""tc.json assembly and the stability gate, on the step records of a real Al pipeline run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tcflow.dft.steps import phwork, post
from tcflow.dft.steps import tc as tc_step
from tcflow.dft.cell import Cell
from tcflow.dft.chain import chain, q_chunks
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
    tc = tc_step.step_tc("al", cand, cand / "tc.json")
    assert tc["status"] == "ok" and tc["n_irr_q"] == 8
    assert tc["sigma_ry"] == 0.01 and tc["broadening_converged"] is True
    assert tc["tc_K"] > 0 and tc["lambda"] == tc["table"][1]["matdyn"]["lambda"]
    assert json.loads((cand / "tc.json").read_text())["status"] == "ok"


def test_unstable_keeps_numbers(cand):
    _edit(cand / "matdyn/matdyn.json", dynamically_stable=False, min_freq_cm1=-80.0)
    tc = tc_step.step_tc("al", cand, cand / "tc.json")
    assert tc["status"] == "dynamically_unstable" and tc["lambda"] is not None and tc["min_freq_cm1"] == -80.0


def test_first_failed_step_names_the_status(cand):
    _edit(cand / "scf_fit/scf_fit.json", status="insulator")
    for name in ("scf/scf.json", "ph_init/qpoints.json", "ph/ph.json", "q2r/q2r.json", "matdyn/matdyn.json",
                 "lambda/lambda.json"):
        (cand / name).write_text(json.dumps({"status": "insulator", "skipped": True}))
    tc = tc_step.step_tc("al", cand, cand / "tc.json")
    assert tc["status"] == "insulator" and tc["lambda"] is None and tc["table"] == []


def test_gamma_exclusion_in_stability_check():
    s = Cell.read(FIX / "al_records/relax/relaxed.json")
    q, f = parse_matdyn_freq(FIX / "ok/matdyn.freq")
    assert min(min(x) for x in f) == pytest.approx(0.0, abs=1.0)  # acoustic modes at Γ
    low = post.min_freq_outside_gamma(s, q, f, 0.1)
    assert 20.0 < low < 200.0  # Al: all modes away from Γ are real and positive
    assert post.min_freq_outside_gamma(s, q, f, 0.0) == pytest.approx(min(min(x) for x in f))


def _finished_q5(work: Path) -> None:
    """q-point 5 of the fcc-Al case as ph.x (QE 6.7) leaves it: dyn5, elph.inp_lambda.5 (real
    files) and one a2Fq2r.<50+i>.5 per broadening (placeholders: only their count and that they
    are not empty are checked)."""
    (work / "elph_dir").mkdir(parents=True)
    shutil.copy(FIX / "ph_q5/dyn5", work / "dyn5")
    shutil.copy(FIX / "ph_q5/elph.inp_lambda.5", work / "elph_dir/elph.inp_lambda.5")
    for i in range(1, 11):
        (work / f"elph_dir/a2Fq2r.{50 + i}.5").write_text("a2F\n")


def test_q_point_complete_only_when_every_file_is_whole(tmp_path):
    _finished_q5(tmp_path)
    assert phwork.q_point_complete(tmp_path, 5, n_sigma=10)
    assert not phwork.q_point_complete(tmp_path, 4, n_sigma=10)
    dyn = tmp_path / "dyn5"
    text = dyn.read_text()
    dyn.write_text(text[: text.rindex("freq (    3)")])  # killed while writing the frequencies
    assert not phwork.q_point_complete(tmp_path, 5, n_sigma=10)
    dyn.write_text(text)
    (tmp_path / "elph_dir/a2Fq2r.60.5").unlink()
    assert not phwork.q_point_complete(tmp_path, 5, n_sigma=10)
    (tmp_path / "elph_dir/a2Fq2r.60.5").write_text("")  # cut to nothing (a full disk, a kill)
    assert not phwork.q_point_complete(tmp_path, 5, n_sigma=10)
    (tmp_path / "elph_dir/a2Fq2r.60.5").write_text("a2F\n")
    lam = tmp_path / "elph_dir/elph.inp_lambda.5"
    lam.write_text("\n".join(lam.read_text().splitlines()[:30]))
    assert not phwork.q_point_complete(tmp_path, 5, n_sigma=10)


def test_discard_partial_q_leaves_other_q_points(tmp_path):
    _finished_q5(tmp_path)
    phsave = tmp_path / phwork.PHSAVE
    phsave.mkdir(parents=True)
    for name in ("dynmat.5.1.xml", "elph.5.1.xml", "dynmat.4.1.xml", "status_run.xml"):
        (phsave / name).write_text("x")
    (tmp_path / "out/_ph0/tcflow.q_5").mkdir()
    phwork.discard_partial_q(tmp_path, 5)
    assert not (tmp_path / "dyn5").exists() and not list((tmp_path / "elph_dir").iterdir())
    assert sorted(p.name for p in phsave.iterdir()) == ["dynmat.4.1.xml"]
    assert not (tmp_path / "out/_ph0/tcflow.q_5").exists()


def test_cell_reads_structure_json_like_pymatgen():
    from pymatgen.core import Structure

    path = FIX / "al_records/relax/relaxed.json"
    s, c = Structure.from_file(str(path)), Cell.read(path)
    assert c.species == tuple(site.specie.symbol for site in s) and len(c) == len(s)
    assert np.allclose(c.lattice, s.lattice.matrix) and np.allclose(c.frac_coords, s.frac_coords)
    assert c.kinds == ["Al"]


def test_qe_inputs_identical_from_cell_and_from_pymatgen():
    from pymatgen.core import Lattice, Structure

    from tcflow.dft import inputs as qi
    from tcflow.dft.protocol import get_protocol

    s = Structure(Lattice.hexagonal(3.1, 3.5), ["Mg", "B", "B"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]])
    p = get_protocol("fast", {})
    kw = dict(calculation="scf", proto=p, cutoffs={"ecutwfc_ry": 30, "ecutrho_ry": 240}, kgrid=[6, 6, 4],
              pseudo_dir="/p", pseudos={"Mg": "Mg.upf", "B": "B.upf"})
    cell = Cell.from_structure(s)
    assert qi.pw_input(cell, **kw) == qi.pw_input(s, **kw)
    masses = {"Mg": 24.305, "B": 10.811}
    assert qi.ph_input(cell, proto=p, qgrid=[3, 3, 2], masses=masses) == qi.ph_input(s, proto=p, qgrid=[3, 3, 2])
    with pytest.raises(KeyError, match="no atomic mass for B"):
        qi.matdyn_input(cell, p, masses={"Mg": 24.305})


def test_disordered_cell_is_refused():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(3.0), [{"Al": 0.5, "Cu": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        Cell.from_dict(s.as_dict())


@pytest.mark.parametrize("n_irr_q,n_jobs,expected", [
    (8, 8, [(i, i) for i in range(1, 9)]),
    (8, 3, [(1, 3), (4, 6), (7, 8)]),
    (10, 4, [(1, 3), (4, 6), (7, 8), (9, 10)]),
    (3, 5, [(1, 1), (2, 2), (3, 3), (4, 3), (4, 3)]),  # two jobs with no q-point left
    (3, 1, [(1, 3)]),
])
def test_q_chunks_share_every_q_point_once(n_irr_q, n_jobs, expected):
    chunks = q_chunks(n_irr_q, n_jobs)
    assert chunks == expected
    assert [iq for first, last in chunks for iq in range(first, last + 1)] == list(range(1, n_irr_q + 1))
    sizes = [last - first + 1 for first, last in chunks]
    assert max(sizes) - min(sizes) <= 1


#: the dft_experiment `converged` fcc Pb run (q 6x6x6, k 12x12x12, 2 cores): ph.x's k-points and
#: wall seconds at each of its 16 irreducible q-points, in QE's order
PB_NK = [72, 728, 728, 378, 588, 1872, 1872, 1872, 1020, 588, 1872, 1020, 326, 1872, 1752, 1020]
PB_WALL_S = [39.8, 258.3, 241.3, 128.6, 211.5, 785.6, 811.4, 799.7, 361.2, 214.6, 786.6, 365.2, 115.3, 835.2, 717.0,
             370.5]


def _slowest(chunks, walls):
    return max(sum(walls[first - 1:last]) for first, last in chunks)


@pytest.mark.parametrize("n_jobs", [2, 4, 8])
def test_q_chunks_by_kpoints_shorten_the_slowest_job_of_a_real_run(n_jobs):
    by_number = q_chunks(16, n_jobs)
    by_work = q_chunks(16, n_jobs, PB_NK)
    assert [iq for first, last in by_work for iq in range(first, last + 1)] == list(range(1, 17))
    assert all(last >= first for first, last in by_work)  # every job gets a q-point
    ideal = max(sum(PB_WALL_S) / n_jobs, max(PB_WALL_S))
    # measured walls: by number the slowest job is 1.07 / 1.48 / 1.83 x the ideal share (the mean,
    # or the slowest single q-point); by k-points 1.03 / 1.12 / 1.32 (contiguous blocks)
    assert _slowest(by_work, PB_WALL_S) <= {2: 1.0, 4: 0.8, 8: 0.75}[n_jobs] * _slowest(by_number, PB_WALL_S)
    assert _slowest(by_work, PB_WALL_S) <= 1.35 * ideal


def test_q_chunks_by_cost_are_optimal_among_contiguous_splits():
    import itertools
    import random

    rng = random.Random(3)
    for _ in range(200):
        n, jobs = rng.randint(2, 9), rng.randint(2, 5)
        costs = [rng.randint(1, 20) for _ in range(n)]
        chunks = q_chunks(n, jobs, costs)
        assert [iq for a, b in chunks for iq in range(a, b + 1)] == list(range(1, n + 1))
        assert len(chunks) == jobs
        got = max(sum(costs[a - 1:b]) for a, b in chunks)
        best = min(max(sum(costs[a:b]) for a, b in zip((0, *cuts), (*cuts, n)))
                   for cuts in itertools.combinations(range(1, n), min(jobs, n) - 1))
        assert got == best
        if n >= jobs:
            assert all(b >= a for a, b in chunks)


def test_q_chunks_refuse_costs_of_another_length():
    with pytest.raises(ValueError, match="3 costs for 4 q-points"):
        q_chunks(4, 2, [1, 2, 3])


def test_q_chunks_refuse_zero_jobs():
    with pytest.raises(ValueError, match="dft.ph_jobs must be >= 1"):
        q_chunks(8, 0)


def test_resume_point_keeps_finished_q_points_across_runs(tmp_path):
    work = tmp_path / "ph_q/2.work"
    assert phwork.resume_point(work, 5, 6, n_sigma=10) == ([], 5, 6)  # nothing run yet
    _finished_q5(work / "run1")
    (work / "run1/dyn6").write_text("killed mid-q\n")  # q-point 6 was cut by the kill
    assert phwork.resume_point(work, 5, 6, n_sigma=10) == ([5], 6, 6)
    assert phwork.q_source(work, 5, 10) == work / "run1" and phwork.q_source(work, 6, 10) is None
    _finished_q5(work / "run2")  # a later run that redid q-point 5 is preferred
    assert phwork.q_source(work, 5, 10) == work / "run2"
    assert [d.name for d in phwork.segments(work)] == ["run1", "run2"]


@pytest.fixture
def al_jarvis(tmp_path):
    d = tmp_path / "al"
    shutil.copytree(FIX / "al_jarvis", d)
    return d


def test_tc_json_reports_three_formulas_and_keeps_the_papers_tc(al_jarvis):
    before = json.loads((al_jarvis / "tc_before.json").read_text())
    tc = tc_step.step_tc("al", al_jarvis, al_jarvis / "tc.json")
    # the paper's formula and choice are unchanged: σ = 0.035 Ry, λ = 0.4875, Tc = 3.06 K (issue 13)
    assert tc["tc_formula"] == "mcmillan_allen_dynes" and tc["sigma_ry"] == 0.035
    assert tc["tc_K"] == before["tc_K"] == tc["tc_mcmillan_allen_dynes_K"]
    assert tc["a2f"]["file"] == "matdyn/a2F.dos7" and tc["a2f"]["lambda"] == pytest.approx(0.49089, abs=1e-5)
    # f1 f2 from the table's λ and the α²F shape (ω̄2/ω_log = 307.5/279.8 K): +2.0 %
    assert tc["allen_dynes_f1"] == pytest.approx(1.0178, abs=1e-4) and tc["allen_dynes_f2"] == pytest.approx(1.0022, abs=1e-4)
    assert tc["tc_allen_dynes_f1f2_K"] == pytest.approx(tc["tc_K"] * tc["allen_dynes_f1"] * tc["allen_dynes_f2"])
    assert tc["tc_eliashberg_K"] == pytest.approx(2.962, abs=2e-3)
    assert tc["eliashberg"]["mustar_cutoff"] == pytest.approx(0.1373, abs=1e-4) and tc["mustar"] == 0.1
    assert json.loads((al_jarvis / "tc.json").read_text())["tc_eliashberg_K"] == tc["tc_eliashberg_K"]


@pytest.mark.parametrize("formula, key", [("allen_dynes_f1f2", "tc_allen_dynes_f1f2_K"),
                                          ("eliashberg", "tc_eliashberg_K")])
def test_tc_formula_names_what_tc_k_is(al_jarvis, formula, key):
    rec = json.loads((al_jarvis / "structure/structure.json").read_text())
    rec["protocol"]["tc_formula"] = formula
    (al_jarvis / "structure/structure.json").write_text(json.dumps(rec))
    tc = tc_step.step_tc("al", al_jarvis, al_jarvis / "tc.json")
    assert tc["tc_formula"] == formula and tc["tc_K"] == tc[key] and tc["tc_K"] != tc["tc_mcmillan_allen_dynes_K"]


def test_missing_a2f_leaves_the_mcmillan_tc(cand):
    # the al_records fixture keeps no a2F.dos files
    tc = tc_step.step_tc("al", cand, cand / "tc.json")
    assert tc["tc_K"] == tc["tc_mcmillan_allen_dynes_K"] > 0
    assert tc["tc_eliashberg_K"] is None and tc["tc_allen_dynes_f1f2_K"] is None
    assert tc["a2f_error"].endswith("a2F.dos2: no such file (matdyn.x writes one a2F.dos<i> per broadening)")


def test_second_grid_steps_only_in_two_grid_chains():
    names = [s.name for s in chain(1, second_grid=True)]
    assert names[-4:] == ["scf_fit2", "elph2", "q2r2", "matdyn2"]
    assert not {"scf_fit2", "elph2", "q2r2", "matdyn2"} & {s.name for s in chain(4)}


def test_a2f_bins_at_negative_frequency_are_left_out(al_jarvis):
    """matdyn.x bins the small imaginary acoustic frequencies near Γ that the stability gate
    tolerates at ω < 0 (fcc Pb with `converged`); they are dropped, not a reason to give up f1 f2
    and Eliashberg."""
    ref = tc_step.step_tc("al", al_jarvis, al_jarvis / "tc.json")
    path = al_jarvis / "matdyn" / "a2F.dos7"
    lines = path.read_text().splitlines(keepends=True)
    first = next(i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#"))
    neg = ["  -0.480120E-04    0.192840E-03    0.188740E-03    0.410065E-05    0.000000E+00\n",
           "  -0.163231E-04    0.419877E-02    0.290914E-02    0.128963E-02    0.000000E+00\n"]
    path.write_text("".join(lines[:first] + neg + lines[first:]))
    tc = tc_step.step_tc("al", al_jarvis, al_jarvis / "tc.json")
    assert "a2f_error" not in tc and tc["a2f"]["nonpositive_bins_dropped"] == 2
    assert tc["tc_eliashberg_K"] == pytest.approx(ref["tc_eliashberg_K"], rel=1e-9)
    assert tc["tc_allen_dynes_f1f2_K"] == pytest.approx(ref["tc_allen_dynes_f1f2_K"], rel=1e-9)
