"""Rule prepare_data: check and normalise the splits into results/data/ (Tc in K)."""
from pathlib import Path

from tcflow.data.prepare import prepare_splits
from tcflow.io import read_json
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "prepare_data") as log:
    origin = read_json(snakemake.input.meta)["origin"]
    manifest = prepare_splits(Path(snakemake.input.train).parent, Path(snakemake.output.manifest).parent,
                              snakemake.params.max_train, snakemake.params.seed, origin)
    for split, info in manifest["splits"].items():
        log.info("%s: %d rows, %d excluded", split, info["rows"], info["excluded"])
