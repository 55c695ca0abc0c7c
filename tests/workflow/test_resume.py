"""Interrupt a real run in the middle and run again: finished outputs are not recomputed.

Small end-to-end workflow in cif_dir mode (fcc Al, QE's test-suite pseudopotential, coarse
grids): data -> candidates -> the DFT chain -> aggregate -> report. Snakemake is interrupted with
SIGINT (Ctrl-C) while the DFT chain runs.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from workflow_helpers import REPO, SHARED, SNAKEMAKE, run_snakemake, write_config

AL_REF = SHARED / "reference" / "qe_test_suite_ph_metal_al"
BOHR_A = 0.529177210903
#: a cheap version of QE's fcc-Al el-ph case (seconds per step on 2 cores)
CHEAP_AL = {
    "relax": False, "ecutwfc_ry": 15.0, "ecutrho_ry": 60.0, "smearing": "mv", "degauss_ry": 0.05,
    "kgrid": [8, 8, 8], "scf_kgrid_divisor": 2, "qgrid": [2, 2, 2],
}

pytestmark = pytest.mark.qe

if os.geteuid() == 0:  # Open MPI refuses root without these
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")


def _is_scratch(rel: Path) -> bool:
    """Work directories of unfinished steps (`.<step>.partial`, ph.x `<iq>.work` recover data)."""
    return any(part.startswith(".") or part.endswith(".work") for part in rel.parts)


def _finished(workdir: Path) -> dict[str, float]:
    """mtime of every finished output file under results/ (scratch excluded)."""
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns
            for p in (workdir / "results").rglob("*")
            if p.is_file() and not _is_scratch(p.relative_to(workdir))}


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    from pymatgen.core import Lattice, Structure

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    Structure(Lattice.cubic(7.5 * BOHR_A), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(cifs / "Al.cif"))
    cfg = {"candidates": {"source": "cif_dir", "path": str(cifs)},
           "dft": {"protocol": "fast", "pseudo_dir": str(AL_REF), "pseudo_map": {"Al": "Al.pz-vbc.UPF"},
                   "overrides": CHEAP_AL}}
    configfile = write_config(tmp_path, cfg)
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(configfile), "--cores", "2"]
    # the interrupted job must be cut while it runs, whatever the machine's speed (scf_fit's pw.x
    # takes half a second here: a SIGINT aimed at it can land after it has published, a Snakemake
    # race, not ours). So the test holds scf_fit's step lock (tcflow.dft.stage.step_lock, which a
    # second job of a step waits on): the scf_fit job starts after relax has finished and waits,
    # and Ctrl-C then reaches a running job that has published nothing
    marker = tmp_path / "results" / "dft" / "Al"
    marker.mkdir(parents=True)
    lock = open(marker / ".scf_fit.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    # SIGINT back to its default in the child: a test run started in the background (`cmd &`)
    # inherits SIGINT ignored, and then Python would not turn Ctrl-C into KeyboardInterrupt
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    job_log = tmp_path / "logs" / "dft" / "Al" / "scf_fit.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if job_log.is_file() and "another job of this step is running" in job_log.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before it could be interrupted:\n{proc.stdout.read()}"
    assert (marker / "relax").is_dir() and not (marker / "scf_fit").exists()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    lock.close()  # releases the lock
    assert not (tmp_path / "results" / "report" / "report.md").exists(), out
    before = _finished(tmp_path)
    assert "results/data/manifest.json" in before and "results/screen/candidates.csv" in before

    # the dry run of the resumed workflow plans only what is not finished
    plan = run_snakemake(tmp_path, None, "-n", "--quiet", "rules", configfile=configfile).stdout
    for rule in ("fetch_data", "prepare_data", "candidates"):
        assert f"\n{rule} " not in plan, plan

    run_snakemake(tmp_path, None, "--cores", "2", configfile=configfile)
    after = _finished(tmp_path)
    assert (tmp_path / "results" / "report" / "report.md").is_file()
    assert (tmp_path / "results" / "dft" / "Al" / "tc.json").is_file()
    changed = [p for p, t in before.items() if after.get(p) != t]
    assert not changed, f"finished outputs were recomputed: {changed}"

    # rerun one step of one candidate: that step and what depends on it, nothing upstream
    plan = run_snakemake(tmp_path, None, "--forcerun=dft_matdyn", "--quiet=rules", "-n",
                         "results/dft/Al/tc.json", configfile=configfile).stdout
    jobs = dict(line.split()[:2] for line in plan.splitlines()
                if line.split() and line.split()[0].startswith("dft_") and len(line.split()) >= 2)
    assert "dft_matdyn" in jobs and "dft_tc" in jobs, plan
    assert not {"dft_structure", "dft_relax", "dft_scf_fit", "dft_scf", "dft_ph", "dft_q2r"} & set(jobs), plan

    # operational DFT keys (how QE is launched, clean-up) do not invalidate finished candidates
    ops = dict(cfg, dft={**cfg["dft"], "min_free_disk_gb": 0.5, "cleanup": True,
                         "max_seconds_fraction": 0.5})
    (tmp_path / "ops").mkdir()
    plan = run_snakemake(tmp_path, None, "-n", "results/dft/Al/tc.json",
                         configfile=write_config(tmp_path / "ops", ops)).stdout
    assert "Nothing to be done" in plan, plan


    # one more structure in the user's directory: only the new candidate's chain is planned
    shutil.copy2(cifs / "Al.cif", cifs / "Al2.cif")
    run_snakemake(tmp_path, None, "--cores", "2", "results/candidates", configfile=configfile)
    plan = run_snakemake(tmp_path, None, "-n", configfile=configfile).stdout
    assert "output: results/dft/Al2/tc.json" in plan
    assert "output: results/dft/Al/" not in plan, plan
