# Formation energy and energy above the hull (docs/energy.md).
#   checkpoint energy_phases (once per run: which elemental references and competing phases each
#   candidate's chemical system needs, at which cutoffs) -> per phase and cutoff pair {ecut}:
#   energy_structure -> energy_relax -> energy_scf_fit (the DFT stage's own steps, results/energy/
#   phases/{ecut}/{phase}/) -> energy_hull (results/energy/hull.csv, with energy_mlip's columns).
# A phase's CIF (energy_phase_cif) depends on its id alone, so a new candidate reruns the plan
# and the hull, never a phase already computed. No heavy imports here.
from tcflow.energy import steps as energy_steps
from tcflow.energy.phases import ELEMENT_PREFIX, USER_PREFIX, read_systems

ENERGY = config["energy"]
DATA_SPLITS = [f"results/data/{s}.csv" for s in ("train", "val", "test")]
ENERGY_PHASE = "results/energy/phases/{ecut}/{phase}"
ENERGY_LOG = "logs/energy/{ecut}/{phase}"
ENERGY_BENCH = "logs/benchmarks/energy/{ecut}/{phase}"
ENERGY_PACKAGED = Path(workflow.basedir) / "tcflow" / "energy" / "elements"
MLIP_ON = ENERGY["mlip"] != "none"
DFT3D_ON = ENERGY["dft_3d_phases"]
DFT3D_TABLE = "resources/jarvis/dft_3d_phases.csv"
SCREEN_PREDICTIONS = "results/screen/predictions.csv"


localrules:
    fetch_dft_3d,
    energy_phases,
    energy_phase_cif,
    energy_hull,


wildcard_constraints:
    ecut=r"\d+(?:\.\d+)?-\d+(?:\.\d+)?",
    phase=CID_PATTERN,


def _candidate_cifs(wildcards):
    return {"table": CANDIDATES_TABLE, "cifs": [f"{CANDIDATES_DIR}/{c}.cif" for c in candidate_ids()]}


def _plan_inputs(wildcards):
    inp = {**_candidate_cifs(wildcards), "splits": DATA_SPLITS}
    if not config["dft"]["pseudo_dir"]:
        inp["pseudo"] = PSEUDO_DIR
    if DFT3D_ON:
        inp["dft3d"] = DFT3D_TABLE
    return inp


rule fetch_dft_3d:
    # JARVIS-DFT dft_3d structures near JARVIS's hull (competing phases; structures only):
    # energy.dft_3d_file, the data mirror, or a download on the submit host.
    output:
        table=DFT3D_TABLE,
        meta="resources/jarvis/dft_3d_phases.json",
    log:
        "logs/energy/fetch_dft_3d.log",
    benchmark:
        "logs/benchmarks/energy/fetch_dft_3d.tsv"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        file=ENERGY["dft_3d_file"],
        mirror=config["data"]["mirror"],
        max_ehull=ENERGY["dft_3d_max_ehull_eV_atom"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/energy_dft3d.py"


checkpoint energy_phases:
    input:
        unpack(_plan_inputs),
    output:
        phases="results/energy/phases.csv",
        systems="results/energy/systems.csv",
    log:
        "logs/energy/energy_phases.log",
    benchmark:
        "logs/benchmarks/energy/energy_phases.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        energy={k: ENERGY[k] for k in ("max_phases_per_system", "max_phase_atoms", "reference_cifs", "element_cifs")},
        dft=DFT_PHYSICS,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/energy_phases.py"


def _phase_cif_inputs(wildcards):
    """What a phase's structure is built from: the user's CIF, a shipped element CIF, or the
    splits (and the dft_3d table)."""
    p = wildcards.phase
    if p.startswith(USER_PREFIX):
        return {"src": [f"{ENERGY['reference_cifs']}/{p[len(USER_PREFIX):]}.cif"]}
    if p.startswith(ELEMENT_PREFIX):
        el = p[len(ELEMENT_PREFIX):]
        user = Path(ENERGY["element_cifs"]) / f"{el}.cif" if ENERGY["element_cifs"] else None
        if user is not None and user.is_file():
            return {"src": [str(user)]}
        shipped = ENERGY_PACKAGED / f"{el}.cif"
        return {"src": [str(shipped)] if shipped.is_file() else []}
    return {"src": DATA_SPLITS, **({"dft3d": DFT3D_TABLE} if DFT3D_ON else {})}


rule energy_phase_cif:
    input:
        unpack(_phase_cif_inputs),
    output:
        cif="results/energy/structures/{phase}.cif",
    log:
        "logs/energy/structures/{phase}.log",
    benchmark:
        "logs/benchmarks/energy/structures/{phase}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        source=lambda wc: ENERGY["reference_cifs"] if wc.phase.startswith(USER_PREFIX) else (
            ENERGY["element_cifs"] if wc.phase.startswith(ELEMENT_PREFIX) else ""),
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/energy_cif.py"


def _energy_step_inputs(step):
    """A phase step's inputs, static (no function to call per job, as in rules/dft.smk): its CIF
    (first step, with the default pseudopotential directory unless dft.pseudo_dir is set), else
    its upstream step directories."""
    if step.inputs:
        return {u: f"{ENERGY_PHASE}/{u}" for u in step.inputs}
    inp = {"cif": "results/energy/structures/{phase}.cif"}
    if not config["dft"]["pseudo_dir"]:
        inp["pseudo"] = PSEUDO_DIR
    return inp


for _energy_step in energy_steps.STEPS:
    rule:
        name:
            _energy_step.rule
        input:
            **_energy_step_inputs(_energy_step),
        output:
            dir=directory(f"{ENERGY_PHASE}/{_energy_step.name}"),
        log:
            f"{ENERGY_LOG}/{_energy_step.name}.log",
        benchmark:
            f"{ENERGY_BENCH}/{_energy_step.name}.tsv"
        threads: DFT_MPI_THREADS if _energy_step.mpi else 1
        resources:
            **_dft_resources(_energy_step),
        params:
            dft=DFT_PHYSICS if _energy_step.name == "structure" else {},
        conda:
            "../envs/qe.yaml" if _energy_step.code else "../envs/ml.yaml"
        script:
            "../workflow_scripts/energy_step.py"


def _mlip_inputs(wildcards):
    inp = _candidate_cifs(wildcards)
    if config["screen"]["method"] == "alignn" and config["candidates"]["source"] == "generate":
        inp["predictions"] = SCREEN_PREDICTIONS
    return inp


rule energy_mlip:
    input:
        unpack(_mlip_inputs),
    output:
        csv="results/energy/mlip.csv",
    log:
        "logs/energy/energy_mlip.log",
    benchmark:
        "logs/benchmarks/energy/energy_mlip.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        mode=ENERGY["mlip"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/energy_mlip.py"


def _hull_inputs(wildcards):
    """The plan, every candidate's structure/relax/scf_fit and every phase's, and the MLIP table."""
    systems = checkpoints.energy_phases.get().output.systems
    inp = {"systems": systems, "phases": "results/energy/phases.csv", "chains": []}
    for row in read_systems(systems):
        if row["status"] != "ok":
            continue
        roots = [f"results/dft/{row['id']}"] + [f"results/energy/phases/{row['ecut']}/{p}" for p in row["phases"].split()]
        inp["chains"] += [f"{r}/{s}" for r in roots for s in ("structure", "relax", "scf_fit")]
    if MLIP_ON:
        inp["mlip"] = "results/energy/mlip.csv"
    return inp


rule energy_hull:
    input:
        unpack(_hull_inputs),
    output:
        hull="results/energy/hull.csv",
        meta="results/energy/metadata.json",
    log:
        "logs/energy/energy_hull.log",
    benchmark:
        "logs/benchmarks/energy/energy_hull.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        energy=ENERGY,
        dft=DFT_PHYSICS,
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/energy_hull.py"
