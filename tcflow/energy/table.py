"""``results/energy/hull.csv``: one row per candidate, the DFT hull of its chemical system and the
MLIP columns.

DFT: the candidate's ``scf_fit`` energy (``results/dft/<id>/scf_fit/scf_fit.json``, the relaxed
cell on the dense k-grid; ph.x and tc.json play no part), its elemental references and competing
phases (``results/energy/phases/<ecut>/<phase>/``), all with one label
(:func:`tcflow.energy.steps.energy_label`), through :func:`tcflow.energy.hull.hull_table`.
Energies in eV, results in eV/atom. A row that cannot be computed says why in ``hull_status``
(one line) and leaves the numbers empty; nothing is filled in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from tcflow.energy.hull import Entry, hull_table
from tcflow.energy.phases import ELEMENT_PREFIX, parse_ecut_key, read_systems

DFT_COLUMNS = ("id", "formula", "e_form_eV_atom", "e_hull_eV_atom", "hull_decomposition", "hull_label",
               "hull_n_phases", "hull_status", "hull_notes")
MLIP_COLUMNS = ("mlip_e_form_eV_atom", "mlip_e_hull_eV_atom", "mlip_label")
HULL_COLUMNS = DFT_COLUMNS + MLIP_COLUMNS


def load_entry(name: str, root: Path) -> tuple[Entry | None, str]:
    """The energy of the chain under ``root`` (``structure/``, ``relax/``, ``scf_fit/``) as an
    :class:`Entry`, or None and the one-line reason there is none."""
    from tcflow.dft.cell import Cell
    from tcflow.energy.steps import ENERGY_STATUSES, energy_record
    from tcflow.io import read_json

    fit = read_json(root / "scf_fit" / "scf_fit.json")
    if fit["status"] not in ENERGY_STATUSES:
        return None, f"scf_fit: {fit['status']}"
    if fit.get("total_energy_ry") is None:
        return None, "scf_fit: no total energy in the pw.x output"
    rec = fit.get("energy") or energy_record(read_json(root / "structure" / "structure.json"), fit,
                                             Cell.read(root / "relax" / "relaxed.json"))
    return Entry(name, rec["composition"], rec["total_energy_eV"], rec["label"], data=rec), ""


def _pseudo_conflict(entries) -> str:
    """'' when every element uses one pseudopotential file across ``entries``, else why not."""
    seen: dict[str, tuple[str, str]] = {}
    for e in entries:
        for el, f in e.data["pseudos"].items():
            if el in seen and seen[el][0] != f:
                return f"{el}: pseudopotential {seen[el][0]} ({seen[el][1]}) differs from {f} ({e.name})"
            seen.setdefault(el, (f, e.name))
    return ""


def hull_row(system: Mapping[str, str], dft_dir: Path, phases_dir: Path) -> dict[str, Any]:
    """The DFT columns of one candidate (``system``: a row of ``systems.csv``)."""
    cid = system["id"]
    row: dict[str, Any] = {"id": cid, "formula": system.get("formula", ""), "hull_status": "ok", "hull_notes": ""}
    if system["status"] != "ok":
        return {**row, "hull_status": system["status"]}
    cand, why = load_entry(cid, dft_dir / cid)
    if cand is None:
        return {**row, "hull_status": f"candidate's {why}"}
    want = parse_ecut_key(system["ecut"])
    if {k: float(v) for k, v in cand.data["cutoffs"].items()} != want:
        return {**row, "hull_status": f"candidate's cutoffs {cand.data['cutoffs']} differ from the plan's {want}"}
    entries, notes = [cand], [system["excluded"]] if system.get("excluded") else []
    for pid in system["phases"].split():
        e, why = load_entry(pid, phases_dir / system["ecut"] / pid)
        if e is None and pid.startswith(ELEMENT_PREFIX):
            return {**row, "hull_status": f"reference {pid}: {why}"}
        if e is None:
            notes.append(f"{pid} left out ({why})")
        else:
            entries.append(e)
    conflict = _pseudo_conflict(entries)
    if conflict:
        return {**row, "hull_status": f"mixed pseudopotentials: {conflict}"}
    magnetic = sorted({f"{el}: {why}" for e in entries for el, why in e.data["magnetic_ground_state_not_modelled"].items()})
    if magnetic:
        notes.append("magnetic_ground_state_not_modelled (" + "; ".join(magnetic) + ")")
    try:
        res = hull_table(entries, names=[cid])[cid]
    except ValueError as exc:
        return {**row, "hull_status": str(exc).splitlines()[0], "hull_notes": "; ".join(notes)}
    return {**row, "formula": res["formula"], "e_form_eV_atom": res["e_form_eV_atom"],
            "e_hull_eV_atom": res["e_hull_eV_atom"],
            "hull_decomposition": " + ".join(f"{x:.4g} {f}" for f, x in sorted(res["decomposition"].items())),
            "hull_label": res["label"], "hull_n_phases": len(entries) - 1, "hull_notes": "; ".join(notes)}


def hull_rows(systems_csv, dft_dir, phases_dir, mlip_csv=None) -> list[dict]:
    """Every candidate's row: DFT columns and, from ``mlip_csv`` when given, the MLIP columns
    (empty, with the reason in ``mlip_label``, when the MLIP had none)."""
    import pandas as pd

    mlip = {}
    if mlip_csv:
        mlip = {r["id"]: r for r in pd.read_csv(mlip_csv, dtype={"id": str}, keep_default_na=False).to_dict("records")}
    rows = []
    for system in read_systems(systems_csv):
        row = hull_row(system, Path(dft_dir), Path(phases_dir))
        m = mlip.get(system["id"])
        if m is not None:
            ok = m["mlip_status"] == "ok"
            row.update(mlip_e_form_eV_atom=m["mlip_e_form_eV_atom"] if ok else math.nan,
                       mlip_e_hull_eV_atom=m["mlip_e_hull_eV_atom"] if ok else math.nan,
                       mlip_label=m["mlip_label"] if ok else f"none: {m['mlip_status']}")
        else:
            row["mlip_label"] = "none: energy.mlip is none" if not mlip_csv else "none: not in mlip.csv"
        rows.append(row)
    return rows


def write_hull(rows: list[dict], path) -> None:
    """``hull.csv`` atomically, columns :data:`HULL_COLUMNS`."""
    import pandas as pd

    from tcflow.io import atomic_path

    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=list(HULL_COLUMNS)).to_csv(tmp, index=False)
