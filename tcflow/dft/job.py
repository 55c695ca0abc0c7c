"""The body of every rule of ``rules/dft.smk``: dispatch on the rule name to :mod:`tcflow.dft.steps`.

The DFT rules use ``run:`` blocks that call :func:`run_dft_rule`, so that on one machine each job
runs inside the Snakemake process (a thread; the workflow profile ``profiles/default`` turns that
on), not in a fresh Python interpreter: the QE chain of a candidate is ten short jobs, and a Python
start-up plus ``snakemake.script`` import per job (about 0.13 s each) was most of the stage's
overhead on small cases. On a cluster each job is its own Snakemake process on the node, as for
any rule.

Being in-process, a job must not touch process-wide state: its log goes to the rule's ``log:``
file through a handler that only takes records from the job's own thread
(:func:`tcflow.smk.job_logging`; a failure is one line naming rule and candidate), the QE environment is
built per call (:func:`tcflow.dft.runner.qe_environment`), and paths are passed, never ``chdir``-ed.

QE launch: launcher template from config ``dft.launcher`` (``{tasks}`` from the rule's
``resources.tasks``), OpenMP threads from ``resources.cpus_per_task`` (default 1); under
``--software-deployment-method conda`` the rule's environment's ``bin/`` leads ``PATH`` for QE.
pw.x / ph.x stop cleanly at ``dft.max_seconds_fraction`` of the rule's runtime (minutes) so that
a rerun can resume.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from tcflow.smk import job_logging

SECONDS_PER_MINUTE = 60


def _launch(cfg: Mapping[str, Any], resources: Any, conda_env: str | None):
    from tcflow.dft.runner import Launch

    return Launch(launcher=cfg["launcher"], tasks=int(getattr(resources, "tasks", 1) or 1),
                  omp_threads=int(getattr(resources, "cpus_per_task", 1) or 1), bin_dir=cfg["qe_bin_dir"] or "",
                  path_prefix=os.path.join(conda_env, "bin") if conda_env else "")


def run_dft_rule(rule: str, input: Any, output: Any, params: Any, wildcards: Any, resources: Any,
                 log: Any, config: Mapping[str, Any], conda_env: str | None = None) -> None:
    """Run the step of ``rule`` for one candidate (Snakemake's ``run:`` namespace passed through)."""
    cid = getattr(wildcards, "cid", "?")
    with job_logging(log[0] if log else None, f"{rule} ({cid})") as jlog:
        from tcflow.dft import steps

        jlog.info("%s (%s) in process %d", rule, cid, os.getpid())

        cfg = config["dft"]
        launch = _launch(cfg, resources, conda_env)
        runtime = getattr(resources, "runtime", None)
        max_s = runtime * SECONDS_PER_MINUTE * cfg["max_seconds_fraction"] if runtime else None
        i, out = input, output
        if rule == "dft_structure":
            steps.step_structure(i.cif, out.dir, cfg, cfg["pseudo_dir"] or i.pseudo)
        elif rule == "dft_relax":
            steps.step_relax(i.structure, out.dir, launch, max_s)
        elif rule == "dft_scf_fit":
            steps.step_scf_fit(i.structure, i.relax, out.dir, launch, max_s)
        elif rule == "dft_scf":
            steps.step_scf(i.structure, i.relax, i.scf_fit, out.dir, launch, max_s)
        elif rule == "dft_ph_init":
            steps.step_ph_init(i.structure, i.relax, i.scf, out.dir, launch)
        elif rule == "dft_ph_q":
            steps.step_ph_q(i.structure, i.relax, i.scf, i.ph_init, int(wildcards.chunk), int(params.q_per_job),
                            out.dir, launch, max_s)
        elif rule == "dft_ph":
            steps.step_ph_collect(i.ph_init, list(i.ph_q), out.dir)
        elif rule == "dft_ph_all":
            steps.step_ph(i.structure, i.relax, i.scf, out.dir, launch, max_s)
        elif rule == "dft_q2r":
            steps.step_q2r(i.structure, i.ph, out.dir, launch)
        elif rule == "dft_matdyn":
            steps.step_matdyn(i.structure, i.relax, i.q2r, out.dir, launch)
        elif rule == "dft_lambda":
            steps.step_lambda(i.structure, i.ph, out.dir, launch)
        elif rule == "dft_tc":
            steps.finish_candidate(cid, Path(out.tc).parent, out.tc, out.meta, cfg,
                                   seed=params.seed, inputs=[Path(i.structure) / "input.cif"])
        else:
            raise ValueError(f"no DFT step for rule {rule}")
