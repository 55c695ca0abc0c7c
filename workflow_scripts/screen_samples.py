"""Rule screen (screen.method: property_head): keep the samples worth a DFT calculation.
The alignn screen has its own rules (rules/screen.smk: screen_shard, screen -> screen_merge.py)."""
from tcflow.screen.property_head import screen_samples
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "screen") as log:
    cfg = snakemake.params.screen
    if cfg["method"] != "property_head":
        raise RuntimeError(
            f"screen.method {cfg['method']!r}: this script is the property_head screen only"
        )
    n, kept = screen_samples(snakemake.input.samples, snakemake.output.screened, snakemake.output.survivors, cfg)
    log.info("%d of %d samples pass the screen", kept, n)
