"""Benchmark: DFT formation energies through the energy stage next to the Materials Project's.

For JARVIS-SC compounds that are also among the Materials Project entries pymatgen ships
(``pymatgen/analysis/compatibility/calc_compounds.json.gz``, GGA(+U) total energies with MP2020
corrections; of the JARVIS-SC formulas: BeBr2, CaCO3, CaSi, MgCO3, MgH2, MoO2, Na2O2, NaO2, WO3),
each compound is a `cif_dir` candidate whose `results/energy/hull.csv` is computed (elemental
references and competing phases through the DFT steps; no ph.x), and its E_form is printed next
to MP's, computed from the shipped entries with pymatgen's PhaseDiagram (MP's lowest elemental
entries as references; a published MP value, offline). MP (PBE, PAW, +corrections) and tcflow
(PBEsol, SSSP) are different methods: the comparison is of the number, never of one hull.

Usage: .venv/bin/python benchmarks/energy_mp.py [--formula CaSi ...] [--protocol fast|jarvis|sssp]
       [--workdir DIR] [--cores N] [--max-phases N]
Resumable: one Snakemake run in DIR (default /tmp/tcflow_energy_mp_<protocol>), all formulas as
candidates of one run; run it again to continue. Writes DIR/energy_mp.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = REPO.parent / "shared"


def mp_formation_energy(formula: str) -> tuple[float, str]:
    """(E_form in eV/atom, MP id) of the lowest shipped MP entry of ``formula``."""
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.core import Composition

    from tcflow.energy.hull import mp_shipped_entries

    comp = Composition(formula)
    system = {str(el) for el in comp.elements}
    local = [e for e in mp_shipped_entries() if {str(el) for el in e.composition.elements} <= system]
    pdiag = PhaseDiagram(local)
    mine = [e for e in local if e.composition.reduced_formula == comp.reduced_formula]
    if not mine:
        sys.exit(f"{formula}: not among pymatgen's shipped MP entries")
    best = min(mine, key=lambda e: e.energy_per_atom)
    return float(pdiag.get_form_energy_per_atom(best)), str(best.entry_id)


def main() -> None:
    from energy_mgb2 import jarvis_row, run_hull

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formula", nargs="+", default=["CaSi"])
    ap.add_argument("--protocol", default="fast", choices=("jarvis", "fast", "sssp"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--max-phases", type=int, default=None,
                    help="energy.max_phases_per_system (0: elemental references only: E_form, and E_hull against them)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    wd = Path(args.workdir or f"/tmp/tcflow_energy_mp_{args.protocol}")
    (wd / "cifs").mkdir(parents=True, exist_ok=True)
    ids = {}
    for formula in args.formula:
        row = jarvis_row(formula)
        ids[row["material_id"]] = formula
        (wd / "cifs" / f"{row['material_id']}.cif").write_text(row["cif"])
    wall = run_hull(wd, args.protocol, args.cores, args.max_phases)
    with open(wd / "results" / "energy" / "hull.csv", newline="") as fh:
        hull = {r["id"]: r for r in csv.DictReader(fh)}
    rows = []
    for cid, formula in ids.items():
        h = hull[cid]
        mp_ef, mp_id = mp_formation_energy(formula)
        rows.append({"formula": formula, "id": cid, "protocol": args.protocol, "hull_status": h["hull_status"],
                     "dft_e_form_eV_atom": h["e_form_eV_atom"], "dft_e_hull_eV_atom": h["e_hull_eV_atom"],
                     "mlip_e_form_eV_atom": h["mlip_e_form_eV_atom"], "mp_e_form_eV_atom": f"{mp_ef:.4f}",
                     "mp_id": mp_id, "hull_label": h["hull_label"]})
        print(f"{formula} ({cid}): tcflow DFT E_form {h['e_form_eV_atom'] or 'n/a'} eV/atom "
              f"(E_hull {h['e_hull_eV_atom'] or 'n/a'}; {h['hull_status']}), CHGNet {h['mlip_e_form_eV_atom'] or 'n/a'}, "
              f"MP {mp_ef:+.4f} eV/atom ({mp_id}, pymatgen's shipped entry, MP2020-corrected)")
    with open(wd / "energy_mp.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wall time of this invocation: {wall:.0f} s; table: {wd / 'energy_mp.csv'}")


if __name__ == "__main__":
    main()
