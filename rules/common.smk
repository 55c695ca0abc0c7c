# Shared by every stage: config validation, wildcard constraints, input functions.
# Keep it short; logic belongs in the tcflow package. No heavy imports here (parse time).
import os
import sys
from pathlib import Path

# The tcflow package lives next to the Snakefile: importable here and in every job's scripts.
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

from tcflow.config import check_config, check_config_files, CID_PATTERN
from tcflow.smk import forward_interrupt, mark_snakemake_process

# plain YAML only: a Python tag that Snakemake's loader let through stops here, naming file and tag
check_config_files(workflow.overwrite_configfiles)
check_config(config, Path(workflow.basedir) / "config" / "schema" / "config.schema.json")
# the jobs watch this process: if it is killed, they stop their QE runs (tcflow.dft.job)
mark_snakemake_process()
# a SIGINT to this process alone (not a terminal's Ctrl-C) reaches the running jobs too
forward_interrupt()


wildcard_constraints:
    cid=CID_PATTERN,
    shard=r"\d+",


SCRIPTS = Path(workflow.basedir) / "workflow_scripts"
PSEUDO_DIR = f"resources/pseudo/{config['data']['pseudo_family']}"
CANDIDATES_DIR = "results/candidates"
CANDIDATES_TABLE = "results/screen/candidates.csv"  # written by the checkpoint with the CIFs


def candidate_ids(wildcards=None):
    """Candidate ids chosen by the `candidates` checkpoint, filtered by candidates.only."""
    outdir = checkpoints.candidates.get().output.dir
    ids = glob_wildcards(f"{outdir}/{{cid}}.cif").cid
    only = config["candidates"]["only"]
    return sorted(i for i in ids if not only or i in only)


def get_candidate_cif(wildcards):
    """The input structure of one candidate (waits for the checkpoint)."""
    outdir = checkpoints.candidates.get().output.dir
    return f"{outdir}/{wildcards.cid}.cif"


def candidate_input(wildcards):
    """Inputs of a candidate's first DFT rule: its CIF, and the checkpoint's table as an
    `ancient` input (a DAG edge to the checkpoint that never triggers a rerun by itself)."""
    return {"cif": get_candidate_cif(wildcards), "table": ancient(CANDIDATES_TABLE)}
