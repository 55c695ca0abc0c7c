"""One energy job: what ``workflow_scripts/energy_step.py`` runs for the rules ``energy_structure``,
``energy_relax`` and ``energy_scf_fit`` of ``rules/energy.smk`` (wildcards ``ecut``, ``phase``).

The same process guard as a DFT job (:func:`tcflow.dft.job.guard_process`: QE never outlives the
job), the same launcher and walltime (:func:`tcflow.dft.job.launch_from`, :func:`tcflow.dft.job.walltime`)
and the same step contract; each step directory also gets a ``metadata.json``
(:func:`tcflow.provenance.run_metadata`: settings, seed, input hashes, versions).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PHASES_DIR = Path("results/energy/phases")


def run(smk: Any) -> dict:
    """Run the step of ``smk.rule`` for one phase at one cutoff pair."""
    from tcflow.dft.job import launch_from, run_named, walltime
    from tcflow.dft.stage import StepContext
    from tcflow.energy.elements import is_molecule
    from tcflow.energy.phases import ELEMENT_PREFIX
    from tcflow.energy.steps import BY_RULE, FUNCS, phase_config
    from tcflow.io import atomic_write_json
    from tcflow.provenance import run_metadata

    dft_cfg, wc = smk.config["dft"], smk.wildcards
    step = BY_RULE[smk.rule]
    molecule = wc.phase.startswith(ELEMENT_PREFIX) and is_molecule(wc.phase[len(ELEMENT_PREFIX):],
                                                                   smk.config["energy"].get("element_cifs"))
    cfg = phase_config(dft_cfg, wc.ecut, molecule)
    max_s, limit = walltime(smk.resources, dft_cfg)
    log.info("%s (%s at %s Ry) in process %d: %s", smk.rule, wc.phase, wc.ecut, os.getpid(), limit)
    ctx = StepContext(step=step, cid=wc.phase, cand=PHASES_DIR / wc.ecut / wc.phase, final=Path(smk.output.dir),
                      launch=launch_from(smk.resources, dft_cfg), max_seconds=max_s, cfg=cfg,
                      inputs=dict(smk.input.items()), pseudo_dir=dft_cfg["pseudo_dir"] or smk.input.get("pseudo"))
    inputs = [smk.input.cif] if "cif" in smk.input.keys() else []

    def with_metadata(c: StepContext) -> dict:
        rec = FUNCS[step.name](c)
        settings = {k: cfg[k] for k in ("protocol", "overrides", "pseudo_dir", "pseudo_map")}
        atomic_write_json(c.out / "metadata.json", run_metadata(
            "energy", settings, smk.config.get("seed"), inputs, phase=wc.phase, ecut=wc.ecut, step=step.name,
            status=rec.get("status"), quantum_espresso=rec.get("qe_version")))
        return rec

    return run_named(ctx, with_metadata, limit)


def main(smk: Any) -> None:
    """The script body: guarded process, the rule's log, one-line failure."""
    from tcflow.dft.job import guard_process
    from tcflow.scriptlog import rule_logging

    guard_process()
    with rule_logging(smk.log[0] if smk.log else None, f"{smk.rule} ({smk.wildcards.phase} at {smk.wildcards.ecut})"):
        run(smk)
