"""Rule energy_hull: results/energy/hull.csv (DFT hull per candidate + MLIP columns) and metadata.json."""
from tcflow.energy.table import hull_rows, write_hull
from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "energy_hull") as log:
    rows = hull_rows(snakemake.input.systems, "results/dft", "results/energy/phases", snakemake.input.get("mlip"))
    write_hull(rows, snakemake.output.hull)
    for r in rows:
        log.info("%s: %s", r["id"], r["hull_status"] if r["hull_status"] != "ok" else
                 f"E_form {r['e_form_eV_atom']:.4f} eV/atom, E_hull {r['e_hull_eV_atom']:.4f} eV/atom")
    settings = {"energy": dict(snakemake.params.energy), "dft": dict(snakemake.params.dft)}
    atomic_write_json(snakemake.output.meta, run_metadata(
        "energy", settings, snakemake.params.seed, [snakemake.input.systems, snakemake.input.phases],
        n_candidates=len(rows), n_ok=sum(r["hull_status"] == "ok" for r in rows)))
