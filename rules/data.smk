# Data stage: resources/ from the local mirror (or the public sources), normalised into results/data/.
# The fetch rules run on the submit host (compute nodes often have no internet).


localrules:
    fetch_data,
    fetch_pseudos,


rule fetch_data:
    output:
        train="resources/data/jarvis_supercon/train.csv",
        val="resources/data/jarvis_supercon/val.csv",
        test="resources/data/jarvis_supercon/test.csv",
        meta="resources/data/jarvis_supercon/metadata.json",
    log:
        "logs/data/fetch_data.log",
    benchmark:
        "logs/benchmarks/data/fetch_data.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        data=config["data"],
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/data_fetch.py"


rule prepare_data:
    input:
        train="resources/data/jarvis_supercon/train.csv",
        val="resources/data/jarvis_supercon/val.csv",
        test="resources/data/jarvis_supercon/test.csv",
        meta="resources/data/jarvis_supercon/metadata.json",
    output:
        train="results/data/train.csv",
        val="results/data/val.csv",
        test="results/data/test.csv",
        manifest="results/data/manifest.json",
    log:
        "logs/data/prepare_data.log",
    benchmark:
        "logs/benchmarks/data/prepare_data.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        max_train=config["data"]["max_train"],
        seed=config["seed"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/data_prepare.py"


rule fetch_pseudos:
    output:
        dir=directory(PSEUDO_DIR),
    log:
        "logs/data/fetch_pseudos.log",
    benchmark:
        "logs/benchmarks/data/fetch_pseudos.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        data=config["data"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/data_pseudos.py"
