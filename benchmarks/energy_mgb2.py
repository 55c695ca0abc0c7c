"""Benchmark: formation energy and hull of MgB2 through the energy stage (rules/energy.smk).

MgB2 from the JARVIS-SC mirror (its row found by formula) as a `cif_dir` candidate, protocol
`jarvis` (or `--protocol fast`), SSSP PBEsol; Mg (hcp, ASE) and alpha-B (R-3m, 12 atoms, shipped
CIF) as elemental references; competing phases from JARVIS-SC (the Mg-B system holds only MgB2,
twice: both are the candidate's own structure, so none is left). Target: results/energy/hull.csv
(no ph.x). Prints E_form and E_hull next to published values and the wall time.

Published values compared with:
- experiment: standard enthalpy of formation of MgB2(s) at 298.15 K, -21.98 kcal/mol = -91.96 kJ/mol
  = -0.318 eV/atom (NIST-JANAF, M. W. Chase, J. Phys. Chem. Ref. Data Monograph 9, 1998; NIST
  Chemistry WebBook, https://webbook.nist.gov/cgi/cbook.cgi?ID=C12007259&Units=CAL&Type=JANAFS&Table=on,
  Shomate parameter H = -21.97990 kcal/mol, which is the 298.15 K enthalpy of formation);
  a 0 K DFT energy leaves out zero-point and thermal terms (a few meV/atom here).

Usage: .venv/bin/python benchmarks/energy_mgb2.py [--workdir DIR] [--cores N] [--protocol jarvis|fast]
Resumable: a Snakemake run in DIR (default /tmp/tcflow_energy_mgb2_<protocol>); run it again to
continue where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FORMULA = "MgB2"
EV_PER_KJ_MOL = 1 / 96.485332
#: NIST-JANAF standard enthalpy of formation of MgB2(s), kJ/mol (3 atoms): -21.97990 kcal/mol
EXP_DHF_KJ_MOL = -21.97990 * 4.184


def jarvis_rows():
    """(reduced formula from the CIF's ``_chemical_formula_sum``, row) of every JARVIS-SC mirror
    row, by split, then file order."""
    from pymatgen.core import Composition

    csv.field_size_limit(sys.maxsize)
    for split in ("train", "val", "test"):
        with open(SHARED / "data" / "jarvis_supercon" / f"{split}.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                line = next((ln for ln in r["cif"].splitlines() if ln.startswith("_chemical_formula_sum")), "")
                if line:
                    yield Composition(line.split(None, 1)[1].strip("'\" ")).reduced_formula, r


def jarvis_row(formula: str) -> dict:
    """The first JARVIS-SC row (by split, then file order) whose CIF's reduced formula is ``formula``."""
    row = next((r for f, r in jarvis_rows() if f == formula), None)
    if row is None:
        sys.exit(f"{formula} not in {SHARED}/data/jarvis_supercon")
    return row


def run_hull(wd: Path, protocol: str, cores: int, max_phases: int | None = None) -> float:
    """Snakemake on the repository's Snakefile in ``wd`` (every CIF of ``wd/cifs`` a `cif_dir`
    candidate, the energy stage on; ``max_phases``: energy.max_phases_per_system, None for the
    default) up to ``results/energy/hull.csv``; returns the wall time (s)."""
    cap = "" if max_phases is None else f", max_phases_per_system: {max_phases}"
    (wd / "config.yaml").write_text(
        f"data: {{mirror: {SHARED}}}\n"
        f"candidates: {{source: cif_dir, path: {wd / 'cifs'}}}\n"
        f"dft: {{protocol: {protocol}}}\n"
        f"energy: {{enabled: true, mlip: chgnet{cap}}}\n")
    t0 = time.time()
    cmd = [str(REPO / ".venv" / "bin" / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(wd),
           "--configfile", str(wd / "config.yaml"), "--cores", str(cores), "--rerun-incomplete",
           "results/energy/hull.csv"]
    with open(wd / "snakemake.log", "a") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--protocol", default="jarvis", choices=("jarvis", "fast", "sssp"))
    args = ap.parse_args()
    wd = Path(args.workdir or f"/tmp/tcflow_energy_mgb2_{args.protocol}")
    (wd / "cifs").mkdir(parents=True, exist_ok=True)
    row = jarvis_row(FORMULA)
    cid = row["material_id"]
    (wd / "cifs" / f"{cid}.cif").write_text(row["cif"])
    wall = run_hull(wd, args.protocol, args.cores)
    with open(wd / "results" / "energy" / "hull.csv", newline="") as fh:
        hull = next(r for r in csv.DictReader(fh) if r["id"] == cid)
    exp = EXP_DHF_KJ_MOL / 3 * EV_PER_KJ_MOL
    print(f"{FORMULA} ({cid}), protocol {args.protocol}: hull_status {hull['hull_status']}")
    print(f"  label: {hull['hull_label']}")
    print(f"  phases besides the candidate: {hull['hull_n_phases']}; notes: {hull['hull_notes'] or '-'}")
    if hull["hull_status"] == "ok":
        print(f"  DFT  E_form {float(hull['e_form_eV_atom']):+.4f} eV/atom, E_hull {float(hull['e_hull_eV_atom']):.4f} "
              f"eV/atom (decomposition {hull['hull_decomposition']})")
    print(f"  MLIP E_form {hull['mlip_e_form_eV_atom'] or 'n/a'} eV/atom, E_hull {hull['mlip_e_hull_eV_atom'] or 'n/a'} "
          f"eV/atom ({hull['mlip_label']})")
    print(f"  experiment (NIST-JANAF, 298 K): {exp:+.4f} eV/atom")
    bench = sorted((wd / "logs" / "benchmarks").rglob("*.tsv"))
    per_rule = {}
    for b in bench:
        lines = b.read_text().splitlines()
        if len(lines) > 1:
            per_rule[str(b.relative_to(wd / "logs" / "benchmarks"))] = float(lines[-1].split("\t")[0])
    print(f"  wall time of this invocation: {wall:.0f} s; per job (s, Snakemake benchmark, last run):")
    for k, v in sorted(per_rule.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {v:8.1f}  {k}")


if __name__ == "__main__":
    main()
