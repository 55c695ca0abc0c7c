"""Which DFT phases a run needs, decided once for the whole run (checkpoint ``energy_phases``).

For every candidate's chemical system (its set of elements) the hull needs:

- one elemental reference per element (phase ``el-<El>``, :mod:`tcflow.energy.elements`);
- competing phases: JARVIS-SC structures (``results/data/{train,val,test}.csv``; phase id = the
  JARVIS id) with 2+ elements, all within the system and at most ``energy.max_phase_atoms``
  atoms per cell, plus every user reference CIF (``energy.reference_cifs``; phase ``ref-<stem>``)
  within the system, plus (``energy.dft_3d_phases``) the JARVIS-DFT dft_3d structures near
  JARVIS's own hull (:mod:`tcflow.energy.dft3d`; phase id = the JARVIS id, under the same atom
  cap); user references first, then JARVIS phases by JARVIS's energy above its hull where known
  (dft_3d rows, and JARVIS-SC rows found in dft_3d; unknown counts as 0), then cell size
  (smallest first), then id, at most ``energy.max_phases_per_system`` in all.

Identical structures (pymatgen ``StructureMatcher``, same reduced formula) enter once: among the
JARVIS phases the smallest cell is kept, and a phase identical to the candidate itself is left
out of that candidate's hull (its energy would enter twice).

Every phase is computed at the plane-wave cutoffs the candidate gets (Ry;
:func:`tcflow.dft.protocol.derive_cutoffs`): the phase directories are keyed by that pair
(:func:`ecut_key`), so one hull never mixes cutoffs, and a phase shared by candidates with the
same cutoffs is computed once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from tcflow.config import CID_PATTERN

log = logging.getLogger(__name__)
ELEMENT_PREFIX = "el-"
USER_PREFIX = "ref-"
PHASE_COLUMNS = ("phase", "ecut", "kind", "formula", "natoms", "source")
SYSTEM_COLUMNS = ("id", "formula", "chemsys", "ecut", "ecutwfc_ry", "ecutrho_ry", "phases", "excluded", "status")
_ID_RE = re.compile(rf"^{CID_PATTERN}$")


def ecut_key(cutoffs: Mapping[str, float]) -> str:
    """``"<ecutwfc>-<ecutrho>"`` (Ry, shortest exact form): the directory key of a cutoff pair."""
    return f"{float(cutoffs['ecutwfc_ry']):g}-{float(cutoffs['ecutrho_ry']):g}"


def parse_ecut_key(key: str) -> dict[str, float]:
    """Inverse of :func:`ecut_key`."""
    w, r = key.split("-")
    return {"ecutwfc_ry": float(w), "ecutrho_ry": float(r)}


def element_phase(el: str) -> str:
    return f"{ELEMENT_PREFIX}{el}"


@dataclass
class Phase:
    """A competing phase: ``phase`` id, ``kind`` (jarvis | dft_3d | user), composition and
    ``natoms``, where it came from (``source``), its structure (read when needed) and, for JARVIS
    structures found in dft_3d, JARVIS's energy above its own hull (``ehull``, eV/atom; used for
    the order only, never as an energy)."""

    phase: str
    kind: str
    formula: str
    natoms: int
    source: str
    elements: frozenset = field(default_factory=frozenset)
    structure: Any = None
    ehull: float | None = None


def jarvis_pool(split_csvs: Sequence[str | Path]) -> list[Phase]:
    """Every JARVIS-SC row with 2+ elements as a :class:`Phase` (structure not yet parsed)."""
    from pymatgen.core import Composition

    from tcflow.structures import read_split

    out = []
    for path in split_csvs:
        df = read_split(path, kind="data")
        for row in df.itertuples(index=False):
            comp = Composition(row.formula)
            if len(comp.elements) >= 2:
                out.append(Phase(row.material_id, "jarvis", comp.reduced_formula, int(row.natoms),
                                 f"{Path(path).name}:{row.material_id}",
                                 frozenset(str(e) for e in comp.elements), row.cif))
    return out


def dft3d_pool(table_csv: str | Path, wanted: Sequence[frozenset], max_atoms: int) -> list[Phase]:
    """The dft_3d table's rows (:mod:`tcflow.energy.dft3d`) within one of the ``wanted`` chemical
    systems and with at most ``max_atoms`` atoms, as :class:`Phase` (structure not yet parsed)."""
    from tcflow.energy.dft3d import read_table

    out = []
    for row in read_table(table_csv).itertuples(index=False):
        els = frozenset(row.elements.split())
        if int(row.natoms) <= max_atoms and any(els <= w for w in wanted):
            out.append(Phase(row.jid, "dft_3d", row.formula, int(row.natoms), f"{Path(table_csv).name}:{row.jid}",
                             els, row.structure, float(row.ehull_eV_atom)))
    return out


def user_pool(directory: str | Path | None) -> list[Phase]:
    """Every ``*.cif`` of ``energy.reference_cifs`` as a :class:`Phase`; an unreadable file or a
    stem that is not a valid id raises ``ValueError`` in one line naming the file."""
    from tcflow.structures import StructureError, read_structure

    if not directory:
        return []
    d = Path(directory)
    if not d.is_dir():
        raise ValueError(f"energy.reference_cifs: directory {d} not found")
    out = []
    for f in sorted(d.glob("*.cif")):
        if not _ID_RE.match(f.stem):
            raise ValueError(f"energy.reference_cifs: {f}: the file stem is not a valid id (letters, digits, _ . -)")
        try:
            s = read_structure(f)
        except StructureError as exc:
            raise ValueError(f"energy.reference_cifs: {exc}") from None
        out.append(Phase(f"{USER_PREFIX}{f.stem}", "user", s.composition.reduced_formula, len(s), str(f),
                         frozenset(str(e) for e in s.composition.elements), s))
    return out


def _structure(p: Phase):
    """The phase's pymatgen Structure (JARVIS rows hold CIF or dft_3d JSON text until first needed)."""
    if isinstance(p.structure, str):
        if p.kind == "dft_3d":
            from tcflow.energy.dft3d import structure_from_row

            p.structure = structure_from_row(p.structure)
        else:
            from tcflow.structures import structure_from_cif_text

            p.structure = structure_from_cif_text(p.structure, p.source)
    return p.structure


def _matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher()  # pymatgen's default tolerances (ltol 0.2, stol 0.3, angle_tol 5 deg)


def deduplicate(pool: Sequence[Phase]) -> tuple[list[Phase], dict[str, str]]:
    """Keep one of each set of identical structures (first in (natoms, id) order); returns the
    kept phases and dropped id -> the id it duplicates."""
    matcher, kept, dropped = _matcher(), [], {}
    for p in sorted(pool, key=lambda q: (q.natoms, q.phase)):
        twin = next((k for k in kept if k.formula == p.formula and matcher.fit(_structure(k), _structure(p))), None)
        if twin is None:
            kept.append(p)
        else:
            dropped[p.phase] = twin.phase
    return kept, dropped


def select_phases(system: frozenset, candidate, pool: Sequence[Phase], max_phases: int,
                  max_atoms: int) -> tuple[list[str], list[str]]:
    """Competing phases of one chemical ``system`` (a set of element symbols): ids chosen and
    notes on those left out because they are the candidate's own structure.

    ``pool``: de-duplicated phases; user phases are always eligible, JARVIS ones only with at most
    ``max_atoms`` atoms; user phases come first, then by (JARVIS ehull, unknown as 0; natoms; id);
    at most ``max_phases``."""
    matcher, chosen, notes = _matcher(), [], []
    eligible = [p for p in pool if p.elements <= system and (p.kind == "user" or p.natoms <= max_atoms)]
    eligible.sort(key=lambda q: (q.kind != "user", q.ehull or 0.0, q.natoms, q.phase))
    cand_formula = candidate.composition.reduced_formula if candidate is not None else None
    for p in eligible:
        if len(chosen) >= max_phases:
            break
        if p.formula == cand_formula and matcher.fit(candidate, _structure(p)):
            notes.append(f"{p.phase}: the candidate's own structure")
            continue
        chosen.append(p.phase)
    return chosen, notes


def plan(candidates: Sequence[tuple[str, Path]], split_csvs: Sequence[Path], energy_cfg: Mapping[str, Any],
         dft_cfg: Mapping[str, Any], pseudo_dir: str | Path | None,
         dft3d_csv: str | Path | None = None) -> tuple[list[dict], list[dict]]:
    """The phase table (one row per phase and cutoff pair) and the system table (one row per
    candidate; ``status`` ok or the one-line reason its hull cannot be computed). ``dft3d_csv``:
    the dft_3d table (:func:`tcflow.energy.dft3d.build_table`) when ``energy.dft_3d_phases``."""
    from tcflow.dft.protocol import derive_cutoffs, get_protocol
    from tcflow.dft.pseudos import load_family
    from tcflow.energy.elements import ElementStructureError, element_structure
    from tcflow.structures import StructureError, read_structure

    proto = get_protocol(dft_cfg["protocol"], dft_cfg.get("overrides"))
    family = load_family(pseudo_dir) if pseudo_dir else {}
    users = user_pool(energy_cfg.get("reference_cifs"))
    max_phases, max_atoms = int(energy_cfg["max_phases_per_system"]), int(energy_cfg["max_phase_atoms"])
    structs, systems, element_info = {}, [], {}
    for cid, cif in candidates:
        try:
            structs[cid] = read_structure(cif)
        except StructureError as exc:
            structs[cid] = None
            systems.append({"id": cid, "status": f"candidate structure: {exc}"})
            continue
    wanted = {frozenset(str(e) for e in s.composition.elements) for s in structs.values() if s is not None}
    jarvis = [p for p in jarvis_pool(split_csvs) if p.natoms <= max_atoms and any(p.elements <= w for w in wanted)]
    n_sc = len(jarvis)
    if dft3d_csv:
        extra = {p.phase: p for p in dft3d_pool(dft3d_csv, list(wanted), max_atoms)}
        for p in jarvis:  # a JARVIS-SC row is a dft_3d entry: one phase, with dft_3d's ehull
            if p.phase in extra:
                p.ehull = extra.pop(p.phase).ehull
        jarvis += sorted(extra.values(), key=lambda q: q.phase)
    pool, dups = deduplicate(jarvis)
    log.info("%d JARVIS phases within the candidates' systems (%d JARVIS-SC, %d more from dft_3d; %d duplicates "
             "dropped), %d user references", len(pool), n_sc, len(jarvis) - n_sc, len(dups), len(users))
    pool += users
    phases: dict[tuple[str, str], dict] = {}
    for cid, _ in candidates:
        s = structs[cid]
        if s is None:
            continue
        els = sorted(str(e) for e in s.composition.elements)
        row = {"id": cid, "formula": s.composition.reduced_formula, "chemsys": "-".join(els),
               "phases": "", "excluded": "", "status": "ok"}
        try:
            cut = derive_cutoffs(proto, els, family)
        except KeyError as exc:
            systems.append({**row, "status": f"no SSSP cutoffs for {exc.args[0]} in {pseudo_dir}"})
            continue
        key = ecut_key(cut)
        row.update(ecut=key, ecutwfc_ry=cut["ecutwfc_ry"], ecutrho_ry=cut["ecutrho_ry"])
        errors = []
        for el in els:
            if el not in element_info:
                try:
                    st, info = element_structure(el, energy_cfg.get("element_cifs"))
                    element_info[el] = {**info, "natoms": len(st)}
                except ElementStructureError as exc:
                    element_info[el] = str(exc)
            if isinstance(element_info[el], str):
                errors.append(element_info[el])
        if errors:
            systems.append({**row, "status": "; ".join(errors)})
            continue
        chosen, notes = select_phases(frozenset(els), s, pool, max_phases, max_atoms)
        ids = [element_phase(el) for el in els] + chosen
        row.update(phases=" ".join(ids), excluded="; ".join(notes))
        systems.append(row)
        by_id = {p.phase: p for p in pool}
        for pid in ids:
            if pid in by_id:
                p = by_id[pid]
                phases[(pid, key)] = {"phase": pid, "ecut": key, "kind": p.kind, "formula": p.formula,
                                      "natoms": p.natoms, "source": p.source}
            else:
                info = element_info[pid[len(ELEMENT_PREFIX):]]
                phases[(pid, key)] = {"phase": pid, "ecut": key, "kind": "molecule" if info["molecule"] else "element",
                                      "formula": pid[len(ELEMENT_PREFIX):], "natoms": info["natoms"],
                                      "source": info["source"]}
    order = {c: i for i, (c, _) in enumerate(candidates)}
    systems.sort(key=lambda r: order[r["id"]])
    return sorted(phases.values(), key=lambda r: (r["ecut"], r["phase"])), systems


def write_plan(phases: list[dict], systems: list[dict], phases_csv: str | Path, systems_csv: str | Path) -> None:
    """Both tables, atomically."""
    import pandas as pd

    from tcflow.io import atomic_path

    for rows, cols, path in ((phases, PHASE_COLUMNS, phases_csv), (systems, SYSTEM_COLUMNS, systems_csv)):
        with atomic_path(path) as tmp:
            pd.DataFrame(rows, columns=list(cols)).to_csv(tmp, index=False)


def read_systems(systems_csv: str | Path) -> list[dict]:
    """The system table as dicts (empty strings for empty cells)."""
    import csv

    with open(systems_csv, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def phase_cif_text(phase: str, split_csvs: Sequence[str | Path], energy_cfg: Mapping[str, Any],
                   dft3d_csv: str | Path | None = None) -> str:
    """The CIF of one phase id: an element's ground state (``el-<El>``), a user reference
    (``ref-<stem>``, byte for byte), a JARVIS-SC row (its CIF as published in the split) or a
    row of the dft_3d table (written by pymatgen)."""
    from tcflow.structures import read_split

    if phase.startswith(ELEMENT_PREFIX):
        from tcflow.energy.elements import element_structure

        s, info = element_structure(phase[len(ELEMENT_PREFIX):], energy_cfg.get("element_cifs"))
        return f"# {phase}: {info['source']}\n" + s.to(fmt="cif")
    if phase.startswith(USER_PREFIX):
        return (Path(energy_cfg["reference_cifs"]) / f"{phase[len(USER_PREFIX):]}.cif").read_text()
    for path in split_csvs:
        df = read_split(path, kind="data")
        hit = df[df["material_id"] == phase]
        if len(hit):
            return hit["cif"].iloc[0]
    if dft3d_csv:
        from tcflow.energy.dft3d import read_table, structure_from_row

        df = read_table(dft3d_csv)
        hit = df[df["jid"] == phase]
        if len(hit):
            return f"# {phase}: JARVIS-DFT dft_3d ({dft3d_csv})\n" + structure_from_row(hit["structure"].iloc[0]).to(fmt="cif")
    where = [*map(str, split_csvs), *([str(dft3d_csv)] if dft3d_csv else [])]
    raise ValueError(f"phase {phase}: not an element (el-<El>), a user reference (ref-<stem>) nor a JARVIS id "
                     f"in {', '.join(where)}")
