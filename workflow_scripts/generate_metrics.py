"""Rule generate_metrics: validity, coverage, distribution distances, space groups, Tc."""
from pathlib import Path

import pandas as pd

from tcflow.generate import settings
from tcflow.generate.metrics import generation_metrics
from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "generate_metrics") as log:
    cfg = snakemake.params.generate
    samples = pd.read_csv(snakemake.input.samples, dtype={"id": str, "cif": str})
    # fingerprints of the test/training splits are cached by file md5 next to metrics.json
    cache_dir = Path(snakemake.output.metrics).parent / "fingerprints"
    metrics = generation_metrics(samples, snakemake.input.test, settings.metric_settings(cfg),
                                 train_structs=snakemake.input.train, cache_dir=cache_dir, log=log.info)
    metrics["decoder_evaluations_per_sample"] = (cfg["langevin"]["num_levels"]
                                                 * cfg["langevin"]["steps_per_level"])
    metrics["provenance"] = run_metadata("generate/metrics", settings=cfg, seed=snakemake.params.seed,
                                         inputs=[snakemake.input.samples, snakemake.input.test,
                                                 snakemake.input.train])
    atomic_write_json(snakemake.output.metrics, metrics)
    log.info("validity %.3f/%.3f COV-R %.3f COV-P %.3f (%s fingerprints, %s rule, cutoffs %g/%g; "
             "%d fingerprint failures)", metrics["struct_validity"], metrics["comp_validity"],
             metrics["cov_recall"], metrics["cov_precision"], metrics["cov_fingerprint"], metrics["cov_rule"],
             metrics["cov_struct_cutoff"], metrics["cov_comp_cutoff"], metrics["fingerprint_failures"])
