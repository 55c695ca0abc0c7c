"""Rule energy_phase_cif: the structure of one phase (element, user reference, JARVIS-SC or dft_3d row)."""
from tcflow.energy.phases import phase_cif_text
from tcflow.io import atomic_write_text
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], f"energy_phase_cif ({snakemake.wildcards.phase})"):
    splits = [f"results/data/{s}.csv" for s in ("train", "val", "test")]
    atomic_write_text(snakemake.output.cif, phase_cif_text(snakemake.wildcards.phase, splits, snakemake.config["energy"],
                                                                snakemake.input.get("dft3d")))
