"""Rules figure_*: one figure (PNG + SVG) of the run, or one candidate's figure directory."""
from tcflow.report import figjobs
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], snakemake.rule) as log:
    inp, out, rule = snakemake.input, snakemake.output, snakemake.rule
    prefix = str(out.png)[: -len(".png")] if "png" in out.keys() else None
    if rule == "figure_periodic_table":
        figjobs.periodic_table(inp.samples, snakemake.params.threshold_K, prefix)
    elif rule == "figure_structures":
        figjobs.structures(inp.samples, inp.train, prefix)
    elif rule == "figure_tc":
        figjobs.tc(inp.train, inp.summary, prefix, samples_csv=inp.get("samples"))
    elif rule == "figure_funnel":
        figjobs.funnel(inp.summary, inp.candidates_table, snakemake.params.tc_min_K, prefix,
                       screened_csv=inp.get("screened"))
    else:
        rec = figjobs.candidate(snakemake.wildcards.cid, inp.tc, inp.matdyn, inp.dispersion, out.dir)
        log.info("%s: figures %s; absent %s", rec["id"], sorted(rec["figures"]), rec["absent"] or "none")
    log.info("%s written", out[0])
