"""Rule train_tc_model: train (or resume) one member of the ALIGNN Tc ensemble."""
import shutil
from pathlib import Path

import torch

from tcflow.io import atomic_dir, atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.screen.train_tc import settings_from_config, train_member
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "train_tc_model") as log:
    torch.set_num_threads(snakemake.threads)
    cfg, m = snakemake.params.train, int(snakemake.wildcards.m)
    seed = snakemake.params.seed + m
    ts, gs = settings_from_config(cfg)
    # the resume point lives outside the output directory, which Snakemake removes before a rerun
    state = Path(snakemake.params.state_dir)
    summary = train_member(snakemake.input.train, snakemake.input.val, state, ts, gs, seed, log=log.info)
    with atomic_dir(snakemake.output.member) as tmp:
        for f in ("config.json", "best_model.pt", "loss.csv", "loss.png"):
            shutil.copy2(state / f, tmp / f)
        atomic_write_json(tmp / "metadata.json", run_metadata(
            "screen/train_tc_model", settings=cfg, seed=seed,
            inputs=[snakemake.input.train, snakemake.input.val], summary=summary))
    log.info("done: %s", summary)
