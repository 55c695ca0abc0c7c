"""Rule screen: keep the samples worth a DFT calculation."""
from tcflow.screen.property_head import screen_samples
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "screen") as log:
    cfg = snakemake.params.screen
    if cfg["method"] != "property_head":
        raise RuntimeError(
            f"screen.method {cfg['method']!r}: ALIGNN screening is not built yet; "
            "use screen.method: property_head or candidates.source: cif_dir"
        )
    n, kept = screen_samples(snakemake.input.samples, snakemake.output.screened, snakemake.output.survivors, cfg)
    log.info("%d of %d samples pass the screen", kept, n)
