"""Checkpoint energy_phases: which references and competing phases each candidate's hull needs."""
from pathlib import Path

from tcflow.energy.phases import plan, write_plan
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "energy_phases") as log:
    cands = [(Path(f).stem, Path(f)) for f in snakemake.input.cifs]
    pseudo_dir = snakemake.params.dft["pseudo_dir"] or snakemake.input.get("pseudo")
    phases, systems = plan(cands, list(snakemake.input.splits), snakemake.params.energy, snakemake.params.dft, pseudo_dir,
                           snakemake.input.get("dft3d"))
    write_plan(phases, systems, snakemake.output.phases, snakemake.output.systems)
    for row in systems:
        if row["status"] != "ok":
            log.warning("energy: %s: %s", row["id"], row["status"])
    log.info("%d candidates, %d phase chains", len(systems), len(phases))
