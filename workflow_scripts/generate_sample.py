"""Rule sample_cdvae: one shard of Tc-optimised CDVAE samples (CIFs + manifest.csv)."""
import torch

from tcflow.generate import settings
from tcflow.generate.sample import sample_shard, shard_seed
from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "sample_cdvae") as log:
    torch.set_num_threads(snakemake.threads)
    cfg, seed, shard = snakemake.params.generate, snakemake.params.seed, int(snakemake.wildcards.shard)
    outdir = snakemake.output.shard
    model_dir = snakemake.input.model.rsplit("/", 1)[0]
    df = sample_shard(model_dir, snakemake.input.train, shard, outdir, settings.sample_settings(cfg),
                      settings.optimise_settings(cfg), settings.langevin_settings(cfg), seed=seed,
                      device=cfg["device"], log=log.info)
    log.info("shard %d: %d samples, %d structurally and %d compositionally valid", shard, len(df),
             int(df["struct_valid"].sum()), int(df["comp_valid"].sum()))
    atomic_write_json(f"{outdir}/metadata.json", run_metadata(
        "generate/sample", settings=cfg, seed=shard_seed(seed, shard),
        inputs=[snakemake.input.model, snakemake.input.train], shard=shard, n_samples=len(df)))
