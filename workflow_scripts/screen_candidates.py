"""Checkpoint candidates: the structures that enter the DFT stage."""
from tcflow.io import atomic_dir
from tcflow.screen.candidates import select_candidates
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "candidates") as log:
    par, out = snakemake.params, snakemake.output
    kw = {"cif_dir": par.path} if par.source == "cif_dir" else {"survivors_csv": snakemake.input.survivors}
    with atomic_dir(out.dir) as tmp:
        res = select_candidates(tmp, out.table, out.rejected, max_count=par.max, **kw)
    for row in res["rejected_rows"]:
        log.warning("candidate %s rejected: %s", row["id"], row["reason"])
    log.info("%d candidates accepted, %d rejected", res["accepted"], res["rejected"])
