"""Rule merge_samples: concatenate the shard manifests into results/generate/samples.csv."""
from tcflow.generate.sample import merge_manifests
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "merge_samples") as log:
    df = merge_manifests([f"{d}/manifest.csv" for d in snakemake.input.shards], snakemake.output.samples)
    log.info("%d samples from %d shards", len(df), len(snakemake.input.shards))
