"""Rule aggregate: one table of every candidate's DFT record, with novelty."""
from tcflow.report.aggregate import aggregate
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "aggregate") as log:
    df = aggregate(snakemake.input.tc, snakemake.input.candidates, snakemake.input.table,
                   snakemake.input.data, snakemake.output.csv,
                   hull_csv=snakemake.input.get("hull"))  # optional: energy.enabled
    log.info("%d candidates aggregated", len(df))
