"""Rule generate_metrics: validity, coverage, distribution distances, space groups, Tc."""
import pandas as pd

from tcflow.generate import settings
from tcflow.generate.metrics import generation_metrics, read_structures
from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "generate_metrics") as log:
    cfg = snakemake.params.generate
    samples = pd.read_csv(snakemake.input.samples, dtype={"id": str, "cif": str})
    metrics = generation_metrics(samples, read_structures(snakemake.input.test),
                                 settings.metric_settings(cfg),
                                 train_structs=read_structures(snakemake.input.train))
    metrics["decoder_evaluations_per_sample"] = (cfg["langevin"]["num_levels"]
                                                 * cfg["langevin"]["steps_per_level"])
    metrics["provenance"] = run_metadata("generate/metrics", settings=cfg, seed=snakemake.params.seed,
                                         inputs=[snakemake.input.samples, snakemake.input.test])
    atomic_write_json(snakemake.output.metrics, metrics)
    log.info("validity %.3f/%.3f COV-R %.3f COV-P %.3f", metrics["struct_validity"],
             metrics["comp_validity"], metrics["cov_recall"], metrics["cov_precision"])
