"""Rule fetch_data: fill resources/data/jarvis_supercon/ from the mirror or jarvis-tools."""
from pathlib import Path

from tcflow.data.fetch import fetch_dataset
from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "fetch_data") as log:
    cfg = snakemake.params.data
    out_dir = Path(snakemake.output.train).parent
    origin = fetch_dataset(cfg["mirror"], cfg["source"], out_dir, cfg["split_fractions"], snakemake.params.seed)
    log.info("dataset from %s", origin)
    atomic_write_json(snakemake.output.meta, run_metadata("fetch_data", cfg, snakemake.params.seed, origin=origin))
