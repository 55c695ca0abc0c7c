"""Rule train_cdvae: train (or resume) the CDVAE; the final model is model.pt."""
import torch

from tcflow.generate import settings
from tcflow.generate.train import train
from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "train_cdvae") as log:
    torch.set_num_threads(snakemake.threads)
    cfg, seed = snakemake.params.generate, snakemake.params.seed
    outdir = snakemake.output.model.rsplit("/", 1)[0]
    summary = train(snakemake.input.train, snakemake.input.val, outdir, settings.hparams(cfg),
                    settings.train_settings(cfg), seed=seed, device=cfg["device"], log=log.info)
    log.info("done: %s", summary)
    atomic_write_json(snakemake.output.meta, run_metadata(
        "generate/train", settings=cfg, seed=seed,
        inputs=[snakemake.input.train, snakemake.input.val], summary=summary))
