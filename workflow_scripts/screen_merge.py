"""Rule screen (alignn): merge the shards, de-duplicate, rank and cap the survivors."""
from tcflow.screen.merge import merge_shards
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "screen") as log:
    out = snakemake.output
    merge_shards(snakemake.input.samples, list(snakemake.input.shards), out.predictions, out.screened,
                 out.survivors, snakemake.params.screen, log=log.info)
