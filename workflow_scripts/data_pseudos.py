"""Rule fetch_pseudos: copy (or download) the pseudopotential family into resources/pseudo/."""
from tcflow.data.fetch import fetch_pseudos
from tcflow.io import atomic_dir
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "fetch_pseudos") as log:
    cfg = snakemake.params.data
    with atomic_dir(snakemake.output.dir) as tmp:
        origin = fetch_pseudos(cfg["mirror"], cfg["pseudo_family"], tmp,
                               cfg["pseudo_archive_url"], cfg["pseudo_json_url"])
    log.info("pseudopotentials %s from %s", cfg["pseudo_family"], origin)
