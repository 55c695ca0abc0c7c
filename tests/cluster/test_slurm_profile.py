"""profiles/slurm on a real single-node SLURM cluster: jobs go through sbatch and come back.

Each workflow runs with the repository's SLURM profile fitted to the test node (conftest.
site_profile); the evidence that SLURM ran a job is its line in the cluster's job-completion log
(named by the run's id, with the state, partition, CPU count and memory SLURM granted) and the
plugin's per-job SLURM log.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from slurm_helpers import (ACCOUNT, PARTITION, REPO, SNAKEMAKE, Cluster, run_id,
                           site_profile, slurm_logs)
from tcflow.doctor import eval_resource

pytestmark = pytest.mark.slurm

#: wall-clock limit of one snakemake run on the test cluster (s)
RUN_TIMEOUT_S = 300
#: how long to wait for a submitted job to show up running in squeue (s)
QUEUE_WAIT_S = 60

# Two rules named after real ones, so that the profile's set-resources for them apply: `screen`
# is a one-CPU job, `dft_scf` an MPI job that starts its ranks the way the QE rules do
# (`{resources.mpi} -n {resources.tasks}`, tcflow.dft.runner.Launch). A missing `mpi`/`tasks` in the
# profile fails the format.
TINY_SNAKEFILE = """
rule all:
    input: "mpi.txt"

rule screen:
    output: "plain.txt"
    threads: 1
    shell: "echo job=$SLURM_JOB_ID > {output}"

rule dft_scf:
    input: "plain.txt"
    output: "mpi.txt"
    threads: 1
    shell:
        "{{ cat {input}; echo job=$SLURM_JOB_ID; "
        "echo ranks=$({resources.mpi} -n {resources.tasks} hostname | wc -l); }} > {output}"
"""

# `quick` finishes, `slow` is cancelled with scancel while it runs (after writing a partial
# output that must not survive).
CANCEL_SNAKEFILE = """
rule all:
    input: "quick.txt", "slow.txt"

rule quick:
    output: "quick.txt"
    shell: "echo done > {output}"

rule slow:
    output: "slow.txt"
    shell: "echo partial > {output}; sleep 300; echo done >> {output}"
"""


def snakemake(workdir: Path, profile: Path, cluster: Cluster, *args: str,
              snakefile: Path | None = None, timeout_s: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "--snakefile", str(snakefile or workdir / "Snakefile"),
           "--profile", str(profile), *args]
    return subprocess.run(cmd, cwd=workdir, env=cluster.env, capture_output=True, text=True,
                          timeout=timeout_s)


def output_of(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def jobs_of_run(cluster: Cluster, run: str) -> dict[int, dict[str, str]]:
    return {jid: job for jid, job in cluster.finished_jobs().items() if job["Name"] == run}


def granted_mem_mb(job: dict[str, str]) -> int:
    """Memory SLURM granted the job (MB), from its jobcomp Tres field (``cpu=2,mem=4000M,...``)."""
    tres = dict(item.split("=", 1) for item in job["Tres"].split(","))
    value = tres["mem"]
    return int(float(value[:-1]) * 1024) if value.endswith("G") else int(value.rstrip("M"))


def test_jobs_run_through_sbatch_with_profile_resources(slurm_cluster, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "Snakefile").write_text(TINY_SNAKEFILE)
    profile = site_profile(tmp_path / "profile", slurm_cluster)
    # each rule as its own job here (the profile would put dft_scf in the dft_pre group, whose
    # submissions tests/cluster/test_slurm_dft.py counts)
    site = yaml.safe_load((profile / "config.yaml").read_text())
    site.pop("groups", None)
    (profile / "config.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    settings = site["set-resources"]

    proc = snakemake(work, profile, slurm_cluster)
    assert proc.returncode == 0, output_of(proc)[-4000:]

    jobs = jobs_of_run(slurm_cluster, run_id(output_of(proc)))
    assert len(jobs) == 2, f"expected 2 SLURM jobs for the run, jobcomp has {jobs}"
    assert {job["JobState"] for job in jobs.values()} == {"COMPLETED"}
    # partition and account come from TCFLOW_SLURM_PARTITION / TCFLOW_SLURM_ACCOUNT
    assert {job["Partition"] for job in jobs.values()} == {PARTITION}
    assert {job["Account"] for job in jobs.values()} == {ACCOUNT}

    for rule in ("screen", "dft_scf"):
        logs = slurm_logs(work, rule)
        assert len(logs) == 1 and set(logs) <= set(jobs), f"{rule}: logs {logs}, jobs {set(jobs)}"
    (screen_id,), (scf_id,) = slurm_logs(work, "screen"), slurm_logs(work, "dft_scf")

    # each rule ran inside its own SLURM job
    assert (work / "plain.txt").read_text().splitlines() == [f"job={screen_id}"]
    mpi = (work / "mpi.txt").read_text().splitlines()
    tasks = settings["dft_scf"]["tasks"]
    assert mpi == [f"job={screen_id}", f"job={scf_id}", f"ranks={tasks}"]

    # the profile's resources reached sbatch
    assert int(jobs[screen_id]["ProcCnt"]) == 1
    assert granted_mem_mb(jobs[screen_id]) == eval_resource(settings["screen"]["mem_mb"], attempt=1)
    assert int(jobs[scf_id]["ProcCnt"]) == tasks * settings["dft_scf"]["cpus_per_task"]
    assert granted_mem_mb(jobs[scf_id]) == tasks * eval_resource(settings["dft_scf"]["mem_mb_per_cpu"], attempt=1)


def _job_of_rule_in_queue(cluster: Cluster, rule: str) -> int | None:
    """SLURM id of a running job whose comment names ``rule`` (the plugin's job comment)."""
    listing = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i %k"],
                             env=cluster.env, capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        jid, _, comment = line.partition(" ")
        if comment.strip() == f"rule_{rule}":
            return int(jid)
    return None


def test_cancelled_job_fails_loudly_and_keeps_finished_outputs(slurm_cluster, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "Snakefile").write_text(CANCEL_SNAKEFILE)
    profile = site_profile(tmp_path / "profile", slurm_cluster)
    cmd = [str(SNAKEMAKE), "--snakefile", str(work / "Snakefile"), "--profile", str(profile)]
    with open(tmp_path / "snakemake.out", "w") as out:
        run = subprocess.Popen(cmd, cwd=work, env=slurm_cluster.env, stdout=out,
                               stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + QUEUE_WAIT_S
            slow_id = None
            while slow_id is None and time.monotonic() < deadline and run.poll() is None:
                slow_id = _job_of_rule_in_queue(slurm_cluster, "slow")
                time.sleep(1)
            assert slow_id is not None, "job of rule 'slow' never ran"
            while not (work / "slow.txt").exists() and time.monotonic() < deadline:
                time.sleep(1)
            subprocess.run(["scancel", str(slow_id)], env=slurm_cluster.env, check=True)
            returncode = run.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if run.poll() is None:
                run.kill()
    log = (tmp_path / "snakemake.out").read_text()

    assert returncode != 0
    assert f"SLURM-job '{slow_id}' failed, SLURM status is: 'CANCELLED'" in log, log[-3000:]
    assert slurm_cluster.finished_jobs()[slow_id]["JobState"] == "CANCELLED"
    assert (work / "quick.txt").read_text() == "done\n"   # finished work is kept
    assert not (work / "slow.txt").exists()               # the partial output is removed


def test_data_stage_of_the_workflow_runs_on_slurm(slurm_cluster, shared, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"mirror": str(shared)}}))
    profile = site_profile(tmp_path / "profile", slurm_cluster)

    proc = snakemake(work, profile, slurm_cluster, "results/data/manifest.json",
                     "--configfile", str(config), snakefile=REPO / "Snakefile")
    assert proc.returncode == 0, output_of(proc)[-4000:]

    jobs = jobs_of_run(slurm_cluster, run_id(output_of(proc)))
    # prepare_data is a SLURM job; fetch_data too unless the workflow makes it a local rule
    assert slurm_logs(work, "prepare_data"), "prepare_data did not run as a SLURM job"
    for rule in ("fetch_data", "prepare_data"):
        for jid in slurm_logs(work, rule):
            assert jobs[jid]["JobState"] == "COMPLETED", f"{rule}: {jobs[jid]}"
    assert (work / "results" / "data" / "manifest.json").is_file()
    for split in ("train", "val", "test"):
        assert (work / "results" / "data" / f"{split}.csv").stat().st_size > 0


# Generation and the ALIGNN screen on tiny settings (a 2-epoch CDVAE, 8 samples, a 2-member Tc
# ensemble of 2 epochs, the Tc cut calibrated on the validation split, no phonon pre-check): every
# job of both stages through sbatch.
TINY_GENERATE_SCREEN = {
    "generate": {"train": {"epochs": 2}, "sample": {"num_shards": 2, "starts_per_shard": 4},
                 "optimise": {"steps": 5}, "langevin": {"num_levels": 5, "steps_per_level": 2}},
    "screen": {"num_shards": 2, "tc_recall_target": 0.5, "models": {"tc": {"train": {"ensemble": 2, "epochs": 2}}},
               "phonon": {"enabled": False}},
}


def test_generate_and_screen_stages_run_on_slurm(slurm_cluster, shared, tmp_path):
    import json

    import pandas as pd

    work = tmp_path / "work"
    work.mkdir()
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"mirror": str(shared)}, **TINY_GENERATE_SCREEN}))
    profile = site_profile(tmp_path / "profile", slurm_cluster)

    proc = snakemake(work, profile, slurm_cluster, "results/screen/survivors.csv",
                     "--configfile", str(REPO / "config" / "config.yaml"), str(config),
                     snakefile=REPO / "Snakefile", timeout_s=900)
    assert proc.returncode == 0, output_of(proc)[-4000:]

    jobs = jobs_of_run(slurm_cluster, run_id(output_of(proc)))
    expected = {"prepare_data": 1, "train_cdvae": 1, "sample_cdvae": 2, "merge_samples": 1, "train_tc_model": 2,
                "calibrate_tc": 1, "screen_shard": 2, "screen": 1}
    for rule, count in expected.items():
        ids = slurm_logs(work, rule)
        assert len(ids) == count, f"{rule}: {len(ids)} SLURM jobs, expected {count}"
        for jid in ids:
            assert jobs[jid]["JobState"] == "COMPLETED", f"{rule}: {jobs[jid]}"
    pred = pd.read_csv(work / "results" / "screen" / "predictions.csv")
    assert len(pred) == 8 and (pred["passed"] | pred["reason"].notna()).all()
    cal = json.loads((work / "results" / "screen" / "tc_calibration.json").read_text())
    assert cal["recall_target"] == 0.5 and cal["validation"]["recall"] >= 0.5
    cut = f"{cal['threshold_K']:.2f} K (the cut calibrated for recall 0.5"
    below = pred["tc_score_K"] < cal["threshold_K"]
    assert pred.loc[below, "reason"].str.contains(cut, regex=False).all()
    assert (work / "results" / "screen" / "survivors.csv").is_file()
