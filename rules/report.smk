# Aggregation of the per-candidate DFT records, the figures and the final report.
#   aggregate -> candidates.csv (+ the energy stage's hull.csv when energy.enabled)
#   figure_* -> results/report/figures/ (run level) and figures/candidates/<id>/ (per candidate)
#   report -> report.md, Table 1, funnel.csv, versions.json
# Figures and tables are report() outputs: `snakemake --report results/report/report.html` makes
# one self-contained HTML file (captions in rules/report/*.rst; `make run` calls it).
# No heavy imports here.

FIGURES = "results/report/figures"
GENERATED = config["candidates"]["source"] == "generate"
#: OPTIONAL INPUT, off on this branch: the energy stage's results/energy/hull.csv (rules/energy.smk)
#: is merged into candidates.csv by id when the config flag energy.enabled is true.
ENERGY_ENABLED = bool(config.get("energy", {}).get("enabled", False))
HULL_CSV = "results/energy/hull.csv"
#: run-level figures: name -> drawn only for generated candidates (Fig. 1b, Fig. 2 need samples)
RUN_FIGURES = {"fig1b_periodic_table": True, "fig2_structures": True, "fig3_tc": False, "funnel": False}


report: "report/workflow.rst"


# seconds of work each (Fig. 2 reads every sample's and training CIF: a job of its own on a cluster)
localrules:
    aggregate,
    report,
    figure_periodic_table,
    figure_tc,
    figure_funnel,
    figure_candidate,


#: the optional input of aggregate, fixed at parse time (see HULL_CSV)
HULL_INPUT = {"hull": HULL_CSV} if ENERGY_ENABLED else {}


def run_figures(wildcards=None):
    """The run-level figure PNGs this run draws (SVGs are written next to them)."""
    return [f"{FIGURES}/{name}.png" for name, gen_only in RUN_FIGURES.items() if GENERATED or not gen_only]


def candidate_figures(wildcards=None):
    """Every candidate's figure directory (a candidate whose DFT did not end ok: figures.json only)."""
    return expand(f"{FIGURES}/candidates/{{cid}}", cid=candidate_ids())


rule aggregate:
    # only tc waits for the checkpoint: the rest stays in the DAG before it
    input:
        tc=lambda wc: expand("results/dft/{cid}/tc.json", cid=candidate_ids()),
        candidates=CANDIDATES_DIR,
        table=CANDIDATES_TABLE,
        data=expand("results/data/{split}.csv", split=["train", "val", "test"]),
        **HULL_INPUT,
    output:
        csv=report("results/report/candidates.csv", caption="report/candidates.rst", category="4. Tables"),
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
        "figures": run_figures(),
    }
    if GENERATED:
        inputs["screened"] = "results/screen/screened.csv"
        inputs["metrics"] = "results/generate/metrics.json"
    return inputs


rule report:
    # candidate_figures waits for the checkpoint (a function of its own): the rest does not
    input:
        unpack(_report_inputs),
        candidate_figures=candidate_figures,
    output:
        md="results/report/report.md",
        table1_csv=report("results/report/table1.csv", caption="report/table1.rst", category="4. Tables"),
        table1_md="results/report/table1.md",
        funnel=report("results/report/funnel.csv", caption="report/funnel_csv.rst", category="4. Tables"),
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


# ----------------------------------------------------------------------------- figures
# One script for every figure rule (workflow_scripts/report_figure.py -> tcflow.report.figjobs).


def _figure_inputs(wildcards):
    inputs = {"summary": "results/report/candidates.csv", "train": "results/data/train.csv",
              "candidates_table": CANDIDATES_TABLE}
    if GENERATED:
        inputs.update(samples="results/generate/samples.csv", screened="results/screen/screened.csv")
    return inputs


rule figure_periodic_table:
    input:
        samples="results/generate/samples.csv",
    output:
        png=report(f"{FIGURES}/fig1b_periodic_table.png", caption="report/fig1b.rst", category="1. Generation"),
        svg=f"{FIGURES}/fig1b_periodic_table.svg",
    log:
        "logs/report/figure_periodic_table.log",
    benchmark:
        "logs/benchmarks/report/figure_periodic_table.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        threshold_K=config["screen"]["tc_min_K"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_figure.py"


rule figure_structures:
    input:
        samples="results/generate/samples.csv",
        train="results/data/train.csv",
    output:
        png=report(f"{FIGURES}/fig2_structures.png", caption="report/fig2.rst", category="1. Generation"),
        svg=f"{FIGURES}/fig2_structures.svg",
    log:
        "logs/report/figure_structures.log",
    benchmark:
        "logs/benchmarks/report/figure_structures.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_figure.py"


rule figure_tc:
    input:
        unpack(_figure_inputs),
    output:
        png=report(f"{FIGURES}/fig3_tc.png", caption="report/fig3.rst", category="2. Funnel and Tc"),
        svg=f"{FIGURES}/fig3_tc.svg",
    log:
        "logs/report/figure_tc.log",
    benchmark:
        "logs/benchmarks/report/figure_tc.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_figure.py"


rule figure_funnel:
    input:
        unpack(_figure_inputs),
    output:
        png=report(f"{FIGURES}/funnel.png", caption="report/funnel.rst", category="2. Funnel and Tc"),
        svg=f"{FIGURES}/funnel.svg",
    log:
        "logs/report/figure_funnel.log",
    benchmark:
        "logs/benchmarks/report/figure_funnel.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        tc_min_K=config["report"]["tc_min_K"],
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_figure.py"


rule figure_candidate:
    input:
        tc="results/dft/{cid}/tc.json",
        matdyn="results/dft/{cid}/matdyn",
        dispersion="results/dft/{cid}/dispersion",
    output:
        dir=report(directory(f"{FIGURES}/candidates/{{cid}}"), patterns=["{name}.png"],
                   caption="report/candidate.rst", category="3. Candidates", subcategory="{cid}"),
    log:
        "logs/report/figure_candidate/{cid}.log",
    benchmark:
        "logs/benchmarks/report/figure_candidate/{cid}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/ml.yaml"
    script:
        "../workflow_scripts/report_figure.py"
