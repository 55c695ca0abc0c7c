"""Benchmark: speed of the paper's screen (``screen.method: alignn``) on 2 cores.

1. ALIGNN Tc predictions for the same N structures (default 1000, from the JARVIS-SC mirror), the
   same model (``alignn_atomwise_pure`` of the configured size, seeded weights: speed does not
   depend on them), two ways:

   - **one at a time**, as alignn's pretrained-prediction path does it
     (``alignn.deprecated.pretrained.get_prediction_pure``: per structure, a jarvis ``Atoms``,
     ``build_pure_torch_graph``, one forward pass; the model is loaded once, which favours it).
     The builder gets the Cartesian positions and lattice of the same pymatgen structure the
     batched path reads: a jarvis ``Atoms`` round trip moves positions by ~1e-6 Å, enough to
     change which of several equidistant images the 12-nearest-neighbour cap keeps, so the two
     paths would compute on different (equally valid) graphs. It also uses the torch neighbour
     list rather than alignn's default matscipy topology (1.6x slower per graph, measured on 30
     structures here), so this baseline is faster than alignn's own script;
   - **batched**, as the screen does it (:func:`tcflow.screen.graphs.build_graph` with the atom
     features cached, :meth:`tcflow.screen.model.Ensemble.predict` in batches).

   Both must give the same predictions (the largest difference is printed); the speed-up is
   structures/s batched over structures/s one at a time (goal: >= 10 on 2 cores).
   With ``--floor``, what the hardware allows: the forward pass's matrix-multiply FLOPs per
   structure (``torch.utils.flop_counter`` over the same batches; elementwise work, scatter and
   graph building not counted, so a lower bound) and the best single-precision GEMM rate of this
   machine at ``--threads`` (square matmuls of 1024 and 2048). FLOPs / peak is the least time a
   batched forward pass can take per structure, and one-at-a-time time over it the highest
   speed-up any batching could reach here.
2. CHGNet relaxations per second (cell and positions, FIRE, fmax 0.1 eV/Å) of ``--relax``
   structures drawn at random (seed 0) from the same set, and seconds per phonopy + CHGNet
   pre-check (``--n 0`` times only these).

Usage: .venv/bin/python benchmarks/screen.py [--n 1000] [--relax 10] [--phonons 3] [--mlip chgnet|sevenn]
       [--hidden 256 --alignn-layers 4 --gcn-layers 4] [--floor] [--out benchmarks/results/screen.json]
Defaults: the model size of config/paper.yaml's screen. One run; prints a table, writes JSON.
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
sys.path.insert(0, str(REPO))
MIRROR = REPO.parent / "shared" / "data" / "jarvis_supercon"


def load_structures(n: int, split_order=("train", "val", "test")):
    """The first ``n`` readable structures of the mirror's splits, as (id, pymatgen Structure)."""
    from tcflow.structures import StructureError, read_split, structure_from_cif_text

    out = []
    for split in split_order:
        df = read_split(MIRROR / f"{split}.csv", kind="any")
        for mid, cif in zip(df["material_id"], df["cif"]):
            try:
                out.append((mid, structure_from_cif_text(cif, f"{split}:{mid}")))
            except StructureError:
                continue
            if len(out) == n:
                return out
    return out


def one_at_a_time(model, structs, gs) -> tuple[list[float], float]:
    """alignn's per-structure path: jarvis Atoms -> build_pure_torch_graph -> one forward pass."""
    import numpy as np
    import torch
    from alignn.torch_graph_builder import build_pure_torch_graph
    from jarvis.core.atoms import pmg_to_atoms

    preds = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in structs:
            atoms = pmg_to_atoms(s)
            lat = torch.as_tensor(np.asarray(s.lattice.matrix), dtype=torch.get_default_dtype())
            pos = torch.as_tensor(np.asarray(s.cart_coords), dtype=torch.get_default_dtype())
            g, lg = build_pure_torch_graph(atoms=atoms, two_body_cutoff=gs.cutoff_A,
                                           three_body_cutoff=gs.three_body_cutoff_A,
                                           max_neighbors=gs.max_neighbors, atom_features="cgcnn",
                                           positions=pos, lattice=lat, use_matscipy_topology=False,
                                           compute_line_graph=True)
            out = model([g, lg, lat])
            preds.append(float((out["out"] if isinstance(out, dict) else out).reshape(-1)[0]))
    return preds, time.perf_counter() - t0


def batched(ens, structs, batch_size: int) -> tuple[list[float], float, list]:
    """The screen's path: cached-feature graphs, batched ensemble forward passes (predictions,
    seconds, and the graphs it built)."""
    from tcflow.screen.graphs import build_graph

    t0 = time.perf_counter()
    pairs = [build_graph(s, ens.graph) for s in structs]
    mean, _ = ens.predict(pairs, batch_size=batch_size)
    return [float(x) for x in mean], time.perf_counter() - t0, pairs


def forward_gflop(model, pairs: list, batch_size: int) -> float:
    """Matrix-multiply GFLOP of ``model``'s batched forward passes over the graph ``pairs`` (a
    lower bound of the work)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tcflow.screen.graphs import batch

    total = 0
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            with FlopCounterMode(display=False) as fc:
                model(list(batch(pairs[i:i + batch_size])))
            total += fc.get_total_flops()
    return total / 1e9


def gemm_peak_gflops(threads: int) -> float:
    """Best single-precision GEMM rate (GFLOP/s) of square matmuls, ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(5):
                torch.mm(a, b)
            best = max(best, 2 * n ** 3 * 5 / (time.perf_counter() - t0) / 1e9)
    return best


def mlip_speed(structs, n_relax: int, n_phonons: int, seed: int = 0, model: str = "chgnet") -> dict:
    """MLIP (``model``) relaxations of a seeded random draw of the structures, then phonon
    pre-checks of the first ``n_phonons`` relaxed ones."""
    import random

    from tcflow.screen import mlip, phonons

    small = random.Random(seed).sample(structs, min(len(structs), max(n_relax, n_phonons)))
    mlip.calculator(model)  # loading is once per shard, not per structure
    t0 = time.perf_counter()
    relaxed = []
    for s in small[:n_relax]:
        r = mlip.relax(s, model=model)
        relaxed.append(r)
    t_relax = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in relaxed[:n_phonons]:
        phonons.lowest_frequency_THz(r.structure, model=model)
    t_ph = time.perf_counter() - t0
    return {"model": model, "relaxations": len(relaxed), "relax_s": t_relax, "relax_per_s": len(relaxed) / t_relax,
            "relax_steps_mean": sum(r.steps for r in relaxed) / max(len(relaxed), 1),
            "natoms_mean": sum(len(s) for s in small[:n_relax]) / max(n_relax, 1),
            "phonon_checks": min(n_phonons, len(relaxed)), "phonon_s_each": t_ph / max(min(n_phonons, len(relaxed)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=8, help="the screen's default (screen.batch_size)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--alignn-layers", type=int, default=4)
    ap.add_argument("--gcn-layers", type=int, default=4)
    ap.add_argument("--relax", type=int, default=10, help="CHGNet relaxations to time (0: skip)")
    ap.add_argument("--phonons", type=int, default=3, help="phonon pre-checks to time (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--floor", action="store_true", help="also the FLOP floor of the batched forward pass")
    ap.add_argument("--mlip", default="chgnet", choices=("chgnet", "sevenn"), help="potential for the MLIP rows")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "screen.json"))
    args = ap.parse_args()

    import torch

    from tcflow.screen.graphs import GraphSettings
    from tcflow.screen.model import Ensemble, build_model, model_config

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warnings.simplefilter("ignore")
    gs = GraphSettings()
    mcfg = model_config(hidden=args.hidden, embedding=args.hidden, alignn_layers=args.alignn_layers,
                        gcn_layers=args.gcn_layers)
    model = build_model(mcfg).eval()
    ens = Ensemble([model], gs)
    structs = [s for _, s in load_structures(args.n or 1000)]
    print(f"{len(structs)} structures ({sum(map(len, structs)) / len(structs):.1f} atoms on average); "
          f"model hidden {args.hidden}, {args.alignn_layers}+{args.gcn_layers} layers; {args.threads} threads")
    res = {"n": 0, "threads": args.threads, "machine": platform.processor() or platform.machine()}
    if args.n:
        res.update(alignn_speed(model, ens, structs, gs, args))
    if args.relax or args.phonons:
        res["mlip"] = mlip_speed(structs, args.relax, args.phonons, model=args.mlip)
        m = res["mlip"]
        print(f"{args.mlip} relaxations: {m['relaxations']} in {m['relax_s']:.1f} s = {m['relax_per_s']:.3f}/s "
              f"({m['natoms_mean']:.1f} atoms, {m['relax_steps_mean']:.0f} steps on average); "
              f"phonon pre-check: {m['phonon_s_each']:.1f} s each")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"written {out}")


def alignn_speed(model, ens, structs, gs, args) -> dict:
    import numpy as np

    batched(ens, structs[:8], args.batch_size)  # warm-up (imports, feature table, allocator)
    one_at_a_time(model, structs[:8], gs)
    p_b, t_b, pairs = batched(ens, structs, args.batch_size)
    p_1, t_1 = one_at_a_time(model, structs, gs)
    diff = float(np.max(np.abs(np.asarray(p_b) - np.asarray(p_1))))
    res = {"n": len(structs), "model": {"hidden": args.hidden, "alignn_layers": args.alignn_layers,
                                        "gcn_layers": args.gcn_layers}, "batch_size": args.batch_size,
           "one_at_a_time_s": t_1, "batched_s": t_b,
           "one_at_a_time_per_s": len(structs) / t_1, "batched_per_s": len(structs) / t_b,
           "speedup": t_1 / t_b, "max_abs_diff_K": diff}
    print(f"one at a time (alignn's path): {t_1:.1f} s, {res['one_at_a_time_per_s']:.1f} structures/s")
    print(f"batched (tcflow screen):       {t_b:.1f} s, {res['batched_per_s']:.1f} structures/s")
    print(f"speed-up: {res['speedup']:.1f}x (goal >= 10); largest prediction difference {diff:.2e} K")
    if args.floor:
        gflop = forward_gflop(model, pairs, args.batch_size)
        peak = gemm_peak_gflops(args.threads)
        least = gflop / peak
        res["floor"] = {"forward_gflop": gflop, "gflop_per_structure": gflop / len(structs),
                        "gemm_peak_gflops": peak, "least_batched_s": least, "highest_speedup": t_1 / least}
        print(f"floor: {gflop / len(structs):.3f} GFLOP of matrix products per structure, GEMM peak {peak:.0f} GFLOP/s "
              f"({args.threads} threads): a batched pass takes at least {1e3 * least / len(structs):.2f} ms per "
              f"structure ({least:.1f} s), so no batching exceeds {t_1 / least:.1f}x over one at a time here")
    return res


if __name__ == "__main__":
    main()
