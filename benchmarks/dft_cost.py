"""Benchmark: how much ph.x work each protocol asks for, per material, before running anything.

ph.x's cost at one q-point is, to first order, proportional to the number of k-points it treats
there (k and k+q over the ph.x k-grid, reduced by the small group of q) times the cost of one
k-point (plane waves: cutoff^1.5, the same cell). This script counts those k-points for the
benchmark set of ``benchmarks/dft_experiment.py`` (structures from the JARVIS-SC mirror,
standardised and gridded exactly as the pipeline's structure step does it) under any protocols,
and gives the ratio of each protocol's ph.x work to ``jarvis``'s.

The counting is the pipeline's (:mod:`tcflow.dft.kcount`, checked against ph.x's own counts):
irreducible q-points of the q-grid under the crystal's point group and time reversal (ph.x's
``ldisp``); at each q, the k-grid reduced by the small group of q with time reversal; for q != 0
ph.x lists k and k+q, so twice that. ``--check-out`` compares the count with the ``number of k
points`` lines of finished ph.x outputs and fits seconds per k-point to their wall times.

Why a lower bound of the cost ratio: a converged protocol adds dense-grid scf runs (and el-ph
recomputation) that ``jarvis`` does not have, so its total-to-ph.x cost is larger than
``jarvis``'s; the whole-run ratio is then at least the ph.x work ratio. The per-k-point factor
is taken as the smaller of the plane-wave ratios of ecutwfc and ecutrho (each ^1.5), so that
the bound stays a bound whichever dominates.

Usage: .venv/bin/python benchmarks/dft_cost.py [--materials Al,Pb] [--protocols jarvis,converged]
       [--overrides qgrid_min=4] [--check-out 'DIR/ph.work/run1/ph.*.out'] [--json out.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from dft_experiment import MATERIALS, mirror_cif  # noqa: E402

from tcflow.dft.cell import Cell  # noqa: E402
from tcflow.dft.kcount import kpoints_at, reciprocal_ops  # noqa: E402
from tcflow.dft.outputs import wall_seconds  # noqa: E402

PSEUDO_DIR = REPO.parent / "shared" / "pseudo" / "sssp_pbesol_efficiency_1.3.0"


def irreducible_q(qgrid, ops) -> list:
    """One representative (fractional, reciprocal basis) per star of the unshifted q-grid under
    the point group and time reversal, as ph.x's ``ldisp`` lists them (not in its order)."""
    import numpy as np

    n = np.asarray(qgrid)
    axes = np.meshgrid(*(np.arange(m) for m in n), indexing="ij")
    pts = np.stack([a.ravel() for a in axes], axis=1) / n
    full = ops + [-s for s in ops]
    reps, seen = [], set()
    for q in pts:
        if tuple(np.rint((q % 1.0) * n).astype(int) % n) in seen:
            continue
        reps.append(q)
        seen.update(tuple(np.rint(((s @ q) % 1.0) * n).astype(int) % n) for s in full)
    return reps


def ph_kpoints_on_grid(cell: Cell, kgrid, qgrid) -> list[dict]:
    """Per irreducible q of ``qgrid``: the q-point (fractional) and the k-points ph.x treats
    there (:func:`tcflow.dft.kcount.kpoints_at`, which the pipeline uses on ph.x's own q list)."""
    ops = reciprocal_ops(cell)
    return [{"q_frac": [round(float(x), 6) for x in q], "n_k": kpoints_at(kgrid, q, ops)}
            for q in irreducible_q(qgrid, ops)]


def material_cell(name: str, proto: dict):
    """The pipeline's QE cell (spglib standardised primitive) of a benchmark material."""
    from pymatgen.core import Structure

    from tcflow.dft.symmetry import standardise

    s = Structure.from_str(mirror_cif(MATERIALS[name][0]), fmt="cif")
    std = standardise(s, proto["symprec_A"], proto["angle_tolerance_deg"]).structure
    return std, Cell.from_structure(std)


def work(name: str, protocol: str, overrides: dict | None) -> dict:
    from tcflow.dft.protocol import derive_cutoffs, derive_grids, get_protocol
    from tcflow.dft.pseudos import load_family

    proto = get_protocol(protocol, overrides)
    std, cell = material_cell(name, proto)
    grids = derive_grids(proto, std.lattice.abc, len(std))
    elements = sorted({site.specie.symbol for site in std})
    cut = derive_cutoffs(proto, elements, load_family(PSEUDO_DIR))
    per_q = ph_kpoints_on_grid(cell, grids["k_scf"], grids["q"])
    return {"material": name, "protocol": protocol, "natoms": len(std), "k_ph": grids["k_scf"], "q": grids["q"],
            "n_irr_q": len(per_q), "n_k_total": sum(r["n_k"] for r in per_q), "cutoffs": cut, "per_q": per_q}


def check_outputs(pattern: str, rows: list[dict]) -> dict:
    """Compare counted k-points with finished ph.x outputs (one q-point per output; compared as
    sorted lists) and fit seconds per k-point to their wall times (least squares through 0)."""
    import numpy as np

    found = []
    for path in sorted(glob.glob(pattern)):
        text = Path(path).read_text(errors="replace")
        nk, wall = re.search(r"number of k points=\s*(\d+)", text), wall_seconds(text)
        if nk and wall is not None:
            found.append((path, int(nk.group(1)), wall))
    counted = sorted(r["n_k"] for r in rows)
    from_out = sorted(n for _, n, _ in found)
    x = np.array([n for _, n, _ in found], float)
    y = np.array([w for _, _, w in found], float)
    slope = float(x @ y / (x @ x)) if len(x) else float("nan")
    r2 = float(1 - ((y - slope * x) ** 2).sum() / ((y - y.mean()) ** 2).sum()) if len(x) > 1 else float("nan")
    return {"outputs": len(found), "counts_match": counted == from_out, "counted": counted, "from_outputs": from_out,
            "s_per_kpoint": round(slope, 4), "r2_through_origin": round(r2, 4)}


def cutoff_factor(a: dict, b: dict) -> float:
    """Lower bound of the per-k-point cost ratio a / b: the smaller plane-wave-count ratio."""
    return min((a["ecutwfc_ry"] / b["ecutwfc_ry"]) ** 1.5, (a["ecutrho_ry"] / b["ecutrho_ry"]) ** 1.5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--materials", default=",".join(list(MATERIALS)[:8]))
    ap.add_argument("--protocols", default="jarvis,converged")
    ap.add_argument("--overrides", default="", help="key=value,... applied to every protocol but jarvis")
    ap.add_argument("--check-out", default="", help="glob of finished ph.x outputs (one q-point each) of the last material's last protocol")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.overrides.split(",") if kv)}
    protocols = [p for p in args.protocols.split(",") if p]
    out = []
    for name in [m for m in args.materials.split(",") if m]:
        if name not in MATERIALS:
            sys.exit(f"--materials: unknown material {name!r} (known: {', '.join(MATERIALS)})")
        res = {p: work(name, p, None if p == "jarvis" else overrides or None) for p in protocols}
        base = res.get("jarvis")
        for p, r in res.items():
            ratio = None
            if base and p != "jarvis":
                ratio = r["n_k_total"] / base["n_k_total"] * cutoff_factor(r["cutoffs"], base["cutoffs"])
                r["ph_work_ratio_vs_jarvis"] = round(ratio, 2)
            print(f"{name:5s} {p:12s} atoms {r['natoms']}  k_ph {'x'.join(map(str, r['k_ph'])):9s} "
                  f"q {'x'.join(map(str, r['q'])):6s} irr q {r['n_irr_q']:3d}  k-points {r['n_k_total']:6d}  "
                  f"ecut {r['cutoffs']['ecutwfc_ry']:.0f}/{r['cutoffs']['ecutrho_ry']:.0f} Ry"
                  + (f"  ph.x work {ratio:5.1f}x jarvis" if ratio else ""), flush=True)
            out.append(r)
    if args.check_out and out:
        chk = check_outputs(args.check_out, out[-1]["per_q"] if len(protocols) else [])
        print(f"check against {chk['outputs']} ph.x outputs of {out[-1]['material']}/{out[-1]['protocol']}: "
              f"counts match {chk['counts_match']}; {chk['s_per_kpoint']} s per k-point (R^2 {chk['r2_through_origin']})")
        out.append({"check": chk, "pattern": args.check_out})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
