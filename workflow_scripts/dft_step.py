"""Snakemake glue for every rule of rules/dft.smk: dispatch on the rule name to tcflow.dft.steps.

QE launch: launcher template from config dft.launcher ({tasks} from the rule's resources.tasks),
OpenMP threads from resources.cpus_per_task (default 1). ph.x / pw.x stop cleanly at
dft.max_seconds_fraction of the rule's runtime (minutes) so that a rerun can resume.
"""

from tcflow.scriptlog import rule_logging

SECONDS_PER_MINUTE = 60

with rule_logging(snakemake.log[0], snakemake.rule):  # noqa: F821 (injected by Snakemake)
    from pathlib import Path

    from tcflow.dft import steps
    from tcflow.dft.runner import Launch

    sm = snakemake  # noqa: F821
    cfg = sm.config["dft"]
    res = sm.resources
    launch = Launch(launcher=cfg["launcher"], tasks=int(getattr(res, "tasks", 1) or 1),
                    omp_threads=int(getattr(res, "cpus_per_task", 1) or 1), bin_dir=cfg["qe_bin_dir"] or "")
    runtime = getattr(res, "runtime", None)
    max_s = runtime * SECONDS_PER_MINUTE * cfg["max_seconds_fraction"] if runtime else None
    i, out = sm.input, sm.output
    rule = sm.rule
    if rule == "dft_structure":
        pseudo_dir = cfg["pseudo_dir"] or i.pseudo
        steps.step_structure(i.cif, out.dir, cfg, pseudo_dir)
    elif rule == "dft_relax":
        steps.step_relax(i.structure, out.dir, launch, max_s)
    elif rule == "dft_scf_fit":
        steps.step_scf_fit(i.structure, i.relax, out.dir, launch, max_s)
    elif rule == "dft_scf":
        steps.step_scf(i.structure, i.relax, i.scf_fit, out.dir, launch, max_s)
    elif rule == "dft_ph_init":
        steps.step_ph_init(i.structure, i.relax, i.scf, out.dir, launch)
    elif rule == "dft_ph_q":
        steps.step_ph_q(i.structure, i.relax, i.scf, i.ph_init, int(sm.wildcards.chunk), int(sm.params.q_per_job),
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
        steps.finish_candidate(sm.wildcards.cid, Path(out.tc).parent, out.tc, out.meta, cfg,
                               seed=sm.params.seed, inputs=[Path(i.structure) / "input.cif"])
    else:
        raise ValueError(f"dft_step.py: no step for rule {rule}")
