"""Helpers for tests that run the workflow: repository and mirror paths, a snakemake runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TCFLOW_MIRROR", REPO.parent / "shared")).resolve()
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def write_config(workdir: Path, config: dict) -> Path:
    """Write a workflow config into ``workdir`` (mirror pointed at the shared folder)."""
    config = {"data": {"mirror": str(SHARED)}, **config}
    config["data"].setdefault("mirror", str(SHARED))
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_snakemake(workdir: Path, config: dict | None, *args: str, check: bool = True,
                  timeout: float = 600, configfile: Path | None = None) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with ``config`` (None: no extra config)."""
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    elif config is not None:
        cmd += ["--configfile", str(write_config(workdir, config))]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
