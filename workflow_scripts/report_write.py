"""Rule report: report.md (with the figures), Table 1, the funnel and the collated versions file."""
from pathlib import Path

from tcflow.report.report import collate_versions, write_report
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "report") as log:
    inp = snakemake.input
    collate_versions("results", snakemake.output.versions)
    figures_dir = Path(inp.figures[0]).parent  # results/report/figures (every run draws Fig. 3 and the funnel)
    write_report(snakemake.output.md, inp.summary, inp.manifest, inp.rejected, snakemake.config,
                 screened_csv=inp.get("screened"), metrics_json=inp.get("metrics"),
                 candidates_csv=inp.candidates_table, table1_csv=snakemake.output.table1_csv,
                 table1_md=snakemake.output.table1_md, funnel_csv=snakemake.output.funnel,
                 figures_dir=figures_dir)
    log.info("report written to %s", snakemake.output.md)
