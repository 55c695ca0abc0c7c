"""Every rule of rules/dft.smk: one step of a candidate's el-ph chain (tcflow.dft.job)."""
from tcflow.dft.job import main

main(snakemake)
