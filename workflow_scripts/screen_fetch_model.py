"""Rule fetch_alignn_model: download a pretrained ALIGNN model by name (submit host)."""
from pathlib import Path

from tcflow.screen.pretrained import fetch
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "fetch_alignn_model") as log:
    name = snakemake.wildcards.name
    key = next((f"screen.models.{p}.pretrained" for p in ("tc", "gap")
                if snakemake.config["screen"]["models"][p].get("pretrained") == name), "screen.models.pretrained")
    out = Path(snakemake.output.dir)
    fetch(name, out.parent, key)
    log.info("%s: %s", name, out)
