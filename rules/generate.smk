# Generate stage: CDVAE training, Tc-optimised sampling in shards, merge, metrics.
# No heavy imports here (parse time); the work is in tcflow/generate via workflow_scripts/.

GEN = config["generate"]
GEN_MODEL_DIR = "results/generate/model"
# GPU jobs only when the device is forced to cuda; cluster profiles set gpu per rule.
GEN_GPU = 1 if GEN["device"] == "cuda" else 0
# Each rule gets only the keys it depends on, so that e.g. a new Langevin setting reruns the
# sampling but never retrains the (protected) model.
GEN_TRAIN = {k: GEN[k] for k in ("device", "model", "train")}
GEN_SAMPLE = {k: GEN[k] for k in ("device", "sample", "optimise", "langevin")}
GEN_METRICS = {k: GEN[k] for k in ("metrics", "langevin")}


rule train_cdvae:
    input:
        train="results/data/train.csv",
        val="results/data/val.csv",
    output:
        model=protected(f"{GEN_MODEL_DIR}/model.pt"),
        hparams=f"{GEN_MODEL_DIR}/hparams.json",
        scalers=f"{GEN_MODEL_DIR}/scalers.json",
        loss_csv=f"{GEN_MODEL_DIR}/loss.csv",
        loss_png=f"{GEN_MODEL_DIR}/loss.png",
        meta=f"{GEN_MODEL_DIR}/metadata.json",
    log:
        "logs/generate/train_cdvae.log",
    benchmark:
        "logs/benchmarks/generate/train_cdvae.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=GEN_GPU,
    params:
        generate=GEN_TRAIN,
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/generate_train.py"


rule sample_cdvae:
    input:
        model=f"{GEN_MODEL_DIR}/model.pt",
        train="results/data/train.csv",
    output:
        shard=directory("results/generate/shards/{shard}"),
    log:
        "logs/generate/sample_{shard}.log",
    benchmark:
        "logs/benchmarks/generate/sample_{shard}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GEN_GPU,
    params:
        generate=GEN_SAMPLE,
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/generate_sample.py"


rule merge_samples:
    input:
        shards=expand("results/generate/shards/{shard}", shard=range(GEN["sample"]["num_shards"])),
    output:
        samples="results/generate/samples.csv",
    log:
        "logs/generate/merge_samples.log",
    benchmark:
        "logs/benchmarks/generate/merge_samples.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/generate_merge.py"


rule generate_metrics:
    input:
        samples="results/generate/samples.csv",
        test="results/data/test.csv",
        train="results/data/train.csv",
    output:
        metrics="results/generate/metrics.json",
    log:
        "logs/generate/generate_metrics.log",
    benchmark:
        "logs/benchmarks/generate/generate_metrics.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        generate=GEN_METRICS,
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/generate_metrics.py"
