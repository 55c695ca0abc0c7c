"""Rules energy_structure, energy_relax, energy_scf_fit: one step of a phase's chain (tcflow.energy.job)."""
from tcflow.energy.job import main

main(snakemake)
