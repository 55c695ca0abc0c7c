# Aggregation of the per-candidate DFT records and the final report.


localrules:
    aggregate,
    report,


rule aggregate:
    input:
        tc=lambda wc: expand("results/dft/{cid}/tc.json", cid=candidate_ids()),
        candidates=CANDIDATES_DIR,
        table=CANDIDATES_TABLE,
        data=expand("results/data/{split}.csv", split=["train", "val", "test"]),
    output:
        csv="results/report/candidates.csv",
    log:
        "logs/report/aggregate.log",
    benchmark:
        "logs/benchmarks/report/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_aggregate.py"


def _report_inputs(wildcards):
    inputs = {
        "summary": "results/report/candidates.csv",
        "manifest": "results/data/manifest.json",
        "candidates": CANDIDATES_DIR,
        "rejected": "results/screen/rejected.csv",
        "candidates_table": CANDIDATES_TABLE,
    }
    if config["candidates"]["source"] == "generate":
        inputs["screened"] = "results/screen/screened.csv"
        inputs["metrics"] = "results/generate/metrics.json"
    return inputs


rule report:
    input:
        unpack(_report_inputs),
    output:
        md="results/report/report.md",
        table1_csv="results/report/table1.csv",
        table1_md="results/report/table1.md",
        funnel="results/report/funnel.csv",
        versions="results/versions.json",
    log:
        "logs/report/report.log",
    benchmark:
        "logs/benchmarks/report/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_write.py"
