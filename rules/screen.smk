# Screen stage and the candidate set. `candidates` is the checkpoint: which structures reach
# the DFT stage is known only once it has run.


localrules:
    candidates,


rule screen:
    input:
        samples="results/generate/samples.csv",
    output:
        screened="results/screen/screened.csv",
        survivors="results/screen/survivors.csv",
    log:
        "logs/screen/screen.log",
    benchmark:
        "logs/benchmarks/screen/screen.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        screen=config["screen"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/screen_samples.py"


def _candidate_sources(wildcards):
    """The survivors table, or the user's CIF files (so that adding one reruns the checkpoint)."""
    if config["candidates"]["source"] == "cif_dir":
        return {"cifs": sorted(str(p) for p in Path(config["candidates"]["path"]).glob("*.cif"))}
    return {"survivors": "results/screen/survivors.csv"}


checkpoint candidates:
    input:
        unpack(_candidate_sources),
    output:
        dir=directory(CANDIDATES_DIR),
        table=CANDIDATES_TABLE,
        rejected="results/screen/rejected.csv",
    log:
        "logs/screen/candidates.log",
    benchmark:
        "logs/benchmarks/screen/candidates.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        # not `only`: restricting the DFT runs must not redo the selection
        source=config["candidates"]["source"],
        path=config["candidates"]["path"],
        max=config["candidates"]["max"],
        max_atoms=config["candidates"]["max_atoms"],
        min_distance_A=config["candidates"]["min_distance_A"],
    conda:
        "../envs/ml.yaml"
    run:
        # in the Snakemake process (see profiles/default): its pymatgen import serves the DFT jobs
        # too; rejections go to the log and, one line each, to Snakemake's stderr
        from tcflow.screen.candidates import run_checkpoint

        run_checkpoint(params, input, output, log[0])
