"""Interruptions of a real DFT run, each resumed and compared with an uninterrupted run of the
same case (fcc Al, QE's test-suite case with 8 irreducible q-points, one ph.x job):

- SIGINT to the Snakemake process alone while ph.x runs: the run stops within seconds, no QE
  process is left, and the rerun's tc.json equals the uninterrupted one;
- SIGKILL to the Snakemake process alone: its jobs notice and stop QE; the rerun equals it too;
- ``kill -9`` of one ph.x rank at a q-point past the first: the job fails, the rerun keeps the
  finished q-points and equals the uninterrupted run;
- every q-point finished but the job cut before publishing: the rerun publishes without ph.x.

"Equal" is to the last digit QE prints: every q-point is computed by a ph.x process of its own,
so where a run started does not change what it computes (tcflow.dft.steps.phwork).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from test_dft_pipeline import SNAKEMAKE_TIMEOUT_S, _al_config, _write_al
from workflow_helpers import REPO, SNAKEMAKE, run_snakemake, write_config

pytestmark = pytest.mark.qe
TARGET = "results/dft/al/tc.json"
#: fields of tc.json that must not change when a run is interrupted and resumed
RESULT_KEYS = ("status", "lambda", "omega_log_K", "tc_K", "sigma_ry", "n_ef", "min_freq_cm1", "table",
               "broadening_converged")


def _cmd(wd: Path, cfg: Path) -> list[str]:
    return [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(cfg),
            "--cores", "2", TARGET]


def _result(wd: Path) -> dict:
    tc = json.loads((wd / TARGET).read_text())
    return {k: tc[k] for k in RESULT_KEYS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    wd = tmp_path_factory.mktemp("al_uninterrupted")
    _write_al(wd / "cifs")
    cfg = write_config(wd, _al_config(wd / "cifs", ph_jobs=1))
    subprocess.run(_cmd(wd, cfg), check=True, capture_output=True, timeout=SNAKEMAKE_TIMEOUT_S)
    return wd, _result(wd)


def _ph_x(wd: Path) -> list[psutil.Process]:
    """Live ph.x processes working under ``wd``."""
    found = []
    for p in psutil.process_iter(["name", "cwd", "status"]):
        if p.info["name"] == "ph.x" and str(p.info["cwd"] or "").startswith(str(wd)) \
                and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def _start_and_wait_for_q(wd: Path, iq: int) -> tuple[subprocess.Popen, Path]:
    """Start the run and return once ph.x works on irreducible q-point ``iq`` (run1)."""
    _write_al(wd / "cifs")
    cfg = write_config(wd, _al_config(wd / "cifs", ph_jobs=1))
    proc = subprocess.Popen(_cmd(wd, cfg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = wd / f"results/dft/al/ph.work/run1/ph.{iq}.out"
    deadline = time.monotonic() + SNAKEMAKE_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_file() and "Representation" in out.read_text(errors="replace") and _ph_x(wd):
            return proc, cfg
        time.sleep(0.1)
    raise AssertionError(f"ph.x never reached q-point {iq}: {proc.stdout.read() if proc.poll() is not None else ''}")


def _gone_within(wd: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _ph_x(wd):
            return True
        time.sleep(0.2)
    return False


def _resume(wd: Path, cfg: Path) -> dict:
    run_snakemake(wd, None, "--unlock", configfile=cfg)
    run_snakemake(wd, None, "--cores", "2", "--rerun-incomplete", TARGET, configfile=cfg, timeout=SNAKEMAKE_TIMEOUT_S)
    return json.loads((wd / "results/dft/al/ph/ph.json").read_text())


def test_sigint_to_snakemake_stops_qe_and_resumes_to_the_same_tc(tmp_path, reference):
    proc, cfg = _start_and_wait_for_q(tmp_path, 3)
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)  # the Snakemake process alone, not its process group
    proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 30, "Snakemake did not stop within seconds of the SIGINT"
    assert _gone_within(tmp_path, 5), "ph.x outlived its job"
    assert not (tmp_path / "results/dft/al/ph").exists()
    ph = _resume(tmp_path, cfg)
    assert ph["recovered"] is True and ph["q_kept"][:2] == [1, 2]
    assert _result(tmp_path) == reference[1]


def test_sigkill_of_snakemake_ends_qe_and_resumes_to_the_same_tc(tmp_path, reference):
    proc, cfg = _start_and_wait_for_q(tmp_path, 3)
    os.kill(proc.pid, signal.SIGKILL)  # the head process lost, its jobs left running
    proc.wait()
    assert _gone_within(tmp_path, 20), "ph.x outlived Snakemake"
    ph = _resume(tmp_path, cfg)
    assert ph["recovered"] is True and ph["restart_q"] >= 3
    assert _result(tmp_path) == reference[1]


def test_killed_ph_rank_resumes_to_the_same_tc(tmp_path, reference):
    proc, cfg = _start_and_wait_for_q(tmp_path, 3)
    os.kill(_ph_x(tmp_path)[-1].pid, signal.SIGKILL)  # one MPI rank dies (node fault, OOM killer)
    out, _ = proc.communicate(timeout=SNAKEMAKE_TIMEOUT_S)
    assert proc.returncode != 0 and not (tmp_path / "results/dft/al/ph").exists()
    assert _gone_within(tmp_path, 10)
    ph = _resume(tmp_path, cfg)
    assert ph["recovered"] is True and ph["restart_q"] >= 3 and ph["q_kept"][0] == 1
    assert _result(tmp_path) == reference[1]


def test_every_q_point_finished_before_the_cut_publishes_without_ph_x(reference):
    """The job was cut after ph.x's last q-point but before its output was published."""
    wd = reference[0]  # in place (a copy elsewhere would change the candidates' path and rerun all)
    cfg = wd / "config.yaml"
    cand = wd / "results/dft/al"
    for step in ("ph", "q2r", "matdyn", "lambda"):
        shutil.rmtree(cand / step)
    (cand / "tc.json").unlink()
    run_snakemake(wd, None, "--cores", "2", TARGET, configfile=cfg, timeout=SNAKEMAKE_TIMEOUT_S)
    ph = json.loads((cand / "ph/ph.json").read_text())
    assert ph["status"] == "ok" and ph["recovered"] is True and ph["restart_q"] is None
    assert ph["wall_s"] == 0.0 and ph["q_kept"] == list(range(1, 9))
    assert not (cand / "ph.work/run2").exists()
    assert _result(wd) == reference[1]
