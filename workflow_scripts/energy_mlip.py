"""Rule energy_mlip: the MLIP columns of the hull (CHGNet vs pymatgen's shipped MP entries)."""
from pathlib import Path

from tcflow.energy.mlip import mlip_rows, write_mlip
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "energy_mlip") as log:
    cands = [(Path(f).stem, Path(f)) for f in snakemake.input.cifs]
    rows = mlip_rows(cands, snakemake.params.mode, snakemake.input.get("predictions"))
    write_mlip(rows, snakemake.output.csv)
    log.info("%d of %d candidates with an MLIP hull", sum(r["mlip_status"] == "ok" for r in rows), len(rows))
