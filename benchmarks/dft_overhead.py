"""Benchmark: the DFT stage's overhead on QE's fcc-Al el-ph test case, in one run.

1. The pipeline: Snakemake on the case as a user CIF (ph.x split into one job per q-point).
2. By hand: the same QE commands with the pipeline's own input files (pw.x la2F scf, pw.x scf, ONE
   ph.x run over all q-points, q2r.x, matdyn.x, lambda.x) in one directory.
Prints both wall times, their ratio, and the largest relative difference of lambda / omega_log
between the split and the single ph.x run at every broadening (lambda.x and matdyn).

Usage: .venv/bin/python benchmarks/dft_overhead.py [--workdir DIR] [--np 2]
"""

from __future__ import annotations

import argparse
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
HAND_STEPS = (("pw.x", "scf_fit.in", "scf_fit/scf_fit.in"), ("pw.x", "scf.in", "scf/scf.in"),
              ("ph.x", "ph.in", "ph_q/1.work/ph.in"), ("q2r.x", "q2r.in", "q2r/q2r.in"),
              ("matdyn.x", "matdyn.in", "matdyn/matdyn.in"), ("lambda.x", "lambda.in", "lambda/lambda.in"))


def run_by_hand(wd: Path, cand: Path, nproc: int) -> float:
    """The pipeline's own QE inputs, run one after the other in one directory, with ONE ph.x run
    over all q-points (start_q/last_q removed)."""
    wd.mkdir(parents=True)
    for _, name, src in HAND_STEPS:
        text = (cand / src).read_text()
        if name == "ph.in":
            text = re.sub(r"^\s*(start_q|last_q|recover|max_seconds) = .*\n", "", text, flags=re.M)
        if name in ("scf_fit.in", "scf.in"):
            text = re.sub(r"^\s*max_seconds = .*\n", "", text, flags=re.M)
        (wd / name).write_text(text)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    for exe, name, _ in HAND_STEPS:
        cmd = ["mpirun", "-np", str(nproc), exe, "-in", name] if exe in MPI_CODES else [exe]
        with open(wd / name) as fin, open(wd / f"{name}.out", "w") as fout:
            subprocess.run(cmd, cwd=wd, stdin=fin, stdout=fout, stderr=subprocess.STDOUT, env=env, check=True)
    return time.monotonic() - t0


def run_pipeline(wd: Path, nproc: int) -> float:
    from test_dft_pipeline import _al_config, _write_al
    from workflow_helpers import SNAKEMAKE, write_config

    wd.mkdir(parents=True)
    _write_al(wd / "cifs")
    cfg = write_config(wd, _al_config(wd / "cifs"))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(cfg),
           "--cores", str(nproc), "results/dft/al/tc.json"]
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
    args = ap.parse_args()
    wd = Path(args.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    if os.geteuid() == 0:
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    t_pipe = run_pipeline(wd / "pipeline", args.np)
    t_hand = run_by_hand(wd / "hand", wd / "pipeline/results/dft/al", args.np)
    hand_x = parse_lambda_x((wd / "hand" / "lambda.in.out").read_text())
    hand_m = parse_matdyn_lambda(wd / "hand" / "lambda")
    pipe_x = parse_lambda_x((wd / "pipeline/results/dft/al/lambda/lambda.out").read_text())
    pipe_m = parse_matdyn_lambda(wd / "pipeline/results/dft/al/matdyn/lambda")
    ph_hand = re.findall(r"PHONON\s*:.*?([\d.]+)s WALL", (wd / "hand" / "ph.in.out").read_text())
    print(f"fcc Al (QE test-suite ph_metal), mpirun -np {args.np}")
    print(f"  by hand (same 6 QE inputs, one ph.x for all q): {t_hand:.1f} s (ph.x {ph_hand[-1] if ph_hand else '?'} s)")
    print(f"  pipeline (snakemake, ph.x split by q-point): {t_pipe:.1f} s")
    print(f"  ratio pipeline / hand: {t_pipe / t_hand:.2f}")
    for label, a, b in (("lambda.x", pipe_x, hand_x), ("matdyn", pipe_m, hand_m)):
        print(f"  split vs single ph.x, {label}: max |d lambda|/lambda = {100 * max_rel_diff(a, b, 'lambda'):.3f} %, "
              f"max |d omega_log|/omega_log = {100 * max_rel_diff(a, b, 'omega_log_K'):.3f} %")


if __name__ == "__main__":
    main()
