"""Benchmark: the DFT stage's overhead against the same QE inputs run by hand, in one run.

Cases (``--case``):

- ``qe-al``: QE's own fcc-Al el-ph test case (seconds of QE: overhead-dominated, a worst case);
- ``jarvis-al``: fcc Al from the JARVIS-SC mirror (JVASP-816) with the paper's ``jarvis``
  protocol and SSSP PBEsol (vc-relax included; minutes of QE: a realistic small candidate).

For each ph.x mode of the pipeline (``dft.ph_jobs``):

- single (1): one ph.x job over all q-points, ph.x started once per q-point (start_q = last_q).
- split (4, as config/paper.yaml): ph_init and four ph.x jobs sharing the irreducible q-points.

By hand: the pipeline's own QE inputs (as it wrote them) run one after the other in one
directory, each pw.x / ph.x with the k-point pools the pipeline's run of it reported (``-nk``): "pipeline / hand" is what the workflow adds to the QE it runs. For the single mode the
benchmark also runs ph.x by hand ONCE over all q-points (what a person would type), which gives
the cost of starting ph.x per q-point (the price of resumes that do not change the result).

QE's own run time varies from run to run by several per cent on a shared machine (the same ph.x
input: 32-37 s), more than the overhead measured. So each pair also gives the overhead in
seconds, wall time minus the WALL time QE printed for its own runs (the pipeline: every QE output
under the candidate; by hand: every output), and a QE-noise-free ratio
``(QE_hand + overhead_pipeline) / t_hand``: the pipeline's time had its QE run exactly as fast as
the hand run's.

With ``--floor``, Snakemake's own cost on this machine: a workflow of as many jobs as the
pipeline ran, each a no-op ``script:`` job (a chain, one output, log and benchmark each, as the
DFT rules have; ``shell:`` jobs and a single job for comparison), timed as one `snakemake`
invocation like the pipeline. ``(t_hand + floor) / t_hand`` is the lowest ratio any Snakemake
workflow running that many jobs could reach on this case and machine.

The pipeline time is one `snakemake` invocation from the user's CIF to tc.json; with
``--dft-stage-only`` the candidates checkpoint runs first, untimed. With ``--repeat N`` each mode
is measured N times (pipeline, then by hand, alternating) and the median ratio is printed with
its range.

Usage: .venv/bin/python benchmarks/dft_overhead.py [--case qe-al|jarvis-al] [--workdir DIR] [--np 2]
       [--modes single,split] [--repeat 1] [--dft-stage-only] [--floor]
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

from tcflow.dft.outputs import parse_lambda_x, parse_matdyn_lambda, pools, wall_seconds  # noqa: E402

MPI_CODES = ("pw.x", "ph.x")
#: (executable, input name, where the pipeline wrote that input under results/dft/al/)
PW_STEPS = (("pw.x", "relax.in", "relax/relax.in"), ("pw.x", "scf_fit.in", "scf_fit/scf_fit.in"),
            ("pw.x", "scf.in", "scf/scf.in"))
POST_STEPS = (("q2r.x", "q2r.in", "q2r/q2r.in"), ("matdyn.x", "matdyn.in", "matdyn/matdyn.in"),
              ("lambda.x", "lambda.in", "lambda/lambda.in"))
MODES = {"single": 1, "split": 4}


def _strip(text: str, keys) -> str:
    return re.sub(r"^\s*(" + "|".join(keys) + r") = .*\n", "", text, flags=re.M)


def _pools_of(src: Path) -> int:
    """The k-point pools QE reported in the output beside the pipeline's input ``src``."""
    out = src.with_suffix(".out")
    return pools(out.read_text(errors="replace")) if out.is_file() else 1


def hand_steps(cand: Path, mode: str) -> list[tuple[str, str, str, int]]:
    """(executable, input file name, input text, k-point pools) in the order the pipeline ran them."""
    steps = [(exe, name, _strip((cand / src).read_text(), ["max_seconds"]), _pools_of(cand / src))
             for exe, name, src in PW_STEPS if (cand / src).is_file()]
    n_irr_q = json.loads((cand / "ph/ph.json").read_text())["n_irr_q"]
    if mode in ("single", "single-one-ph"):
        if mode == "single-one-ph":  # one ph.x run over every q-point, as typed by hand
            src = cand / "ph.work/run1/ph.1.in"
            steps.append(("ph.x", "ph.in", _strip(src.read_text(), ["max_seconds", "start_q", "last_q"]), _pools_of(src)))
        else:
            for iq in range(1, n_irr_q + 1):
                src = cand / f"ph.work/run1/ph.{iq}.in"
                steps.append(("ph.x", f"ph.{iq}.in", _strip(src.read_text(), ["max_seconds"]), _pools_of(src)))
    else:
        src = cand / "ph_init/ph_init.in"
        steps.append(("ph.x", "ph_init.in", src.read_text(), _pools_of(src)))
        for iq in range(1, n_irr_q + 1):
            src = next(cand.glob(f"ph_q/*.work/run1/ph.{iq}.in"))  # the chunk job that ran q-point iq
            steps.append(("ph.x", f"ph_q{iq}.in", _strip(src.read_text(), ["max_seconds"]), _pools_of(src)))
    steps += [(exe, name, (cand / src).read_text(), 1) for exe, name, src in POST_STEPS]
    return steps


def run_by_hand(wd: Path, steps, nproc: int) -> float:
    wd.mkdir(parents=True)
    for _, name, text, _ in steps:
        (wd / name).write_text(text)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    for exe, name, _, npool in steps:
        nk = ["-nk", str(npool)] if npool > 1 else []
        cmd = ["mpirun", "-np", str(nproc), exe, *nk, "-in", name] if exe in MPI_CODES else [exe]
        with open(wd / name) as fin, open(wd / f"{name}.out", "w") as fout:
            subprocess.run(cmd, cwd=wd, stdin=fin, stdout=fout, stderr=subprocess.STDOUT, env=env, check=True)
    return time.monotonic() - t0


def _jarvis_al(cifdir: Path) -> dict:
    """fcc Al (JVASP-816) from the mirror's training split, the ``jarvis`` protocol, SSSP PBEsol."""
    import pandas as pd

    from workflow_helpers import SHARED

    cifdir.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(SHARED / "data/jarvis_supercon/train.csv")
    (cifdir / "al.cif").write_text(df.loc[df.material_id == "JVASP-816", "cif"].iloc[0])
    return {"protocol": "jarvis", "pseudo_dir": str(SHARED / "pseudo/sssp_pbesol_efficiency_1.3.0")}


def run_pipeline(wd: Path, nproc: int, ph_jobs: int, stage_only: bool = False, case: str = "qe-al") -> float:
    from test_dft_pipeline import _al_config, _write_al
    from workflow_helpers import SNAKEMAKE, write_config

    wd.mkdir(parents=True)
    if case == "jarvis-al":
        config = {"candidates": {"source": "cif_dir", "path": str(wd / "cifs")},
                  "dft": {**_jarvis_al(wd / "cifs"), "ph_jobs": ph_jobs}}
    else:
        _write_al(wd / "cifs")
        config = _al_config(wd / "cifs", ph_jobs=ph_jobs)
    cfg = write_config(wd, config)
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(cfg),
           "--cores", str(nproc)]
    if stage_only:
        subprocess.run([*cmd, "results/candidates"], check=True, capture_output=True)
    cmd.append("results/dft/al/tc.json")
    t0 = time.monotonic()
    with open(wd / "snakemake.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return time.monotonic() - t0


FLOOR_SNAKEFILE = """\
import os
N = int(os.environ["TCFLOW_FLOOR_JOBS"])
rule all:
    input: f"s{N}.txt"
rule step:
    input: lambda wc: [] if int(wc.i) == 1 else [f"s{int(wc.i) - 1}.txt"]
    output: "s{i}.txt"
    log: "logs/s{i}.log"
    benchmark: "bench/s{i}.tsv"
    %s
"""
FLOOR_COMMANDS = {"script": 'script: "noop.py"',
                  "shell": "shell: \"python -c 'import sys; open(sys.argv[1], \\\"w\\\").write(\\\"x\\\")' {output}\""}


def snakemake_floor(wd: Path, n_jobs: int, kind: str, nproc: int, repeat: int) -> list[float]:
    """Wall seconds of one `snakemake` run of ``n_jobs`` chained no-op ``kind`` jobs, ``repeat`` times."""
    from workflow_helpers import SNAKEMAKE

    wd.mkdir(parents=True, exist_ok=True)
    (wd / "Snakefile").write_text(FLOOR_SNAKEFILE % FLOOR_COMMANDS[kind])
    (wd / "noop.py").write_text("open(snakemake.output[0], 'w').write('x')\n")
    env = dict(os.environ, TCFLOW_FLOOR_JOBS=str(n_jobs), PATH=f"{Path(SNAKEMAKE).parent}:{os.environ['PATH']}")
    times = []
    for _ in range(repeat):
        for d in ("logs", "bench", ".snakemake"):
            shutil.rmtree(wd / d, ignore_errors=True)
        for f in wd.glob("s*.txt"):
            f.unlink()
        t0 = time.monotonic()
        subprocess.run([str(SNAKEMAKE), "-s", str(wd / "Snakefile"), "--directory", str(wd), "--cores", str(nproc)],
                       check=True, capture_output=True, env=env)
        times.append(time.monotonic() - t0)
    return times


def qe_wall(outputs) -> float:
    """Sum of the WALL times QE printed in ``outputs`` (s)."""
    return sum(wall_seconds(p.read_text(errors="replace")) or 0.0 for p in outputs)


def max_rel_diff(a: list[dict], b: list[dict], key: str) -> float:
    return max(abs(x[key] - y[key]) / abs(y[key]) for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="qe-al", choices=("qe-al", "jarvis-al"))
    ap.add_argument("--workdir", default="/tmp/tcflow_dft_overhead")
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--modes", default="single,split")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--floor", action="store_true",
                    help="also time Snakemake alone on as many no-op jobs (the lowest ratio it allows)")
    ap.add_argument("--dft-stage-only", action="store_true",
                    help="run the candidates checkpoint first, untimed: time the DFT stage alone")
    args = ap.parse_args()
    wd = Path(args.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    if os.geteuid() == 0:
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    print(f"fcc Al ({args.case}), mpirun -np {args.np}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}; timed: "
          + ("candidate CIF -> tc.json (DFT stage)" if args.dft_stage_only else "user CIF -> tc.json"))
    tables = {}
    for mode in args.modes.split(","):
        runs = []
        for rep in range(args.repeat):
            pipe = wd / f"pipeline_{mode}_{rep}"
            t_pipe = run_pipeline(pipe, args.np, MODES[mode], args.dft_stage_only, args.case)
            cand = pipe / "results/dft/al"
            steps = hand_steps(cand, mode)
            t_hand = run_by_hand(wd / f"hand_{mode}_{rep}", steps, args.np)
            t_one = run_by_hand(wd / f"hand_one_ph_{rep}", hand_steps(cand, "single-one-ph"), args.np) \
                if mode == "single" else None
            qe_pipe = qe_wall(p for p in cand.rglob("*.out") if ".partial" not in str(p))
            qe_hand = qe_wall((wd / f"hand_{mode}_{rep}").glob("*.out"))
            over_pipe, over_hand = t_pipe - qe_pipe, t_hand - qe_hand
            adjusted = (qe_hand + over_pipe) / t_hand
            print(f"  {mode} run {rep + 1}: pipeline {t_pipe:.1f} s (QE {qe_pipe:.1f} s, overhead {over_pipe:.1f} s), "
                  f"by hand {t_hand:.1f} s (QE {qe_hand:.1f} s, overhead {over_hand:.1f} s); ratio {t_pipe / t_hand:.3f}, "
                  f"QE-noise-free {adjusted:.3f}", flush=True)
            runs.append((t_pipe / t_hand, t_pipe, t_hand, t_one, adjusted, over_pipe, over_hand))
        n_ph = sum(exe == "ph.x" for exe, *_ in steps)
        ratios = sorted(r[0] for r in runs)
        med = runs[[r[0] for r in runs].index(ratios[len(ratios) // 2])]
        spread = f" (range {ratios[0]:.3f}-{ratios[-1]:.3f} over {len(runs)} runs)" if len(runs) > 1 else ""
        print(f"  {mode:6s} ph.x: by hand {med[2]:5.1f} s ({len(steps)} QE runs, {n_ph} of ph.x), "
              f"pipeline {med[1]:5.1f} s, ratio pipeline / hand {med[0]:.3f}{spread}")
        adj = sorted(r[4] for r in runs)
        print(f"         QE-noise-free ratio: median {adj[len(adj) // 2]:.3f} (range {adj[0]:.3f}-{adj[-1]:.3f}); "
              f"overhead median {sorted(r[5] for r in runs)[len(runs) // 2]:.1f} s pipeline, "
              f"{sorted(r[6] for r in runs)[len(runs) // 2]:.1f} s by hand")
        if med[3]:
            print(f"         by hand with ONE ph.x run over all q-points: {med[3]:5.1f} s "
                  f"(pipeline / that {med[1] / med[3]:.3f}; per-q-point ph.x costs {med[2] / med[3]:.3f}x by hand)")
        if args.floor:
            n_jobs = len(list((wd / f"pipeline_{mode}_0/logs/benchmarks/dft/al").glob("*.tsv")))
            reps = max(args.repeat, 3)
            for kind, n in (("script", n_jobs), ("shell", n_jobs), ("script", 1)):
                fl = sorted(snakemake_floor(wd / f"floor_{kind}_{n}", n, kind, args.np, reps))
                print(f"         Snakemake floor, {n} no-op {kind} job{'s' if n > 1 else ''}: median {fl[reps // 2]:.2f} s "
                      f"(range {fl[0]:.2f}-{fl[-1]:.2f}); lowest ratio it allows here: "
                      f"{(med[2] + fl[reps // 2]) / med[2]:.3f}")
        tables[mode] = (parse_lambda_x((cand / "lambda/lambda.out").read_text()),
                        parse_matdyn_lambda(cand / "matdyn/lambda"))
    if {"single", "split"} <= tables.keys():
        for i, label in enumerate(("lambda.x", "matdyn")):
            a, b = tables["split"][i], tables["single"][i]
            print(f"  split vs single ph.x, {label}: max |d lambda|/lambda = {100 * max_rel_diff(a, b, 'lambda'):.3f} %, "
                  f"max |d omega_log|/omega_log = {100 * max_rel_diff(a, b, 'omega_log_K'):.3f} %")


if __name__ == "__main__":
    main()
