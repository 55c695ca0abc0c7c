# Screen stage and the candidate set. `candidates` is the checkpoint: which structures reach
# the DFT stage is known only once it has run.


localrules:
    candidates,


SCREEN = config["screen"]

if SCREEN["method"] == "property_head":

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
            screen=SCREEN,
        conda:
            "../envs/ml.yaml"
        script:
            "../workflow_scripts/screen_samples.py"

else:
    TC_SRC = SCREEN["models"]["tc"]
    GAP_SRC = SCREEN["models"]["gap"]
    TC_TRAIN = TC_SRC["train"]
    TC_MODEL_DIR = "results/screen/tc_model"

    def _model_dir(src):
        """The model directory of a property source: checkpoint, pretrained cache, or None."""
        if src.get("checkpoint"):
            return src["checkpoint"]
        if src.get("pretrained"):
            return f"resources/models/alignn/{src['pretrained']}"
        return None

    def _screen_models(wildcards):
        inputs = {}
        tc = _model_dir(TC_SRC)
        inputs["tc"] = tc if tc else expand(f"{TC_MODEL_DIR}/member_{{m}}", m=range(TC_TRAIN["ensemble"]))
        gap = _model_dir(GAP_SRC)
        if gap:
            inputs["gap"] = gap
        return inputs

    rule train_tc_model:
        input:
            train="results/data/train.csv",
            val="results/data/val.csv",
        output:
            member=directory(f"{TC_MODEL_DIR}/member_{{m}}"),
        log:
            "logs/screen/train_tc_model_{m}.log",
        benchmark:
            "logs/benchmarks/screen/train_tc_model_{m}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=240,
        params:
            train=TC_TRAIN,
            seed=config["seed"],
            state_dir=lambda wc: f"results/screen/tc_model_state/member_{wc.m}",
        conda:
            "../envs/ml.yaml"
        script:
            "../workflow_scripts/screen_train_tc.py"

    localrules:
        fetch_alignn_model,

    rule fetch_alignn_model:
        output:
            dir=directory("resources/models/alignn/{name}"),
        log:
            "logs/screen/fetch_alignn_model_{name}.log",
        benchmark:
            "logs/benchmarks/screen/fetch_alignn_model_{name}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        conda:
            "../envs/ml.yaml"
        script:
            "../workflow_scripts/screen_fetch_model.py"

    #: the Tc cut calibrated on the validation split (screen.tc_recall_target), or the fixed cut
    TC_CALIBRATION = "results/screen/tc_calibration.json" if SCREEN["tc_recall_target"] is not None else None

    if TC_CALIBRATION:

        rule calibrate_tc:
            input:
                unpack(lambda wc: {"tc": _screen_models(wc)["tc"]}),
                val="results/data/val.csv",
            output:
                calibration=TC_CALIBRATION,
            log:
                "logs/screen/calibrate_tc.log",
            benchmark:
                "logs/benchmarks/screen/calibrate_tc.tsv"
            threads: 1
            resources:
                mem_mb=4000,
                runtime=30,
            params:
                screen=SCREEN,
            conda:
                "../envs/ml.yaml"
            script:
                "../workflow_scripts/screen_calibrate_tc.py"

    rule screen_shard:
        input:
            unpack(_screen_models),
            samples="results/generate/samples.csv",
            calibration=[TC_CALIBRATION] if TC_CALIBRATION else [],
        output:
            shard=directory("results/screen/shards/{shard}"),
        log:
            "logs/screen/screen_shard_{shard}.log",
        benchmark:
            "logs/benchmarks/screen/screen_shard_{shard}.tsv"
        threads: 1
        resources:
            mem_mb=6000,
            runtime=240,
        params:
            screen=SCREEN,
            num_shards=SCREEN["num_shards"],
        conda:
            "../envs/ml.yaml"
        script:
            "../workflow_scripts/screen_shard.py"

    rule screen:
        input:
            samples="results/generate/samples.csv",
            shards=expand("results/screen/shards/{shard}", shard=range(SCREEN["num_shards"])),
        output:
            predictions="results/screen/predictions.csv",
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
            screen=SCREEN,
        conda:
            "../envs/ml.yaml"
        script:
            "../workflow_scripts/screen_merge.py"


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
