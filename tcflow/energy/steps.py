"""The energy chain of one phase: ``structure -> relax -> scf_fit``, the DFT stage's own step
functions (:mod:`tcflow.dft.steps`) run through its step contract (:func:`tcflow.dft.stage.run_step`)
with the phase directory ``results/energy/phases/<ecut>/<phase>`` as the candidate directory.

What differs from a candidate, and only this:

- the plane-wave cutoffs (Ry) are the pair in the directory key, i.e. those of the candidates the
  phase is compared with (:func:`phase_config` sets them as protocol overrides);
- a molecule (H2, N2, O2, F2, Cl2, Br2, I2 in a box) is computed at the Γ point (k-grid 1 1 1) and
  relaxed with fixed cell (pw.x ``relax``), not ``vc-relax``;
- ``scf_fit``'s record gets an ``energy`` block (:func:`energy_record`): total energy (eV),
  composition, cutoffs, protocol, pseudopotentials, QE version and the hull ``label``.
  ``insulator`` (a gap above the metallicity threshold) is a valid energy for a hull.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from tcflow.dft.cell import Cell
from tcflow.dft.chain import STEPS as DFT_STEPS
from tcflow.dft.chain import Step
from tcflow.dft.stage import OK, StepContext, failed
from tcflow.energy.phases import parse_ecut_key

#: 1 Ry in eV (CODATA 2018)
RY_EV = 13.605693122994
#: scf_fit statuses whose total energy a hull may use
ENERGY_STATUSES = (OK, "insulator")
#: protocol keys left out of the label's hash: shown separately (cutoffs) or k-point sampling, which
#: is per structure anyway (a molecule's Γ point sets kgrid and scf_kgrid_divisor)
UNHASHED_KEYS = ("name", "ecutwfc_ry", "ecutrho_ry", "kgrid", "scf_kgrid_divisor")
SPIN = "non-spin-polarised"

#: the DFT chain's first three steps (inputs, gates, resources), as rules ``energy_<name>``
STEPS: tuple[Step, ...] = tuple(replace(s, rule=f"energy_{s.name}", func=s.name)
                                for s in DFT_STEPS if s.name in ("structure", "relax", "scf_fit"))
BY_RULE = {s.rule: s for s in STEPS}


def phase_config(dft_cfg: Mapping[str, Any], ecut: str, molecule: bool) -> dict:
    """The ``dft`` config a phase's steps run with: the run's, with the cutoffs of ``ecut`` (and,
    for a molecule, the Γ point) as protocol overrides."""
    overrides = {**(dft_cfg.get("overrides") or {}), **parse_ecut_key(ecut)}
    if molecule:  # Γ only, for the relax and the scf (a divisor > 1 would make the dense grid 2x2x2)
        overrides.update(kgrid=[1, 1, 1], scf_kgrid_divisor=1)
    return {**dft_cfg, "overrides": overrides, "phase_molecule": bool(molecule)}


def protocol_hash(proto: Mapping[str, Any]) -> str:
    """First 8 hex digits of the SHA-256 of the protocol without :data:`UNHASHED_KEYS`."""
    body = {k: v for k, v in proto.items() if k not in UNHASHED_KEYS}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]


def energy_label(qe_version: str | None, pseudo_dir: str, proto: Mapping[str, Any],
                 cutoffs: Mapping[str, float]) -> str:
    """How an energy was computed, in one string: entries of one hull must share it."""
    return (f"QE {qe_version or '?'} / {Path(pseudo_dir).name} / protocol {proto['name']} "
            f"[{protocol_hash(proto)}] / ecutwfc {cutoffs['ecutwfc_ry']:g} Ry, ecutrho "
            f"{cutoffs['ecutrho_ry']:g} Ry / {SPIN}")


def energy_record(st: Mapping[str, Any], fit: Mapping[str, Any], cell: Cell) -> dict:
    """The energy block of a finished scf_fit: ``total_energy_eV`` of ``cell`` (the relaxed cell
    the scf ran on), its composition (element -> count) and ``natoms``, and how it was computed."""
    from tcflow.energy.elements import MAGNETIC

    comp = dict(Counter(cell.species))
    return {"total_energy_eV": float(fit["total_energy_ry"]) * RY_EV, "composition": comp, "natoms": len(cell),
            "cutoffs": st["cutoffs"], "protocol": st["protocol"]["name"], "protocol_hash": protocol_hash(st["protocol"]),
            "pseudo_dir": st["pseudo_dir"], "pseudos": st["pseudos"], "qe_version": fit.get("qe_version"),
            "spin": SPIN, "label": energy_label(fit.get("qe_version"), st["pseudo_dir"], st["protocol"], st["cutoffs"]),
            "magnetic_ground_state_not_modelled": {el: MAGNETIC[el] for el in sorted(comp) if el in MAGNETIC}}


def structure(ctx: StepContext) -> dict:
    """The DFT structure step on the phase CIF, plus what the phase is."""
    from tcflow.dft.steps.structure import structure as dft_structure

    rec = dft_structure(ctx)
    rec["phase"] = {"id": ctx.cid, "molecule": bool(ctx.cfg.get("phase_molecule")), "ecut": ctx.cand.parent.name}
    return rec


def relax(ctx: StepContext) -> dict:
    """vc-relax of a crystal (the DFT step); for a molecule, pw.x ``relax`` of the ions in their box."""
    from tcflow.dft.steps import pw

    if not ctx.st["phase"]["molecule"] or not ctx.proto["relax"]:
        return pw.relax(ctx)
    from tcflow.dft.steps.structure import save_structure

    start = Cell.read(ctx.dir("structure") / "standard.json")
    res = pw.run_pw(ctx, "relax", ctx.st["grids"]["k_relax"], start)
    rec = pw.pw_record(res, relaxed=True, fixed_cell=True)
    if not res.ok:
        return {**rec, "status": failed(res, "relax")}
    s = pw.final_geometry(res, start).to_structure()
    save_structure(s, ctx.out / "relaxed.json")
    return {**rec, "status": OK, "volume_A3": s.volume}


def scf_fit(ctx: StepContext) -> dict:
    """The DFT la2F scf on the dense k-grid, with the energy block; its QE outdir (wavefunctions,
    not needed for an energy) is removed."""
    from tcflow.dft import inputs as qi
    from tcflow.dft.steps import pw

    rec = pw.scf_fit(ctx)
    shutil.rmtree(ctx.out / qi.OUTDIR, ignore_errors=True)
    if rec["status"] in ENERGY_STATUSES and rec.get("total_energy_ry") is not None:
        rec["energy"] = energy_record(ctx.st, rec, Cell.read(ctx.dir("relax") / "relaxed.json"))
    return rec


FUNCS = {"structure": structure, "relax": relax, "scf_fit": scf_fit}
