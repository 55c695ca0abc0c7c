# DFT electron-phonon stage (Quantum ESPRESSO), one chain per candidate {cid}. The rules follow
# from the step list tcflow.dft.chain.STEPS (name, rule, QE code, inputs, record): one rule per
# step, each an ordinary script: job running tcflow.dft.job in its own process.
#   structure -> relax -> scf_fit (la2F, dense k; insulator gate) -> scf (coarse k)
#   -> ph (rule dft_ph_all: one ph.x job over all q; dft.ph_jobs = 1) or, split, ph_init
#      -> ph_q/{chunk} (dft.ph_jobs jobs sharing the q-points out at run time) -> ph (collect)
# Static past the candidates checkpoint: no per-candidate checkpoint (a chunk with no q-point left
# finishes at once).
#   -> q2r -> matdyn (a2F, stability gate) -> lambda (lambda.x) -> tc.json
#   with a second dense grid (protocol `converged`): relax -> scf_fit2 (la2F on it); ph -> elph2 (ph.x
#   trans=.false. from the saved dvscf) -> q2r2 -> matdyn2 -> tc.json (sigma where the grids agree);
#   `converged_dos` (broadening_rule dos_rescaled): scf_fit2 only, its N(E_F) rescales alpha2F
# QE is launched as `{resources.mpi} -n {resources.tasks}` (mpirun here, srun in profiles/slurm);
# pw.x/ph.x runtime grows with the attempt, and a walltime-stopped run resumes on the next one.
# No heavy imports here.
from tcflow.dft import chain as dft_chain  # (not `chain`: the Snakefile shares Snakemake's namespace)
from tcflow.dft.protocol import get_protocol, has_second_grid, needs_elph2  # light (yaml, jsonschema)

# fail at parse time, in one line naming the key, on an unknown protocol or a bad override
_DFT_PROTO = get_protocol(config["dft"]["protocol"], config["dft"]["overrides"])
#: a protocol with a second la2F grid adds scf_fit2; with broadening_rule two_grids also
#: elph2 -> q2r2 -> matdyn2 (dos_rescaled needs only the grid's band energies)
SECOND_GRID = has_second_grid(_DFT_PROTO)
ELPH2 = needs_elph2(_DFT_PROTO)

#: ph.x jobs per candidate: 1 = one ph.x job over all q-points; n >= 2 = ph_init + n ph_q jobs
PH_JOBS = config["dft"]["ph_jobs"]
DFT_DIR = "results/dft/{cid}"
DFT_LOG = "logs/dft/{cid}"
DFT_BENCH = "logs/benchmarks/dft/{cid}"
#: portable default: MPI ranks of a QE job on one machine (a cluster profile sets tasks per rule)
DFT_MPI_THREADS = 2
#: what changes the physics: a change reruns the candidate's chain. Operational keys (qe_bin_dir,
#: max_seconds_fraction, min_free_disk_gb, pools, cleanup) are left out on purpose.
DFT_PHYSICS = {k: config["dft"][k] for k in ("protocol", "overrides", "pseudo_dir", "pseudo_map")}


wildcard_constraints:
    chunk=r"\d+",


#: the candidate's dft.ph_jobs ph_q directories (each reads its q-points from ph_init)
PH_Q_DIRS = [dft_chain.step_dir(DFT_DIR, dft_chain.BY_RULE["dft_ph_q"], c) for c in range(1, PH_JOBS + 1)]


def _step_inputs(step):
    """Inputs of a step's rule: its upstream step directories as {cid} patterns (static: no input
    function to call per job); none for the first step (its inputs: _first_step_inputs)."""
    return {u: (PH_Q_DIRS if u == "ph_q" else f"{DFT_DIR}/{u}") for u in step.inputs}


def _first_step_inputs(wildcards):
    """Inputs of the first step: the candidate CIF (waits for the checkpoint), plus the default
    pseudopotential directory unless dft.pseudo_dir is set."""
    inp = candidate_input(wildcards)
    if not config["dft"]["pseudo_dir"]:
        inp["pseudo"] = PSEUDO_DIR
    return inp


def _dft_resources(step):
    """Portable resources of a step's rule: memory, a walltime (min) that grows with the attempt
    (a walltime-stopped pw.x/ph.x resumes with more), and for MPI steps the launcher and its
    ranks (`{mpi} -n {tasks}`: one rank per thread here; profiles/slurm sets srun and tasks)."""
    res = {"mem_mb": step.mem_mb, "runtime": lambda wildcards, attempt: step.runtime_min * attempt}
    if step.mpi:
        res.update(mpi="mpirun", tasks=lambda wildcards, threads: threads)
    return res


for _dft_step in dft_chain.chain(PH_JOBS, SECOND_GRID, ELPH2):
    # only the first step needs an input function (it waits for the checkpoint)
    _dft_in_fn = [] if _dft_step.inputs else [unpack(_first_step_inputs)]
    _dft_out = dft_chain.step_dir(DFT_DIR, _dft_step, "{chunk}")
    _dft_name = _dft_step.name + ("/{chunk}" if _dft_step.chunked else "")
    rule:
        name:
            _dft_step.rule
        input:
            *_dft_in_fn,
            **_step_inputs(_dft_step),
        output:
            dir=directory(_dft_out),
        log:
            f"{DFT_LOG}/{_dft_name}.log",
        benchmark:
            f"{DFT_BENCH}/{_dft_name}.tsv"
        threads: DFT_MPI_THREADS if _dft_step.mpi else 1
        resources:
            **_dft_resources(_dft_step),
        params:
            dft=DFT_PHYSICS if _dft_step.name == "structure" else {},
        conda:
            "../envs/qe.yaml" if _dft_step.code else "../envs/ml.yaml"
        script:
            "../workflow_scripts/dft_step.py"


#: every step directory of the candidate (per-chunk ph.x directories through `ph`)
DFT_TC_INPUTS = {("lambda_" if s.name == "lambda" else s.name): f"{DFT_DIR}/{s.name}"
                 for s in dft_chain.chain(PH_JOBS, SECOND_GRID, ELPH2) if not s.chunked}


rule dft_tc:
    input:
        **DFT_TC_INPUTS,
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
    script:
        "../workflow_scripts/dft_step.py"


# The report's phonon dispersion along a high-symmetry path (tcflow.dft.steps.dispersion): one
# cheap matdyn.x run from q2r's force constants after tc.json, under the step contract (staging
# directory renamed on success). Outside the chain: tc.json never waits for it, a candidate whose
# DFT did not end ok records that and runs nothing, and a matdyn.x failure is recorded in
# dispersion.json, not raised (the other candidates and the report go on).
rule dft_dispersion:
    input:
        structure=f"{DFT_DIR}/structure",
        relax=f"{DFT_DIR}/relax",
        q2r=f"{DFT_DIR}/q2r",
        tc=f"{DFT_DIR}/tc.json",
    output:
        dir=directory(f"{DFT_DIR}/dispersion"),
    log:
        f"{DFT_LOG}/dispersion.log",
    benchmark:
        f"{DFT_BENCH}/dispersion.tsv"
    threads: 1
    resources:
        **_dft_resources(dft_chain.DISPERSION),
    conda:
        "../envs/qe.yaml"
    script:
        "../workflow_scripts/dft_step.py"
