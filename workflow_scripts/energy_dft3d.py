"""Rule fetch_dft_3d: the JARVIS-DFT dft_3d entries near JARVIS's hull, as competing-phase structures."""
from tcflow.energy.dft3d import build_table
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "fetch_dft_3d") as log:
    p = snakemake.params
    meta = build_table(snakemake.output.table, p.file, p.mirror, float(p.max_ehull))
    log.info("dft_3d (%s, %s, sha256 %s): %d entries kept (2+ elements, ehull <= %g eV/atom); left out: %s",
             meta["origin"], meta["archive"], meta["sha256"][:12], meta["kept"], p.max_ehull, meta["skipped"])
