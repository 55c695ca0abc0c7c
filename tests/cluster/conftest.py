"""Fixture `slurm_cluster`: a private single-node SLURM cluster, one per test module."""

from __future__ import annotations

import os
import subprocess

import pytest

from slurm_helpers import ACCOUNT, PARTITION, Cluster, run_script, slurmctld_installed


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory) -> Cluster:
    """Start a private single-node SLURM cluster for the module; stop it afterwards."""
    if not slurmctld_installed():
        pytest.skip("slurmctld is not installed (Debian: apt-get install slurm-wlm munge)")
    directory = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, SLURM_CONF=str(directory / "slurm.conf"),
               TCFLOW_SLURM_PARTITION=PARTITION, TCFLOW_SLURM_GPU_PARTITION=PARTITION,
               TCFLOW_SLURM_ACCOUNT=ACCOUNT)
    try:
        run_script("start", directory)
        size = subprocess.run(["sinfo", "--noheader", "--format=%c %m"], env=env, check=True,
                              capture_output=True, text=True).stdout.split()
        yield Cluster(directory, int(size[0]), int(size[1]), env)
    finally:
        run_script("stop", directory)
