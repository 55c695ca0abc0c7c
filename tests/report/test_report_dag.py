"""Which report jobs a run plans: with user CIFs Fig. 3, the funnel, one figure directory and one
dispersion job per candidate, and no generation figures; the HTML report's categories."""

from __future__ import annotations

import re

import pytest

from workflow_helpers import SHARED, run_snakemake


@pytest.fixture(scope="module")
def cif_dir_run(tmp_path_factory):
    from pymatgen.core import Lattice, Structure

    wd = tmp_path_factory.mktemp("report_dag")
    cifs = wd / "cifs"
    cifs.mkdir()
    Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cifs / "Nb-bcc.cif"))
    Structure(Lattice.cubic(2.86), ["Al"], [[0, 0, 0]]).to(filename=str(cifs / "Al-sc.cif"))
    cfg = {"data": {"mirror": str(SHARED)}, "candidates": {"source": "cif_dir", "path": str(cifs)}}
    run_snakemake(wd, cfg, "--cores", "2", "results/candidates", "results/data/manifest.json")
    return wd, cfg


def test_cif_dir_plans_the_figures_that_apply(cif_dir_run):
    wd, cfg = cif_dir_run
    out = run_snakemake(wd, cfg, "-n", "--quiet", "rules").stdout
    jobs = {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M)}
    assert jobs["figure_tc"] == 1 and jobs["figure_funnel"] == 1 and jobs["report"] == 1
    assert jobs["figure_candidate"] == 2 and jobs["dft_dispersion"] == 2
    assert "figure_periodic_table" not in jobs and "figure_structures" not in jobs


def test_dispersion_waits_for_tc_and_the_report_for_the_figures(cif_dir_run):
    wd, cfg = cif_dir_run
    dot = run_snakemake(wd, cfg, "--rulegraph").stdout
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}
    assert {("dft_tc", "dft_dispersion"), ("dft_q2r", "dft_dispersion"), ("dft_dispersion", "figure_candidate"),
            ("dft_matdyn", "figure_candidate"), ("figure_candidate", "report"), ("figure_tc", "report"),
            ("figure_funnel", "report"), ("aggregate", "figure_tc")} <= edges
    assert ("dft_dispersion", "dft_tc") not in edges and ("dft_dispersion", "aggregate") not in edges
