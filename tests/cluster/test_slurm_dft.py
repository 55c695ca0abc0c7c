"""The DFT stage on a real single-node SLURM cluster, through the repository's profile.

fcc Al (QE's own el-ph test case, the overrides of tests/dft/test_dft_pipeline.py on a 2x2x2
q-grid: 3 irreducible q-points, so the run takes minutes on the 2-CPU test node) and a Si insulator
that the metallicity gate stops, with ``dft.ph_jobs: 4`` (one chunk left with no q-point): every job goes through sbatch,
QE's ranks through ``srun -n <tasks>``, and the profile's groups make each candidate two group
jobs (``dft_pre``, ``dft_post``) plus its four ph.x chunk jobs. Then faults, each compared with the
uninterrupted run's tc.json and counted in submissions:

- ``scancel`` of a running ph.x chunk job, then a rerun: only that chunk and ``dft_post`` are
  submitted again, and λ, ω_log, Tc are those of the uninterrupted run;
- the Snakemake head process killed (SIGKILL) while ph.x jobs run, then a rerun: the same Tc;
- ph.x jobs past their time (a 1-minute runtime of which QE may use 1 %): each stopped job
  fails with a line naming the rule, the candidate and the limit, SLURM's retry gets
  ``runtime x attempt`` and resumes, and the run ends with the uninterrupted Tc, having submitted
  exactly one more job per stop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_helpers import REPO, SNAKEMAKE, Cluster, run_id, site_profile

sys.path.insert(0, str(REPO / "tests" / "dft"))
from test_dft_pipeline import AL_OVERRIDES, AL_REF, SSSP, _write_al  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.qe, pytest.mark.slow]

#: wall-clock limit of one snakemake run on the test cluster (s)
RUN_TIMEOUT_S = 1800
PH_JOBS = 4
#: QE's Al test case on coarser grids (k 8^3 / 4^3, q 2^3: 3 irreducible q-points, so the fourth
#: ph.x job has none) and a smaller smearing, under which the Si insulator keeps its gap
OVERRIDES = {**AL_OVERRIDES, "kgrid": [8, 8, 8], "qgrid": [2, 2, 2], "degauss_ry": 0.01,
             "ecutwfc_ry": 20.0, "ecutrho_ry": 160.0, "matdyn_nk": [6, 6, 6]}
N_IRR_Q = 3
#: submissions per candidate with the profile's groups: dft_pre, the ph.x chunks, dft_post
SUBMISSIONS_PER_CANDIDATE = 2 + PH_JOBS
TARGETS = ("results/dft/al/tc.json", "results/dft/si/tc.json")
SUBMITTED = re.compile(r"has been submitted with SLURM jobid \d+ \(log: \S*?/slurm_logs/"
                       r"(?:rule_(\w+?)/|group_(dft_pre|dft_post)_)")


def _workdir(root: Path) -> Path:
    """Two user structures (fcc Al, diamond Si), their pseudopotentials and a config."""
    from pymatgen.core import Lattice, Structure

    work, cifs, pseudo = root / "work", root / "work/cifs", root / "work/pseudo"
    cifs.mkdir(parents=True)
    pseudo.mkdir()
    _write_al(cifs)
    Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]).to(filename=str(cifs / "si.cif"))
    shutil.copy(AL_REF / "Al.pz-vbc.UPF", pseudo / "Al.UPF")
    si = json.loads((SSSP / "sssp_pbesol_efficiency_1.3.0.json").read_text())["Si"]["filename"]
    shutil.copy(SSSP / si, pseudo / "Si.UPF")
    config = {"candidates": {"source": "cif_dir", "path": str(cifs)},
              "dft": {"protocol": "fast", "pseudo_dir": str(pseudo), "pseudo_map": {"Al": "Al.UPF", "Si": "Si.UPF"},
                      "overrides": OVERRIDES, "ph_jobs": PH_JOBS}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def _cmd(work: Path, profile: Path, *extra: str, targets: tuple[str, ...] = TARGETS) -> list[str]:
    return [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--configfile", str(work / "config.yaml"), "--profile", str(profile), *extra, *targets]


def _env(cluster: Cluster) -> dict:
    return dict(cluster.env, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def _run(work: Path, profile: Path, cluster: Cluster, *extra: str, check: bool = True,
         targets: tuple[str, ...] = TARGETS) -> str:
    proc = subprocess.run(_cmd(work, profile, *extra, targets=targets), env=_env(cluster), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out[-6000:]
    return out


def _submitted_rules(out: str) -> list[str]:
    """The rule or group of every sbatch submission, from the plugin's "has been submitted" lines
    (the SLURM log path names it: ``slurm_logs/rule_<rule>/...`` or ``slurm_logs/group_<group>_...``)."""
    return [m.group(1) or m.group(2) for m in SUBMITTED.finditer(out)]


def _squeue(cluster: Cluster) -> list[tuple[int, str]]:
    """(SLURM id, the plugin's job comment) of the running jobs."""
    text = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i %k"], env=cluster.env,
                          capture_output=True, text=True, check=True).stdout
    return [(int(j), c.strip()) for j, _, c in (line.partition(" ") for line in text.splitlines()) if j.isdigit()]


def _tc(work: Path, cid: str) -> dict:
    return json.loads((work / f"results/dft/{cid}/tc.json").read_text())


def _same_tc(a: dict, b: dict) -> None:
    assert a["status"] == b["status"] and a["lambda"] is not None
    for key in ("lambda", "omega_log_K", "tc_K", "sigma_ry"):
        assert a[key] == b[key], key
    assert [r["matdyn"] for r in a["table"]] == [r["matdyn"] for r in b["table"]]


@pytest.fixture(scope="module")
def uninterrupted(slurm_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_dft")
    work = _workdir(root)
    profile = site_profile(root / "profile", slurm_cluster)
    out = _run(work, profile, slurm_cluster)
    return work, profile, out


def test_dft_stage_runs_through_sbatch_and_srun(uninterrupted, slurm_cluster):
    work, profile, out = uninterrupted
    al, si = _tc(work, "al"), _tc(work, "si")
    # on these coarse test grids the stability gate may flag Al's acoustic branches; λ and Tc are
    # computed either way, which is what the fault tests compare
    assert al["status"] in ("ok", "dynamically_unstable") and al["spacegroup"]["spacegroup_symbol"] == "Fm-3m"
    assert len(al["table"]) == 10 and al["lambda"] > 0.1 and al["tc_K"] >= 0
    assert al["n_irr_q"] == N_IRR_Q and al["ph_jobs"] == N_IRR_Q  # chunks that ran ph.x
    empty = json.loads((work / f"results/dft/al/ph_q/{PH_JOBS}/ph.json").read_text())
    assert empty["iqs"] == [] and empty["status"] == "ok"
    assert si["status"] == "insulator" and si["lambda"] is None
    # every candidate: its two group jobs and its ph.x chunks, nothing else submitted
    rules = _submitted_rules(out)
    assert len(rules) == 2 * SUBMISSIONS_PER_CANDIDATE, rules
    assert sorted(set(rules)) == ["dft_ph_q", "dft_post", "dft_pre"], rules
    assert rules.count("dft_ph_q") == 2 * PH_JOBS
    # SLURM ran them: each under this run's name, completed, in the test partition
    run = run_id(out)
    jobs = {j: job for j, job in slurm_cluster.finished_jobs().items() if job["Name"] == run}
    assert len(jobs) == len(rules) and {job["JobState"] for job in jobs.values()} == {"COMPLETED"}
    # QE ranks came from srun with the profile's tasks
    tasks = yaml.safe_load((profile / "config.yaml").read_text())["set-resources"]["dft_ph_q"]["tasks"]
    ph_in = next((work / "results/dft/al/ph_q").glob("*.work/run1/ph.*.out")).read_text()
    assert re.search(rf"running on\s+{tasks} processors", ph_in)  # QE 6.7: "Parallel version (MPI), running on N processors"
    assert "srun" in (work / "logs/dft/al/ph_q/1.log").read_text()


def _wait_for_ph_q(cluster: Cluster, work: Path, proc: subprocess.Popen, timeout: float = RUN_TIMEOUT_S) -> int:
    """SLURM id of a running ph.x chunk job of Al that has started ph.x."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for jid, comment in _squeue(cluster):
            m = re.fullmatch(r"rule_dft_ph_q_wildcards_al_(\d+)", comment)
            if m and list((work / f"results/dft/al/ph_q/{m.group(1)}.work").glob("run1/ph.*.out")):
                return jid
        time.sleep(0.5)
    raise AssertionError(f"no running dft_ph_q job of al (snakemake exit {proc.poll()})")


def _start(root: Path, cluster: Cluster, **popen) -> tuple[Path, Path, subprocess.Popen, int]:
    """A fresh run in the background, once one of Al's ph.x jobs runs: (work, profile, process, its job)."""
    work = _workdir(root)
    profile = site_profile(root / "profile", cluster)
    proc = subprocess.Popen(_cmd(work, profile), env=_env(cluster), **popen)
    return work, profile, proc, _wait_for_ph_q(cluster, work, proc)


def test_scancel_of_a_ph_job_then_rerun_resumes_exactly(uninterrupted, slurm_cluster, tmp_path):
    ref_work, _, _ = uninterrupted
    work, profile, proc, jid = _start(tmp_path, slurm_cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
    subprocess.run(["scancel", str(jid)], env=slurm_cluster.env, check=True)
    first = proc.communicate(timeout=RUN_TIMEOUT_S)[0]
    assert proc.returncode != 0, "the cancelled job must fail the run (the profile keeps going)"
    assert not (work / "results/dft/al/tc.json").exists()
    assert (work / "results/dft/si/tc.json").exists()  # keep-going: the other candidate finished
    unfinished = [c for c in range(1, PH_JOBS + 1) if not (work / f"results/dft/al/ph_q/{c}").is_dir()]
    assert len(unfinished) >= 1
    rerun = _run(work, profile, slurm_cluster)
    rules = _submitted_rules(rerun)
    assert sorted(rules) == sorted(["dft_ph_q"] * len(unfinished) + ["dft_post"]), (unfinished, rules)
    _same_tc(_tc(work, "al"), _tc(ref_work, "al"))
    assert "Job" in first  # the first run did submit jobs (sanity of the log parsing)


def test_killed_head_then_rerun_gives_the_same_tc(uninterrupted, slurm_cluster, tmp_path):
    ref_work, _, _ = uninterrupted
    work, profile, proc, _ = _start(tmp_path, slurm_cluster, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)  # the head node's process lost; its SLURM jobs run on
    proc.wait()
    _run(work, profile, slurm_cluster, "--unlock")
    _run(work, profile, slurm_cluster)
    _same_tc(_tc(work, "al"), _tc(ref_work, "al"))


def test_job_past_its_runtime_is_retried_with_more_time(uninterrupted, slurm_cluster, tmp_path):
    ref_work, _, _ = uninterrupted
    work = _workdir(tmp_path)
    config = yaml.safe_load((work / "config.yaml").read_text())
    # a 1-minute runtime of which QE may use 1 %: attempt 1 has 0.6 s, under ph.x's minimum
    # max_seconds (1 s), so each ph.x job stops before its q-point; attempt k has k x 0.6 s (1.2 s
    # is more than ph.x needs on an idle node; on a slower or busier node ph.x itself stops at
    # max_seconds and a later attempt finishes: eight retries, up to 5.4 s for one q-point; seen
    # here: a q-point needing more than 2.4 s while another QE run shared the two cores)
    runtime_min = 1
    config["dft"]["max_seconds_fraction"] = 0.01
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    profile = site_profile(tmp_path / "profile", slurm_cluster)
    site = yaml.safe_load((profile / "config.yaml").read_text())
    site["retries"] = 8
    site["set-resources"]["dft_ph_q"]["runtime"] = f"{runtime_min} * attempt"
    (profile / "config.yaml").write_text(yaml.safe_dump(site, sort_keys=False))

    out = _run(work, profile, slurm_cluster, targets=("results/dft/al/tc.json",))
    _same_tc(_tc(work, "al"), _tc(ref_work, "al"))
    # the jobs' SLURM logs (their stderr; Snakemake clears a rule's log before a retry): one per
    # submission, each failed attempt's ending in one line naming the rule, the candidate, what
    # stopped and the limit it ran under, the retry under twice the runtime
    stops = {}
    for c in range(1, PH_JOBS + 1):
        logs = sorted((work / f".snakemake/slurm_logs/rule_dft_ph_q/al_{c}").glob("*.log"),
                      key=lambda p: int(p.stem))
        texts = [p.read_text() for p in logs]
        stops[c] = len(logs) - 1
        for attempt, text in enumerate(texts, start=1):
            failed = [line for line in text.splitlines() if line.startswith("dft_ph_q (al): ")]
            if attempt == len(texts):
                assert not failed and "Finished jobid" in text, (c, attempt, failed)
                continue
            assert len(failed) == 1 and "walltime" in failed[0], (c, attempt, failed)
            assert f"limit was runtime {runtime_min * attempt} min, QE stops at" in failed[0], failed[0]
        # the job's own log is the last attempt's: it names its (longer) limit
        last = (work / f"logs/dft/al/ph_q/{c}.log").read_text()
        assert f"runtime {runtime_min * len(texts)} min, QE stops at" in last, (c, last)
    assert stops[PH_JOBS] == 0 and all(stops[c] >= 1 for c in range(1, N_IRR_Q + 1)), stops  # the empty chunk needs no time
    rules = _submitted_rules(out)
    assert sorted(rules) == sorted(["dft_pre", "dft_post"] + ["dft_ph_q"] * (PH_JOBS + sum(stops.values()))), \
        (stops, rules)
