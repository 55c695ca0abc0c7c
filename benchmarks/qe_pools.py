"""Benchmark: QE with and without k-point pools (``-nk``) on the pipeline's own inputs.

Takes a candidate the DFT stage finished (default: fcc Al with the ``jarvis`` protocol, as
``benchmarks/dft_experiment.py --materials Al --protocols jarvis`` leaves it) and runs, in a
scratch directory, its la2F scf input (``scf_fit/scf_fit.in``, la2F off) and then one ph.x
q-point input (``ph.work/run1/ph.<iq>.in``, el-ph off) on that scf, each ``--repeat`` times with 1
pool and with ``--np`` pools, alternating. Prints wall times, the load average before and after,
and checks that both give the same phonon frequencies. Run it on a quiet machine for the
figure users see alone, beside another QE job for a shared one.

Usage: .venv/bin/python benchmarks/qe_pools.py [--cand /tmp/tcflow_dft_experiment/jarvis/results/dft/Al]
       [--iq 2] [--np 2] [--repeat 2] [--workdir /tmp/tcflow_qe_pools]
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
sys.path.insert(0, str(REPO))

from tcflow.dft.outputs import dyn_frequencies_cm1  # noqa: E402
from tcflow.dft.runner import Launch, qe_environment  # noqa: E402


def _edit(text: str, drop: tuple[str, ...], set_: dict[str, str] | None = None) -> str:
    """A QE input without the namelist lines ``drop`` and with ``set_`` values replaced."""
    out = re.sub(r"^\s*(" + "|".join(drop) + r")\s*=.*\n", "", text, flags=re.M) if drop else text
    for key, value in (set_ or {}).items():
        out = re.sub(rf"^(\s*{key}\s*=).*$", rf"\g<1> {value}", out, flags=re.M)
    return out


def run(exe: str, name: str, wd: Path, np_: int, pools: int) -> float:
    """``exe`` on input ``name`` launched as the pipeline launches it (:class:`Launch`), wall s."""
    launch = Launch(mpi="mpirun", tasks=np_, pools=pools)
    t0 = time.monotonic()
    with open(wd / f"{name}.{pools}.out", "w") as out:
        subprocess.run(launch.command(exe, name), cwd=wd, stdout=out, stderr=subprocess.STDOUT,
                       env=qe_environment(launch), check=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cand", default="/tmp/tcflow_dft_experiment/jarvis/results/dft/Al")
    ap.add_argument("--iq", type=int, default=2, help="irreducible q-point of the candidate's ph.x run")
    ap.add_argument("--np", type=int, default=2, help="MPI ranks; the pooled runs use as many pools")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/tcflow_qe_pools")
    args = ap.parse_args()
    cand = Path(args.cand)
    scf_in, ph_in = cand / "scf_fit" / "scf_fit.in", cand / "ph.work" / "run1" / f"ph.{args.iq}.in"
    for f in (scf_in, ph_in):
        if not f.is_file():
            sys.exit(f"{f}: missing (run benchmarks/dft_experiment.py --materials Al --protocols jarvis first)")
    wd = Path(args.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True)
    (wd / "scf.in").write_text(_edit(scf_in.read_text(), ("max_seconds",), {"la2F": ".false."}))
    (wd / "ph.in").write_text(_edit(ph_in.read_text(), ("max_seconds", "electron_phonon", "el_ph_sigma", "el_ph_nsigma",
                                                        "fildvscf", "recover"), {}))
    print(f"{cand}: scf {scf_in.name}, ph.x q-point {args.iq}; {args.np} ranks; load {os.getloadavg()[0]:.2f}")
    times: dict[tuple[str, int], list[float]] = {}
    for exe, name in (("pw.x", "scf.in"), ("ph.x", "ph.in")):
        for _ in range(args.repeat):
            for pools in (1, args.np):
                if exe == "ph.x":  # a fresh scf for each ph.x run, untimed, with the same pools
                    run("pw.x", "scf.in", wd, args.np, pools)
                t = run(exe, name, wd, args.np, pools)
                times.setdefault((exe, pools), []).append(t)
                print(f"  {exe} pools {pools}: {t:.1f} s", flush=True)
    f1, f2 = dyn_frequencies_cm1(wd / "ph.in.1.out"), dyn_frequencies_cm1(wd / f"ph.in.{args.np}.out")
    same = len(f1) == len(f2) > 0 and max(abs(x - y) for x, y in zip(f1, f2)) <= 0.05
    for exe in ("pw.x", "ph.x"):
        a, b = times[(exe, 1)], times[(exe, args.np)]
        print(f"{exe}: no pools {' / '.join(f'{x:.1f}' for x in a)} s, {args.np} pools "
              f"{' / '.join(f'{x:.1f}' for x in b)} s: {100 * (1 - sum(b) / sum(a)):.0f} % less")
    print(f"phonon frequencies equal within 0.05 cm^-1 (Gamma acoustic modes are noise of that size): {same}; load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
