"""The DAG: a fast dry run at paper scale, the rule graph's edges, candidate selection at run
time, and rerunning single candidates."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from workflow_helpers import REPO, SHARED, run_snakemake

PAPER = REPO / "config" / "paper.yaml"

# Edges every run has up to the checkpoint (generate mode).
GENERATE_EDGES = {
    ("fetch_data", "prepare_data"),
    ("prepare_data", "train_cdvae"),
    ("train_cdvae", "sample_cdvae"),
    ("sample_cdvae", "merge_samples"),
    ("merge_samples", "screen"),
    ("screen", "candidates"),
    ("candidates", "aggregate"),
    ("prepare_data", "aggregate"),
    ("aggregate", "report"),
}


def rule_edges(dot: str) -> set[tuple[str, str]]:
    """(upstream rule, downstream rule) pairs from snakemake's --rulegraph dot output."""
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.M))
    return {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M)}


def test_paper_dry_run_is_fast_and_lists_the_stages(tmp_path):
    shutil.copy(PAPER, tmp_path / "paper.yaml")
    t0 = time.perf_counter()
    proc = run_snakemake(tmp_path, None, "-n", "--quiet", "rules", configfile=tmp_path / "paper.yaml")
    elapsed = time.perf_counter() - t0
    assert elapsed < 15, f"dry run took {elapsed:.1f} s"
    out = proc.stdout + proc.stderr
    for rule in ("fetch_data", "prepare_data", "train_cdvae", "sample_cdvae", "merge_samples",
                 "generate_metrics", "screen", "candidates", "aggregate", "report"):
        assert re.search(rf"^{rule}\s+\d+", out, flags=re.M), f"{rule} not in the dry run:\n{out}"


def test_paper_rulegraph_edges(tmp_path):
    shutil.copy(PAPER, tmp_path / "paper.yaml")
    dot = run_snakemake(tmp_path, None, "--rulegraph", configfile=tmp_path / "paper.yaml").stdout
    edges = rule_edges(dot)
    missing = GENERATE_EDGES - edges
    assert not missing, f"missing edges {missing}; got {sorted(edges)}"
    assert ("merge_samples", "generate_metrics") in edges or ("sample_cdvae", "generate_metrics") in edges


@pytest.fixture
def cif_dir_run(tmp_path):
    """A workdir whose candidates checkpoint has run on two user structures."""
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    from pymatgen.core import Lattice, Structure

    Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cifs / "Nb-bcc.cif"))
    Structure(Lattice.cubic(4.05), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(cifs / "Al-fcc.cif"))
    cfg = {"data": {"mirror": str(SHARED)}, "candidates": {"source": "cif_dir", "path": str(cifs)}}
    run_snakemake(tmp_path, cfg, "--cores", "2", "results/candidates", "results/data/manifest.json")
    return tmp_path, cfg


def test_dft_chain_appears_after_the_checkpoint(cif_dir_run):
    workdir, cfg = cif_dir_run
    dot = run_snakemake(workdir, cfg, "--rulegraph").stdout
    edges = rule_edges(dot)
    dft_rules = {r for e in edges for r in e if r.startswith("dft_")}
    assert dft_rules, f"no dft_* rules in the graph: {sorted(edges)}"
    assert any(a == "candidates" and b.startswith("dft_") for a, b in edges)
    assert any(a.startswith("dft_") and b == "aggregate" for a, b in edges)
    assert ("aggregate", "report") in edges
    # no generation or screening in cif_dir mode
    assert not {r for e in edges for r in e} & {"train_cdvae", "sample_cdvae", "screen"}


def _dry_jobs(workdir, cfg, *args) -> dict[str, int]:
    out = run_snakemake(workdir, cfg, "-n", "--quiet", "rules", *args).stdout
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M)}


def test_only_restricts_the_dft_jobs(cif_dir_run):
    workdir, cfg = cif_dir_run
    both = _dry_jobs(workdir, cfg)
    one = _dry_jobs(workdir, {**cfg, "candidates": {**cfg["candidates"], "only": ["Nb-bcc"]}})
    dft_both = sum(n for r, n in both.items() if r.startswith("dft_"))
    dft_one = sum(n for r, n in one.items() if r.startswith("dft_"))
    assert dft_both > 0 and 0 < dft_one < dft_both


def test_target_one_candidate(cif_dir_run):
    """`snakemake results/dft/<id>/tc.json` plans that candidate's chain and nothing else."""
    workdir, cfg = cif_dir_run
    out = run_snakemake(workdir, cfg, "-n", "results/dft/Nb-bcc/tc.json").stdout
    assert "results/dft/Nb-bcc/" in out
    assert "results/dft/Al-fcc/" not in out
    assert "rule report" not in out and "rule aggregate" not in out
