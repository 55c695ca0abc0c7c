"""profiles/local and profiles/slurm against the workflow, without a cluster.

Every key must be a Snakemake option, both profiles must dry-run the workflow, every rule named
in set-resources must exist, and every rule that asks for MPI ranks or a GPU in rules/*.smk must
get them on SLURM (MPI as `mpi: srun` with one CPU per rank, GPUs in the GPU partition).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from slurm_helpers import LOCAL_PROFILE, REPO, SLURM_PROFILE, SNAKEMAKE

PROFILES = {"local": LOCAL_PROFILE, "slurm": SLURM_PROFILE}
RULE_HEADER = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)  # also inside `if`
#: the environment variables the SLURM profile reads partition and account from
PROFILE_ENV = {"TCFLOW_SLURM_PARTITION": "", "TCFLOW_SLURM_GPU_PARTITION": "",
               "TCFLOW_SLURM_ACCOUNT": ""}
#: a few seconds each; generous for a loaded machine
SNAKEMAKE_TIMEOUT_S = 120


def load(profile: Path) -> dict:
    data = yaml.safe_load(profile.read_text())
    assert isinstance(data, dict), f"{profile} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def snakemake_options() -> set[str]:
    """Every long option `snakemake --help` lists (executor plugins' included)."""
    text = subprocess.run([str(SNAKEMAKE), "--help"], capture_output=True, text=True,
                          check=True, timeout=SNAKEMAKE_TIMEOUT_S).stdout
    return set(re.findall(r"(?<![\w-])--([a-z0-9][a-z0-9-]*)", text))


def rule_blocks() -> dict[str, str]:
    """Source text of every rule/checkpoint in rules/*.smk, by name."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        heads = list(RULE_HEADER.finditer(text))
        for head, nxt in zip(heads, heads[1:] + [None]):
            blocks[head.group(1)] = text[head.start(): nxt.start() if nxt else len(text)]
    return blocks


def resources_block(block: str) -> str:
    """The `resources:` section of one rule's source (up to the next directive)."""
    match = re.search(r"^\s+resources:\n((?:\s{8,}.*\n)+)", block, re.MULTILINE)
    return match.group(1) if match else ""


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_keys_are_snakemake_options(name, snakemake_options):
    unknown = sorted(set(load(PROFILES[name])) - snakemake_options)
    assert not unknown, f"profiles/{name}/config.yaml: not snakemake options: {unknown}"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_dry_runs_the_workflow(name, tmp_path, shared):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"mirror": str(shared)}}))
    env = {**os.environ, **PROFILE_ENV}
    proc = subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--profile",
                           str(PROFILES[name].parent), "--dry-run", "--configfile", str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=SNAKEMAKE_TIMEOUT_S)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "Job stats" in proc.stdout, proc.stdout[-2000:]


def dft_rules(mpi: bool | None = None) -> set[str]:
    """The generated rules: the DFT chain (tcflow.dft.chain.STEPS in rules/dft.smk, both ph.x
    modes) and the energy chain of a phase (tcflow.energy.steps.STEPS in rules/energy.smk)."""
    from tcflow.dft.chain import STEPS, TC_RULE
    from tcflow.energy.steps import STEPS as ENERGY_STEPS

    rules = {s.rule for s in (*STEPS, *ENERGY_STEPS) if mpi is None or s.mpi == mpi}
    return rules | ({TC_RULE} if not mpi else set())


def test_set_resources_name_workflow_rules():
    named = set(load(SLURM_PROFILE)["set-resources"])
    unknown = sorted(named - set(rule_blocks()) - dft_rules())
    assert not unknown, f"profiles/slurm set-resources for rules that do not exist: {unknown}"


def test_groups_keep_a_candidate_to_few_submissions():
    """Every DFT rule but the ph.x chunks is in one of two groups: the chain before ph.x
    (dft_pre) and after it (dft_post), so a candidate costs 2 + dft.ph_jobs submissions."""
    from tcflow.dft.chain import chain

    groups = load(SLURM_PROFILE)["groups"]
    assert not sorted(set(groups) - set(rule_blocks()) - dft_rules()), groups
    split = [s.rule for s in chain(4)]
    before = split[:split.index("dft_ph_q")]
    after = split[split.index("dft_ph_q") + 1:] + ["dft_tc"]
    assert {groups[r] for r in before} == {"dft_pre"} and {groups[r] for r in after} == {"dft_post"}
    assert "dft_ph_q" not in groups and "dft_ph_all" not in groups


def test_mpi_rules_get_srun_ranks_on_slurm():
    settings = load(SLURM_PROFILE)["set-resources"]
    mpi_rules = {name for name, block in rule_blocks().items()
                 if re.search(r"\btasks\s*=", resources_block(block))} | dft_rules(mpi=True)
    assert mpi_rules, "no rule in rules/*.smk declares resources.tasks"
    for rule in sorted(mpi_rules):
        res = settings.get(rule)
        assert res is not None, f"MPI rule {rule} has no set-resources entry in profiles/slurm"
        assert res.get("mpi") == "srun", f"{rule}: needs mpi: srun"
        assert isinstance(res.get("tasks"), int) and res["tasks"] > 1, f"{rule}: tasks > 1"
        assert res.get("cpus_per_task") == 1, f"{rule}: one CPU per MPI rank"
    extra = sorted(r for r, res in settings.items() if "mpi" in res and r not in mpi_rules)
    assert not extra, f"profiles/slurm makes serial rules MPI jobs: {extra}"


def test_gpu_rules_get_a_gpu_on_slurm():
    settings = load(SLURM_PROFILE)["set-resources"]
    gpu_rules = {name for name, block in rule_blocks().items()
                 if re.search(r"\bgpu\s*=", resources_block(block))}
    assert gpu_rules, "no rule in rules/*.smk declares resources.gpu"
    for rule in sorted(gpu_rules):
        res = settings.get(rule, {})
        assert isinstance(res.get("gpu"), int) and res["gpu"] >= 1, f"{rule}: needs gpu >= 1"
        assert res.get("slurm_partition") == "$TCFLOW_SLURM_GPU_PARTITION", rule
