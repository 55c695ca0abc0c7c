"""Benchmark: the DFT stage's overhead on QE's fcc-Al el-ph test case, in one run.

For each ph.x mode of the pipeline (``dft.q_per_job``):

- single (0): Snakemake runs ph.x once over all q-points. By hand: the pipeline's own six QE inputs
  (pw.x la2F scf, pw.x scf, ph.x, q2r.x, matdyn.x, lambda.x) run one after the other in one directory.
- split (1): Snakemake runs ph_init and one ph.x job per irreducible q-point. By hand: the same QE
  inputs, with ph.x as the pipeline ran it: the patterns-only run, then one run per q-point
  (start_q = last_q = iq) in one outdir.

The pipeline time is one `snakemake` invocation from the user's CIF to tc.json (the candidates
checkpoint, every DFT job, Snakemake's start-up and exit). With ``--dft-stage-only`` the
candidates checkpoint runs first, untimed, and the timed invocation starts at the candidate CIF:
the DFT stage alone. Prints both wall times and their ratio per
mode, and the largest relative difference of lambda / omega_log between the split and the single
ph.x run at every broadening (lambda.x and matdyn).

With ``--repeat N`` each mode is measured N times (pipeline, then by hand, alternating) and the
median ratio is printed with its range.

Usage: .venv/bin/python benchmarks/dft_overhead.py [--workdir DIR] [--np 2] [--modes single,split] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "dft")]

from tcflow.dft.outputs import parse_lambda_x, parse_matdyn_lambda  # noqa: E402

MPI_CODES = ("pw.x", "ph.x")
#: (executable, input name, where the pipeline wrote that input under results/dft/al/)
PW_STEPS = (("pw.x", "scf_fit.in", "scf_fit/scf_fit.in"), ("pw.x", "scf.in", "scf/scf.in"))
POST_STEPS = (("q2r.x", "q2r.in", "q2r/q2r.in"), ("matdyn.x", "matdyn.in", "matdyn/matdyn.in"),
              ("lambda.x", "lambda.in", "lambda/lambda.in"))
MODES = {"single": 0, "split": 1}


def _strip(text: str, keys) -> str:
    return re.sub(r"^\s*(" + "|".join(keys) + r") = .*\n", "", text, flags=re.M)


def hand_steps(cand: Path, mode: str) -> list[tuple[str, str, str]]:
    """(executable, input file name, input text) in the order the pipeline ran them."""
    steps = [(exe, name, _strip((cand / src).read_text(), ["max_seconds"])) for exe, name, src in PW_STEPS]
    if mode == "single":
        steps.append(("ph.x", "ph.in", _strip((cand / "ph.work/run1/ph.in").read_text(), ["max_seconds"])))
    else:
        steps.append(("ph.x", "ph_init.in", (cand / "ph_init/ph_init.in").read_text()))
        n_irr_q = json.loads((cand / "ph_init/qpoints.json").read_text())["n_irr_q"]
        for iq in range(1, n_irr_q + 1):
            text = _strip((cand / f"ph_q/{iq}.work/run1/ph.in").read_text(), ["max_seconds"])
            steps.append(("ph.x", f"ph_q{iq}.in", text))
    steps += [(exe, name, (cand / src).read_text()) for exe, name, src in POST_STEPS]
    return steps


def run_by_hand(wd: Path, steps, nproc: int) -> float:
    wd.mkdir(parents=True)
    for _, name, text in steps:
        (wd / name).write_text(text)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    for exe, name, _ in steps:
        cmd = ["mpirun", "-np", str(nproc), exe, "-in", name] if exe in MPI_CODES else [exe]
        with open(wd / name) as fin, open(wd / f"{name}.out", "w") as fout:
            subprocess.run(cmd, cwd=wd, stdin=fin, stdout=fout, stderr=subprocess.STDOUT, env=env, check=True)
    return time.monotonic() - t0


def run_pipeline(wd: Path, nproc: int, q_per_job: int, stage_only: bool = False) -> float:
    from test_dft_pipeline import _al_config, _write_al
    from workflow_helpers import SNAKEMAKE, write_config

    wd.mkdir(parents=True)
    _write_al(wd / "cifs")
    cfg = write_config(wd, _al_config(wd / "cifs", q_per_job=q_per_job))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(cfg),
           "--cores", str(nproc)]
    if stage_only:
        subprocess.run([*cmd, "results/candidates"], check=True, capture_output=True)
    cmd.append("results/dft/al/tc.json")
    t0 = time.monotonic()
    with open(wd / "snakemake.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return time.monotonic() - t0


def max_rel_diff(a: list[dict], b: list[dict], key: str) -> float:
    return max(abs(x[key] - y[key]) / abs(y[key]) for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="/tmp/tcflow_dft_overhead")
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--modes", default="single,split")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dft-stage-only", action="store_true",
                    help="run the candidates checkpoint first, untimed: time the DFT stage alone")
    args = ap.parse_args()
    wd = Path(args.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    if os.geteuid() == 0:
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    print(f"fcc Al (QE test-suite ph_metal), mpirun -np {args.np}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}; timed: "
          + ("candidate CIF -> tc.json (DFT stage)" if args.dft_stage_only else "user CIF -> tc.json"))
    tables = {}
    for mode in args.modes.split(","):
        runs = []
        for rep in range(args.repeat):
            pipe = wd / f"pipeline_{mode}_{rep}"
            t_pipe = run_pipeline(pipe, args.np, MODES[mode], args.dft_stage_only)
            cand = pipe / "results/dft/al"
            steps = hand_steps(cand, mode)
            t_hand = run_by_hand(wd / f"hand_{mode}_{rep}", steps, args.np)
            runs.append((t_pipe / t_hand, t_pipe, t_hand))
        n_ph = sum(exe == "ph.x" for exe, _, _ in steps)
        ratios = sorted(r for r, _, _ in runs)
        med = runs[[r for r, _, _ in runs].index(ratios[len(ratios) // 2])]
        spread = f" (range {ratios[0]:.3f}-{ratios[-1]:.3f} over {len(runs)} runs)" if len(runs) > 1 else ""
        print(f"  {mode:6s} ph.x: by hand {med[2]:5.1f} s ({len(steps)} QE runs, {n_ph} of ph.x), "
              f"pipeline {med[1]:5.1f} s, ratio pipeline / hand {med[0]:.3f}{spread}")
        tables[mode] = (parse_lambda_x((cand / "lambda/lambda.out").read_text()),
                        parse_matdyn_lambda(cand / "matdyn/lambda"))
    if {"single", "split"} <= tables.keys():
        for i, label in enumerate(("lambda.x", "matdyn")):
            a, b = tables["split"][i], tables["single"][i]
            print(f"  split vs single ph.x, {label}: max |d lambda|/lambda = {100 * max_rel_diff(a, b, 'lambda'):.3f} %, "
                  f"max |d omega_log|/omega_log = {100 * max_rel_diff(a, b, 'omega_log_K'):.3f} %")


if __name__ == "__main__":
    main()
