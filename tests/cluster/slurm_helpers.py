"""Helpers for the cluster tests: a real single-node SLURM cluster and a site copy of the profile.

The cluster (fixture ``slurm_cluster`` in conftest.py) is started by ``slurm_cluster.sh`` (needs
root and the Debian packages slurm-wlm and munge) once per module and stopped afterwards. The
site profile is the repository's ``profiles/slurm/config.yaml`` with only what a site changes:
resources capped to the test node, no GPUs (the node has none), short status-check intervals,
successful SLURM logs kept.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "cluster" / "slurm_cluster.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local" / "config.yaml"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

#: the test cluster's non-default partition (slurm_cluster.sh); the profile must send jobs there
PARTITION = "tcflow"
#: account the profile is told to use (the test cluster has no accounting, so any name is taken)
ACCOUNT = "tcflowtest"
#: seconds allowed for starting or stopping the daemons
DAEMON_TIMEOUT_S = 120
#: resource keys that need hardware the test node lacks
GPU_KEYS = ("gpu", "gpus", "gpu_model", "gres")
#: executor settings that make a test run fast and inspectable; everything else is the repo's
TEST_OVERRIDES = {
    "slurm-init-seconds-before-status-checks": 1,
    "seconds-between-status-checks": 1,
    "slurm-keep-successful-logs": True,
    "latency-wait": 5,
    "retries": 0,
}


@dataclass(frozen=True)
class Cluster:
    """A running test cluster: its directory, node size and the environment to reach it."""

    dir: Path
    cpus: int
    mem_mb: int
    env: dict

    @property
    def jobcomp(self) -> Path:
        """Job-completion log: one ``JobId=... Name=... JobState=...`` line per finished job."""
        return self.dir / "log" / "jobcomp.txt"

    def finished_jobs(self) -> dict[int, dict[str, str]]:
        """Finished jobs by id, each a dict of the jobcomp fields (JobState, Name, ProcCnt, ...)."""
        jobs = {}
        if self.jobcomp.exists():
            for line in self.jobcomp.read_text().splitlines():
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" in fields:
                    jobs[int(fields["JobId"])] = fields
        return jobs


def slurmctld_installed() -> bool:
    return shutil.which("slurmctld") is not None or Path("/usr/sbin/slurmctld").is_file()


def run_script(action: str, directory: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(SCRIPT), action, str(directory)], capture_output=True,
                          text=True, timeout=DAEMON_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"slurm_cluster.sh {action} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def site_profile(directory: Path, cluster: Cluster) -> Path:
    """Write the repo's SLURM profile, fitted to ``cluster``, as ``directory/config.yaml``."""
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    site = copy.deepcopy(profile)
    site.update(TEST_OVERRIDES)
    caps = {"tasks": cluster.cpus, "mem_mb": cluster.mem_mb // 2,
            "mem_mb_per_cpu": cluster.mem_mb // (2 * cluster.cpus)}
    for resources in [site["default-resources"], *site["set-resources"].values()]:
        for key in GPU_KEYS:
            resources.pop(key, None)
        for key, cap in caps.items():
            if key in resources:  # a number, or an expression of `attempt` (capped at every attempt)
                value = resources[key]
                resources[key] = f"min({value}, {cap})" if isinstance(value, str) else min(value, cap)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    return directory


def run_id(snakemake_output: str) -> str:
    """The SLURM run id (the job name of every job this run submitted)."""
    match = re.search(r"SLURM run ID: (\S+)", snakemake_output)
    assert match, f"no 'SLURM run ID' in snakemake output:\n{snakemake_output[-3000:]}"
    return match.group(1)


def slurm_logs(workdir: Path, rule: str) -> dict[int, Path]:
    """The plugin's per-job SLURM logs of ``rule`` in ``workdir``, by SLURM job id."""
    root = workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}"
    return {int(p.stem): p for p in root.rglob("*.log") if p.stem.isdigit()}
