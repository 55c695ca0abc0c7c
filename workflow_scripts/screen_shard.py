"""Rule screen_shard: the ALIGNN screen of one shard of the samples."""
import torch

from tcflow.io import atomic_dir, read_json
from tcflow.screen.alignn_screen import screen_shard
from tcflow.screen.model import ensemble_dir
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "screen_shard") as log:
    torch.set_num_threads(snakemake.threads)
    inp = snakemake.input
    tc = ensemble_dir(inp.tc)
    gap = inp.get("gap")
    cal = read_json(inp.calibration[0]) if inp.calibration else None
    with atomic_dir(snakemake.output.shard) as tmp:
        screen_shard(inp.samples, int(snakemake.wildcards.shard), snakemake.params.num_shards, tmp,
                     snakemake.params.screen, tc, gap, log=log.info, publish_dir=snakemake.output.shard,
                     calibration=cal)
