# tcflow: inverse design of conventional superconductors.
#   data -> train_cdvae -> sample_cdvae (shards) -> merge_samples -> screen -> candidates (checkpoint)
#        -> per-candidate Quantum ESPRESSO el-ph chain -> aggregate -> report
#        (energy.enabled: elemental references + competing phases -> results/energy/hull.csv)
# Run:   snakemake --cores 2                      (embedded default, config/config.yaml)
#        snakemake --profile profiles/slurm --configfile config/paper.yaml
import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/generate.smk"
include: "rules/screen.smk"
include: "rules/dft.smk"
include: "rules/energy.smk"
include: "rules/report.smk"


rule all:
    input:
        "results/report/report.md",
        "results/report/candidates.csv",
        # formation energy and hull (rules/energy.smk), when energy.enabled
        ["results/energy/hull.csv"] if config["energy"]["enabled"] else [],
    default_target: True



# The end of a run lists the candidates that did not end with a Tc, and why (a local run keeps
# going past a failed candidate: profiles/local sets keep-going).
onsuccess:
    from tcflow.dft.summary import print_summary

    print_summary()


onerror:
    from tcflow.dft.summary import print_summary

    print_summary()
