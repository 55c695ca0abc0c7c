# DFT electron-phonon stage (Quantum ESPRESSO), one chain per candidate {cid}:
#   structure -> relax -> scf_fit (la2F, dense k; insulator gate) -> scf (coarse k)
#   -> ph (rule dft_ph_all: one ph.x over all q; dft.q_per_job = 0) or, split, ph_init (checkpoint)
#      -> ph_q/{chunk} (one ph.x job per q_per_job q-points) -> ph (collect)
#   -> q2r -> matdyn (a2F, stability gate) -> lambda (lambda.x) -> tc.json
# Every step writes results/dft/{cid}/<step>/ (inputs, outputs, <step>.json with `status`);
# logic lives in tcflow.dft.steps. The rules are `run:` blocks calling tcflow.dft.job.run_dft_rule:
# on one machine they run inside the Snakemake process (threads: profiles/default), sparing a
# Python start-up per job; under SLURM each job is its own process as usual. No heavy imports here.
import json

from tcflow.dft.job import run_dft_rule  # light (stdlib only at import)
from tcflow.dft.protocol import get_protocol  # light (yaml only)

# fail at parse time, in one line naming the key, on an unknown protocol or override key
get_protocol(config["dft"]["protocol"], config["dft"]["overrides"])

#: ph.x split: 0 = one ph.x job over all q-points; n = one job per block of n irreducible q-points
Q_PER_JOB = config["dft"]["q_per_job"]
DFT_DIR = "results/dft/{cid}"
DFT_LOG = "logs/dft/{cid}"
DFT_BENCH = "logs/benchmarks/dft/{cid}"
#: portable defaults; a cluster profile overrides threads/tasks/runtime per rule (set-resources)
DFT_MPI_THREADS = 2
DFT_PW_RUNTIME_MIN = 240
DFT_PH_RUNTIME_MIN = 720


wildcard_constraints:
    chunk=r"\d+",


def _dft_structure_inputs(wildcards):
    """The candidate CIF, plus the default pseudopotential directory unless dft.pseudo_dir is set."""
    inputs = candidate_input(wildcards)
    if not config["dft"]["pseudo_dir"]:
        inputs["pseudo"] = PSEUDO_DIR
    return inputs


def _mpi_tasks(wildcards, threads):
    return threads


rule dft_structure:
    input:
        unpack(_dft_structure_inputs),
    output:
        dir=directory(f"{DFT_DIR}/structure"),
    log:
        f"{DFT_LOG}/structure.log",
    benchmark:
        f"{DFT_BENCH}/structure.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        # what changes the physics: a change reruns the candidate's chain. Operational keys
        # (launcher, qe_bin_dir, max_seconds_fraction, cleanup) are left out on purpose.
        dft={k: config["dft"][k] for k in ("protocol", "overrides", "pseudo_dir", "pseudo_map")},
    conda:
        "../envs/ml.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


rule dft_relax:
    input:
        structure=f"{DFT_DIR}/structure",
    output:
        dir=directory(f"{DFT_DIR}/relax"),
    log:
        f"{DFT_LOG}/relax.log",
    benchmark:
        f"{DFT_BENCH}/relax.tsv"
    threads: DFT_MPI_THREADS
    resources:
        mem_mb=8000,
        runtime=DFT_PW_RUNTIME_MIN,
        tasks=_mpi_tasks,
    conda:
        "../envs/qe.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


rule dft_scf_fit:
    input:
        structure=f"{DFT_DIR}/structure",
        relax=f"{DFT_DIR}/relax",
    output:
        dir=directory(f"{DFT_DIR}/scf_fit"),
    log:
        f"{DFT_LOG}/scf_fit.log",
    benchmark:
        f"{DFT_BENCH}/scf_fit.tsv"
    threads: DFT_MPI_THREADS
    resources:
        mem_mb=8000,
        runtime=DFT_PW_RUNTIME_MIN,
        tasks=_mpi_tasks,
    conda:
        "../envs/qe.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


rule dft_scf:
    input:
        structure=f"{DFT_DIR}/structure",
        relax=f"{DFT_DIR}/relax",
        scf_fit=f"{DFT_DIR}/scf_fit",
    output:
        dir=directory(f"{DFT_DIR}/scf"),
    log:
        f"{DFT_LOG}/scf.log",
    benchmark:
        f"{DFT_BENCH}/scf.tsv"
    threads: DFT_MPI_THREADS
    resources:
        mem_mb=8000,
        runtime=DFT_PW_RUNTIME_MIN,
        tasks=_mpi_tasks,
    conda:
        "../envs/qe.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


if Q_PER_JOB:  # split: ph_init lists the irreducible q-points, one dft_ph_q job per block of them

    checkpoint dft_ph_init:
        input:
            structure=f"{DFT_DIR}/structure",
            relax=f"{DFT_DIR}/relax",
            scf=f"{DFT_DIR}/scf",
        output:
            dir=directory(f"{DFT_DIR}/ph_init"),
        log:
            f"{DFT_LOG}/ph_init.log",
        benchmark:
            f"{DFT_BENCH}/ph_init.tsv"
        threads: DFT_MPI_THREADS
        resources:
            mem_mb=8000,
            runtime=DFT_PW_RUNTIME_MIN,
            tasks=_mpi_tasks,
        conda:
            "../envs/qe.yaml"
        run:
            run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)

    rule dft_ph_q:
        input:
            structure=f"{DFT_DIR}/structure",
            relax=f"{DFT_DIR}/relax",
            scf=f"{DFT_DIR}/scf",
            ph_init=f"{DFT_DIR}/ph_init",
        output:
            dir=directory(f"{DFT_DIR}/ph_q/{{chunk}}"),
        log:
            f"{DFT_LOG}/ph_q/{{chunk}}.log",
        benchmark:
            f"{DFT_BENCH}/ph_q/{{chunk}}.tsv"
        threads: DFT_MPI_THREADS
        resources:
            mem_mb=8000,
            runtime=DFT_PH_RUNTIME_MIN,
            tasks=_mpi_tasks,
        params:
            q_per_job=Q_PER_JOB,
        conda:
            "../envs/qe.yaml"
        run:
            run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)

    def _ph_q_dirs(wildcards):
        """One ph_q directory per block of q_per_job irreducible q-points (known after dft_ph_init)."""
        init_dir = checkpoints.dft_ph_init.get(cid=wildcards.cid).output.dir
        with open(f"{init_dir}/qpoints.json") as fh:
            n_irr_q = json.load(fh)["n_irr_q"]
        n_jobs = -(-n_irr_q // Q_PER_JOB)
        return [f"results/dft/{wildcards.cid}/ph_q/{chunk}" for chunk in range(1, n_jobs + 1)]

    rule dft_ph:
        input:
            ph_init=f"{DFT_DIR}/ph_init",
            ph_q=_ph_q_dirs,
        output:
            dir=directory(f"{DFT_DIR}/ph"),
        log:
            f"{DFT_LOG}/ph.log",
        benchmark:
            f"{DFT_BENCH}/ph.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/ml.yaml"
        run:
            run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)

else:  # one ph.x run over all irreducible q-points (its own rule name: an MPI job, unlike the collect)

    rule dft_ph_all:
        input:
            structure=f"{DFT_DIR}/structure",
            relax=f"{DFT_DIR}/relax",
            scf=f"{DFT_DIR}/scf",
        output:
            dir=directory(f"{DFT_DIR}/ph"),
        log:
            f"{DFT_LOG}/ph.log",
        benchmark:
            f"{DFT_BENCH}/ph.tsv"
        threads: DFT_MPI_THREADS
        resources:
            mem_mb=8000,
            runtime=DFT_PH_RUNTIME_MIN,
            tasks=_mpi_tasks,
        conda:
            "../envs/qe.yaml"
        run:
            run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


def _dft_tc_inputs(wildcards):
    """Every step directory of the candidate (ph_init only in the split ph.x mode)."""
    steps = ["structure", "relax", "scf_fit", "scf", "ph", "q2r", "matdyn", "lambda"]
    if Q_PER_JOB:
        steps.insert(4, "ph_init")
    return {("lambda_" if s == "lambda" else s): f"results/dft/{wildcards.cid}/{s}" for s in steps}


rule dft_q2r:
    input:
        structure=f"{DFT_DIR}/structure",
        ph=f"{DFT_DIR}/ph",
    output:
        dir=directory(f"{DFT_DIR}/q2r"),
    log:
        f"{DFT_LOG}/q2r.log",
    benchmark:
        f"{DFT_BENCH}/q2r.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/qe.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


rule dft_matdyn:
    input:
        structure=f"{DFT_DIR}/structure",
        relax=f"{DFT_DIR}/relax",
        q2r=f"{DFT_DIR}/q2r",
    output:
        dir=directory(f"{DFT_DIR}/matdyn"),
    log:
        f"{DFT_LOG}/matdyn.log",
    benchmark:
        f"{DFT_BENCH}/matdyn.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/qe.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


rule dft_lambda:
    input:
        structure=f"{DFT_DIR}/structure",
        ph=f"{DFT_DIR}/ph",
    output:
        dir=directory(f"{DFT_DIR}/lambda"),
    log:
        f"{DFT_LOG}/lambda.log",
    benchmark:
        f"{DFT_BENCH}/lambda.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/qe.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)


rule dft_tc:
    input:
        unpack(_dft_tc_inputs),
    output:
        tc=f"{DFT_DIR}/tc.json",
        meta=f"{DFT_DIR}/metadata.json",
    log:
        f"{DFT_LOG}/tc.log",
    benchmark:
        f"{DFT_BENCH}/tc.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    run:
        run_dft_rule(rule, input, output, params, wildcards, resources, log, config, conda_env)
