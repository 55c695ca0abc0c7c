"""Benchmark: the DAG past the ``candidates`` checkpoint, and the sbatch submissions it means.

For each candidate count N (``--candidates 61,600``): N CIFs copied from the mirror's training
split (distinct JARVIS structures, ids = their material ids) in a ``cif_dir``; the real
``candidates`` checkpoint runs first, untimed (``--cores 1``); then ``snakemake -n --quiet rules``
with ``--profile profiles/slurm`` (no QE, nothing submitted) is timed ``--repeat`` times: wall
time, CPU time (user + system: less sensitive to other load on a shared machine) and peak memory
of that process. One more, untimed dry run lists every job, from which:

- jobs per candidate by rule (jobs whose wildcards name the candidate ``cid``) and the other jobs;
- sbatch submissions: every job except local ones (``localrules:`` / ``localrule: True`` in the
  Snakefile and rules/*.smk, and rules without a command such as ``all``), a ``group`` job (the
  dry run's "Group job" blocks, from ``group:`` directives or the profile's ``groups`` /
  ``group-components``) counting once; with ``slurm-array-jobs`` in the profile, also the best
  case of one array per ``slurm-array-limit`` jobs of a rule (the plugin submits an array once all
  of a rule's pending jobs are ready).
- checkpoint jobs still to run: the jobs after them would not be in this DAG (past the
  ``candidates`` checkpoint the DFT DAG is static: ``dft.ph_jobs`` ph.x jobs per candidate).

With ``--floor``, Snakemake's own cost for a DAG of the same size: N chains of as many jobs as a
candidate has here, each a bare rule (one output, one log, ``shell: touch``; no input functions,
resources, scripts, groups, conda or profile) and as many lone jobs as the other jobs, dry-run the
same way (``--executor slurm``, timed ``--repeat`` times). What is left above it is what this
workflow's rules and profile add per job. ``--floor-steps K`` gives the bare chains K jobs instead
(what a design with fewer jobs per candidate could reach at best); ``--floor-rich`` gives every
bare rule what each of this workflow's jobs must carry beyond a log: a benchmark file and
resources, the runtime growing with the attempt.

Usage: .venv/bin/python benchmarks/dag.py [--candidates 61,600] [--ph-jobs 4] [--repeat 3]
       [--profile profiles/slurm | --profile ''] [--floor [--floor-steps K] [--floor-rich]]
       [--workdir /tmp/tcflow_dag] [--json FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from workflow_helpers import SHARED, SNAKEMAKE  # noqa: E402

#: the profile's partition/account variables, empty (= cluster defaults) for the dry run
PROFILE_ENV = {"TCFLOW_SLURM_PARTITION": "", "TCFLOW_SLURM_GPU_PARTITION": "", "TCFLOW_SLURM_ACCOUNT": ""}
#: more CIFs than asked for, so that N remain after the checkpoint's own rejections (max_atoms, ...)
SPARE = 1.1
JOB = re.compile(r"^(?P<indent>\s*)(?:local)?(?P<kind>rule|checkpoint) (?P<rule>\w+):\s*$")
GROUP = re.compile(r"Group job (?P<group>\S+)")
WILDCARDS = re.compile(r"^\s*wildcards: (?P<wc>.*)$")
COMMAND = re.compile(r"^\s+(shell|script|run|notebook|wrapper|cwl|template_engine):", re.MULTILINE)
RULE_HEAD = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
#: the --floor workflow: CHAINS chains of STEPS bare jobs and LONE lone jobs (rule `lone`)
FLOOR_SNAKEFILE = """\
CHAINS, STEPS, LONE = {chains}, {steps}, {lone}


rule all:
    input:
        expand("out/{{c}}/{{s}}", c=range(CHAINS), s=[STEPS - 1]),
        expand("lone/{{i}}", i=range(LONE)),


rule lone:
    output:
        "lone/{{i}}",
    log:
        "logs/lone/{{i}}.log",
{lone_extra}    shell:
        "touch {{output}}"


rule first:
    output:
        "out/{{c}}/0",
    log:
        "logs/{{c}}/0.log",
{first_extra}    shell:
        "touch {{output}}"


for _s in range(1, STEPS):
    rule:
        name:
            f"step{{_s}}"
        input:
            f"out/{{{{c}}}}/{{_s - 1}}",
        output:
            f"out/{{{{c}}}}/{{_s}}",
        log:
            f"logs/{{{{c}}}}/{{_s}}.log",
{step_extra}        shell:
            "touch {{output}}"
"""


#: --floor-rich: what every job of this workflow carries beyond a log (house style and issues 11,
#: 14): a benchmark file and resources, the runtime growing with the attempt
RICH = """\
{pad}benchmark:
{pad}    {bench}
{pad}resources:
{pad}    mem_mb=1000,
{pad}    runtime=lambda wildcards, attempt: 10 * attempt,
"""


def floor_snakefile(chains: int, steps: int, lone: int, rich: bool) -> str:
    """The --floor workflow's Snakefile (with ``rich``, every rule also has RICH's directives)."""
    def extra(pad: str, bench: str) -> str:
        return RICH.format(pad=pad, bench=bench) if rich else ""
    return FLOOR_SNAKEFILE.format(
        chains=chains, steps=steps, lone=lone, lone_extra=extra(" " * 4, '"bench/lone/{i}.tsv"'),
        first_extra=extra(" " * 4, '"bench/{c}/0.tsv"'), step_extra=extra(" " * 8, 'f"bench/{{c}}/{_s}.tsv"'))


def write_cifs(cif_dir: Path, n: int) -> None:
    cif_dir.mkdir(parents=True)
    with open(SHARED / "data" / "jarvis_supercon" / "train.csv", newline="") as fh:
        for _, row in zip(range(math.ceil(n * SPARE)), csv.DictReader(fh)):
            (cif_dir / f"{row['material_id']}.cif").write_text(row["cif"])


def local_rules(profile: dict) -> set[str]:
    """Rules that run in the Snakemake process: declared local, or without a command (``all``);
    a rule in a group never is (Snakemake's Workflow.is_local)."""
    local, grouped = set(), set()
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = smk.read_text()
        for block in re.findall(r"^\s*localrules:\s*\n((?:\s+\w+,?\s*\n)+)", text, re.MULTILINE):
            local |= set(re.findall(r"\w+", block))
        heads = list(RULE_HEAD.finditer(text))
        for head, nxt in zip(heads, heads[1:] + [None]):
            body = text[head.end(): nxt.start() if nxt else len(text)]
            if re.search(r"^\s+localrule:\s*True", body, re.MULTILINE) or not COMMAND.search(body):
                local.add(head.group(1))
            if re.search(r"^\s+group:", body, re.MULTILINE):
                grouped.add(head.group(1))
    groups = profile.get("groups") or {}  # --groups RULE=GROUP ...: a list of "r=g" or a mapping
    grouped |= {g.split("=")[0] for g in groups} if isinstance(groups, list) else set(groups)
    return local - grouped


def parse_jobs(text: str) -> list[dict]:
    """Jobs of a dry run's listing: rule, kind, group (None outside a group block), wildcards."""
    jobs, group = [], None
    for line in text.splitlines():
        if m := GROUP.search(line):
            group = f"{m['group']}#{len(jobs)}"
        elif m := JOB.match(line):
            if not m["indent"]:
                group = None
            jobs.append({"rule": m["rule"], "kind": m["kind"], "group": group, "wildcards": {}})
        elif (m := WILDCARDS.match(line)) and jobs:
            jobs[-1]["wildcards"] = dict(kv.split("=", 1) for kv in m["wc"].split(", "))
    return jobs


def job_stats(text: str) -> dict[str, int]:
    table = text[text.index("Job stats:"):]
    rows = re.findall(r"^(\w+)\s+(\d+)$", table.split("\n\n")[0], re.MULTILINE)
    return {rule: int(n) for rule, n in rows}


def snakemake(wd: Path, config: Path, *args: str) -> tuple[float, float, str, float]:
    """Run snakemake in ``wd``: (wall s, peak RSS MB, stdout + stderr, CPU s: user + system)."""
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(config), *args]
    t0 = time.monotonic()
    with open(wd / "snakemake.out", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **PROFILE_ENV})
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    text = (wd / "snakemake.out").read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed in {wd}:\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024, text, usage.ru_utime + usage.ru_stime


def floor(wd: Path, chains: int, steps: int, lone: int, repeat: int, rich: bool = False) -> dict:
    """Dry runs of the bare workflow of FLOOR_SNAKEFILE in ``wd``: its job count and timings."""
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True)
    (wd / "Snakefile").write_text(floor_snakefile(chains, steps, lone, rich))
    cmd = [str(SNAKEMAKE), "-s", str(wd / "Snakefile"), "--directory", str(wd),
           "--executor", "slurm", "--jobs", "100", "-n", "--quiet", "rules"]
    runs = []
    for _ in range(repeat):
        t0 = time.monotonic()
        with open(wd / "snakemake.out", "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"floor dry run failed in {wd}:\n{(wd / 'snakemake.out').read_text()[-3000:]}")
        runs.append((time.monotonic() - t0, usage.ru_utime + usage.ru_stime))
    jobs = job_stats((wd / "snakemake.out").read_text())["total"]
    return {"jobs": jobs, "steps_per_chain": steps, "rich": rich,
            "wall_s": [round(w, 2) for w, _ in runs], "cpu_s": [round(c, 2) for _, c in runs]}


def measure(n: int, ph_jobs: int, profile_dir: Path, repeat: int, workdir: Path, with_floor: bool = False,
            floor_steps: int | None = None, floor_rich: bool = False) -> dict:
    wd = workdir / f"n{n}_ph{ph_jobs}"
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True)
    write_cifs(wd / "cifs", n)
    config = wd / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"mirror": str(SHARED)}, "dft": {"ph_jobs": ph_jobs},
                                      "candidates": {"source": "cif_dir", "path": str(wd / "cifs"), "max": n}}))
    snakemake(wd, config, "--cores", "1", "results/screen/candidates.csv")  # the checkpoint, untimed
    accepted = len(list((wd / "results" / "candidates").glob("*.cif")))
    if accepted != n:
        raise SystemExit(f"{wd}: the checkpoint accepted {accepted} candidates, not {n}")
    dry = (["--profile", str(profile_dir)] if profile_dir else ["--executor", "slurm", "--jobs", "100"]) + ["-n"]
    runs = [snakemake(wd, config, *dry, "--quiet", "rules") for _ in range(repeat)]
    listing = snakemake(wd, config, *dry)[2]
    profile = yaml.safe_load((profile_dir / "config.yaml").read_text()) if profile_dir else {}
    jobs, local = parse_jobs(listing), local_rules(profile)
    stats = job_stats(runs[0][2])
    assert len(jobs) == stats["total"], f"listing has {len(jobs)} jobs, Job stats {stats['total']}"
    per_cand = Counter(j["rule"] for j in jobs if "cid" in j["wildcards"])
    other = Counter(j["rule"] for j in jobs if "cid" not in j["wildcards"])
    remote = [j for j in jobs if j["group"] or j["rule"] not in local]
    sbatch = len({j["group"] for j in remote if j["group"]}) + sum(not j["group"] for j in remote)
    cand_remote = [j for j in remote if "cid" in j["wildcards"]]
    cand_sbatch = len({j["group"] for j in cand_remote if j["group"]}) + sum(not j["group"] for j in cand_remote)
    out = {"candidates": n, "ph_jobs": ph_jobs, "jobs": len(jobs),
           "wall_s": [round(r[0], 2) for r in runs], "cpu_s": [round(r[3], 2) for r in runs], "peak_rss_mb": round(max(r[1] for r in runs)),
           "per_candidate": {r: c / n for r, c in sorted(per_cand.items())}, "other": dict(sorted(other.items())),
           "local_rules": sorted(local & {j["rule"] for j in jobs}), "sbatch": sbatch,
           "sbatch_per_candidate": cand_sbatch / n,
           "checkpoints_pending": dict(Counter(j["rule"] for j in jobs if j["kind"] == "checkpoint"))}
    arrays = profile.get("slurm-array-jobs")
    if arrays:
        chosen = {r.strip() for r in str(arrays).replace(";", ",").split(",")}
        limit = int(profile.get("slurm-array-limit") or 1000)
        by_rule = Counter(j["rule"] for j in remote if not j["group"])
        out["sbatch_with_arrays_best_case"] = sbatch - sum(
            c - math.ceil(c / limit) for r, c in by_rule.items() if c > 1 and ("all" in chosen or r in chosen))
    if with_floor:
        steps = floor_steps or round(sum(per_cand.values()) / n)
        # `all` is one of the other jobs in both workflows
        out["floor"] = floor(wd / "floor", n, steps, sum(other.values()) - other.get("all", 0), repeat, floor_rich)
    return out


def report(res: dict) -> str:
    w, c = res["wall_s"], res["cpu_s"]
    lines = [f"{res['candidates']} candidates, dft.ph_jobs {res['ph_jobs']}: dry run "
             f"{statistics.median(w):.1f} s wall (median of {len(w)}: {', '.join(f'{x:.1f}' for x in w)}), "
             f"{statistics.median(c):.1f} s CPU, peak {res['peak_rss_mb']} MB; {res['jobs']} jobs",
             "  per candidate: " + ", ".join(f"{r} {c:g}" for r, c in res["per_candidate"].items())
             + f" ({sum(res['per_candidate'].values()):g} jobs)",
             "  other jobs: " + ", ".join(f"{r} {c}" for r, c in res["other"].items()),
             f"  sbatch submissions: {res['sbatch']} ({res['sbatch_per_candidate']:g} per candidate; local: "
             f"{', '.join(res['local_rules'])})"]
    if "sbatch_with_arrays_best_case" in res:
        lines.append(f"  with the profile's slurm-array-jobs, at best: {res['sbatch_with_arrays_best_case']}")
    if "floor" in res:
        f, cpu = res["floor"], statistics.median(c)
        fcpu = statistics.median(f["cpu_s"])
        shape = (f"{f['steps_per_chain']} jobs per candidate" + (", log + benchmark + resources" if f["rich"] else ""))
        lines.append(f"  Snakemake floor (bare rules, {shape}): {f['jobs']} jobs, {statistics.median(f['wall_s']):.1f} s "
                     f"wall, {fcpu:.1f} s CPU ({1000 * fcpu / f['jobs']:.2f} ms/job); this workflow "
                     f"{1000 * cpu / res['jobs']:.2f} ms/job, {cpu / fcpu:.1f}x the floor")
    if res["checkpoints_pending"]:
        lines.append("  checkpoints still to run (their downstream jobs are not counted): "
                     + ", ".join(f"{r} x{c}" for r, c in res["checkpoints_pending"].items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default="61,600", help="comma-separated candidate counts")
    ap.add_argument("--ph-jobs", type=int, default=4, help="dft.ph_jobs (config/paper.yaml: 4)")
    ap.add_argument("--repeat", type=int, default=3, help="timed dry runs per count")
    ap.add_argument("--profile", default=str(REPO / "profiles" / "slurm"),
                    help="profile directory; '' for none (--executor slurm alone: the profile's own cost)")
    ap.add_argument("--floor", action="store_true",
                    help="also time a bare workflow of the same shape (Snakemake's own cost per job)")
    ap.add_argument("--floor-steps", type=int, help="the floor's jobs per candidate (default: this workflow's)")
    ap.add_argument("--floor-rich", action="store_true",
                    help="the floor's rules also carry a benchmark and attempt-dependent resources")
    ap.add_argument("--workdir", default="/tmp/tcflow_dag")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}; profile {args.profile}")
    results = []
    for n in (int(x) for x in args.candidates.split(",")):
        results.append(measure(n, args.ph_jobs, Path(args.profile) if args.profile else None, args.repeat,
                               Path(args.workdir), args.floor, args.floor_steps, args.floor_rich))
        print(report(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
