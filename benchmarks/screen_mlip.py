"""Benchmark: which universal potential the screen should use (``screen.mlip``): CHGNet or SevenNet.

Two questions, both offline, both through the screen's own functions (:mod:`tcflow.screen.mlip`,
:mod:`tcflow.screen.phonons`):

1. **Formation energy against published values.** Every JARVIS-SC compound whose formula is among
   the Materials Project entries pymatgen ships (``calc_compounds.json.gz``: BeBr2, CaCO3, CaSi,
   MgCO3, MgH2, MoO2, Na2O2, NaO2, WO3): its JARVIS structure relaxed with the potential (cell
   and positions, FIRE, 0.05 eV/Å), E_form on MP2020's corrected scale against pymatgen's MP
   elemental references (:func:`tcflow.screen.mlip.formation_energy_per_atom`) next to MP's own
   E_form of that formula (the lowest shipped entry, MP2020-corrected, on the hull of the shipped
   entries of its system). Plus two salts against experiment (standard enthalpies of formation,
   NIST-JANAF / CRC: MgO -601.6 kJ/mol = -3.118 eV/atom, NaCl -411.2 kJ/mol = -2.131 eV/atom).
   Reported: per compound, and the MAE per potential.
2. **Speed** on the screen's work: ``benchmarks/screen.py``'s MLIP rows (relaxations of a seeded
   random draw of JARVIS-SC structures, then phonon pre-checks), per potential.
3. ``--blas-ab N``: the one-thread BLAS limit of the relaxation
   (:func:`tcflow.screen.mlip.small_matrix_blas`) on and off, interleaved structure by structure
   (A, B, A, B, ...) on N structures of the same draw, so that other load on a shared machine hits
   both alike: relaxation seconds each way, and the ratio.

Usage: .venv/bin/python benchmarks/screen_mlip.py [--models chgnet sevenn] [--relax 10] [--phonons 3]
       [--threads 2] [--blas-ab 0] [--out benchmarks/results/screen_mlip_compare.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

#: Experimental standard enthalpies of formation (eV/atom), NIST-JANAF / CRC Handbook.
EXPERIMENT = {"MgO": -3.118, "NaCl": -2.131}


def shipped_jarvis_formulas() -> list[str]:
    """Reduced formulas of the JARVIS-SC mirror that are among pymatgen's shipped MP compounds."""
    from energy_mgb2 import jarvis_rows

    from tcflow.energy.hull import mp_shipped_entries

    mp = {e.composition.reduced_formula for e in mp_shipped_entries() if len(e.composition.elements) > 1}
    return sorted({f for f, _ in jarvis_rows() if f in mp})


def salts():
    from pymatgen.core import Lattice, Structure

    rock = lambda a, el: Structure.from_spacegroup(  # noqa: E731
        "Fm-3m", Lattice.cubic(a), el, [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    return {"MgO": rock(4.25, ["Mg", "O"]), "NaCl": rock(5.64, ["Na", "Cl"])}


def accuracy(model: str, formulas: list[str]) -> list[dict]:
    from energy_mgb2 import jarvis_row
    from energy_mp import mp_formation_energy

    from tcflow.screen import mlip
    from tcflow.structures import structure_from_cif_text

    cases = []
    for f in formulas:
        row = jarvis_row(f)
        ref, ref_id = mp_formation_energy(f)
        cases.append((f, row["material_id"], structure_from_cif_text(row["cif"], row["material_id"]), ref, ref_id))
    cases += [(f, "rocksalt", s, EXPERIMENT[f], "experiment") for f, s in salts().items()]
    out = []
    for formula, sid, s, ref, ref_src in cases:
        t0 = time.perf_counter()
        r = mlip.relax(s, fmax=0.05, steps=500, model=model)
        ef = mlip.formation_energy_per_atom(r.energy_final_eV, s.composition, model)
        out.append({"formula": formula, "structure": sid, "natoms": len(s), "e_form_eV_atom": ef,
                    "reference_eV_atom": ref, "reference": ref_src, "error_eV_atom": ef - ref,
                    "steps": r.steps, "converged": r.converged, "relax_error": r.error,
                    "seconds": time.perf_counter() - t0})
        print(f"  {model:7s} {formula:7s} ({sid}): E_form {ef:+.3f} vs {ref:+.3f} ({ref_src}) eV/atom; "
              f"{r.steps} steps{' ' + r.error if r.error else ''}", flush=True)
    return out


def blas_ab(structs, n: int, model: str, seed: int = 1) -> dict:
    """Relaxations of ``n`` random structures with the one-thread BLAS limit on and off,
    interleaved; seconds each way (the off side: the process's BLAS threads as they are). (The
    first run of this A/B, session 10, also timed the phonon pre-check: 117 s with the limit, 54 s
    without, so the pre-check does not use it.)"""
    import contextlib
    import random

    from threadpoolctl import threadpool_info

    from tcflow.screen import mlip

    draw = random.Random(seed).sample(structs, n)
    on = mlip.small_matrix_blas
    t = {"on": 0.0, "off": 0.0}
    mlip.calculator(model)
    for s in draw:
        for side in ("on", "off"):
            mlip.small_matrix_blas = on if side == "on" else contextlib.nullcontext
            try:
                t0 = time.perf_counter()
                mlip.relax(s, model=model)
                t[side] += time.perf_counter() - t0
            finally:
                mlip.small_matrix_blas = on
    blas = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
    out = {"model": model, "structures": n, "blas_threads_off": blas, "relax_s": t,
           "relax_ratio_off_on": t["off"] / t["on"]}
    print(f"BLAS limit A/B ({model}, {n} relaxations, BLAS threads otherwise {blas}): "
          f"{t['on']:.1f} s with vs {t['off']:.1f} s without (x{out['relax_ratio_off_on']:.2f})", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["chgnet", "sevenn"])
    ap.add_argument("--relax", type=int, default=10)
    ap.add_argument("--phonons", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blas-ab", type=int, default=0, help="structures for the BLAS-limit A/B (0: skip)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "screen_mlip_compare.json"))
    args = ap.parse_args()

    import importlib.metadata as md

    import numpy as np
    import torch

    from screen import load_structures, mlip_speed
    from tcflow.screen import mlip

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    formulas = shipped_jarvis_formulas()
    print(f"JARVIS-SC formulas among pymatgen's shipped MP entries: {', '.join(formulas)}")
    structs = [s for _, s in load_structures(1000)]
    res = {"threads": args.threads, "machine": platform.processor() or platform.machine(),
           "versions": {p: md.version(p) for p in ("chgnet", "sevenn", "torch", "ase", "pymatgen")}, "models": {}}
    if args.blas_ab:
        res["blas_ab"] = blas_ab(structs, args.blas_ab, args.models[0])
    for model in args.models:
        t0 = time.perf_counter()
        mlip.calculator(model)
        load_s = time.perf_counter() - t0
        rows = accuracy(model, formulas)
        mp_err = [abs(r["error_eV_atom"]) for r in rows if r["reference"] != "experiment"]
        exp_err = [abs(r["error_eV_atom"]) for r in rows if r["reference"] == "experiment"]
        speed = mlip_speed(structs, args.relax, args.phonons, model=model)
        res["models"][model] = {"label": mlip.label(model), "load_s": load_s, "compounds": rows,
                                "mae_vs_mp_eV_atom": float(np.mean(mp_err)), "n_mp": len(mp_err),
                                "mae_vs_experiment_eV_atom": float(np.mean(exp_err)), "speed": speed}
        print(f"{model}: MAE vs MP {np.mean(mp_err):.3f} eV/atom ({len(mp_err)} compounds), vs experiment "
              f"{np.mean(exp_err):.3f} eV/atom ({len(exp_err)}); load {load_s:.1f} s; {speed['relaxations']} "
              f"relaxations {speed['relax_s'] / max(speed['relaxations'], 1):.1f} s each "
              f"({speed['relax_steps_mean']:.0f} steps); phonon pre-check {speed['phonon_s_each']:.1f} s each",
              flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
