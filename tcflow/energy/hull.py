"""Formation energy and energy above the convex hull.

Energies are total energies of a cell in eV; results are per atom (eV/atom). An :class:`Entry`
carries a ``label`` naming how its energy was computed (code, functional, pseudopotentials,
protocol, e.g. ``"QE 6.7 / PBEsol / SSSP-eff-1.3.0 / fast"``). Energies with different labels are
not comparable, so every function here refuses to put them in one hull.

Two sources of hulls:

- :func:`hull_table`: a self-consistent set of entries (the DFT candidates, the elemental
  references and competing phases computed with the same protocol) through pymatgen's
  ``PhaseDiagram``.
- :func:`mlip_hull`: energies from a machine-learned potential trained on Materials Project
  GGA/GGA+U data, corrected with pymatgen's MP2020 scheme and placed on a hull of the Materials
  Project entries that pymatgen ships (``pymatgen/analysis/compatibility/calc_compounds.json.gz``:
  423 MP entries, of which 89 are elemental ground states). That file is a small subset of the
  Materials Project, so the hull it gives is at best as high as the full one: its ``E_hull`` is a
  lower bound of the value against the whole database, and the column says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache

#: how :func:`mlip_hull` labels its numbers
MLIP_LABEL = "MLIP (MP2020-corrected) vs pymatgen's shipped MP entries: E_hull is a lower bound"
MP_LABEL = "Materials Project GGA/GGA+U (MP2020)"


@dataclass(frozen=True)
class Entry:
    """A phase: ``name``, composition (formula string or element -> count), total energy in eV
    of that composition, and the ``label`` of the method that computed it."""

    name: str
    composition: str | dict
    energy_eV: float
    label: str
    data: dict = field(default_factory=dict, compare=False)


def _composition(comp):
    from pymatgen.core import Composition

    return comp if isinstance(comp, Composition) else Composition(comp)


def check_consistent(entries) -> str:
    """The one label all ``entries`` share; ``ValueError`` (one line) naming the mix otherwise."""
    labels: dict[str, list[str]] = {}
    for e in entries:
        labels.setdefault(e.label, []).append(e.name)
    if not labels:
        raise ValueError("no entries for a hull")
    if len(labels) > 1:
        parts = "; ".join(f"'{lab}': {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                          for lab, names in labels.items())
        raise ValueError(f"refusing to mix energies of different methods in one hull: {parts}")
    return next(iter(labels))


def elemental_references(entries) -> dict[str, float]:
    """Element -> lowest energy per atom (eV/atom) among the single-element ``entries``."""
    refs: dict[str, float] = {}
    for e in entries:
        comp = _composition(e.composition)
        if len(comp.elements) == 1:
            el = str(comp.elements[0])
            refs[el] = min(refs.get(el, float("inf")), e.energy_eV / comp.num_atoms)
    return refs


def formation_energy_per_atom(composition, energy_eV: float, references: dict[str, float]) -> float:
    """(E - sum_i n_i * mu_i) / N in eV/atom, with ``references`` element -> mu_i in eV/atom."""
    comp = _composition(composition)
    missing = [str(el) for el in comp.elements if str(el) not in references]
    if missing:
        raise ValueError(f"{comp.reduced_formula}: no elemental reference for {', '.join(missing)}")
    return (energy_eV - sum(n * references[str(el)] for el, n in comp.items())) / comp.num_atoms


def _pd_entries(entries):
    from pymatgen.entries.computed_entries import ComputedEntry

    return [ComputedEntry(_composition(e.composition), e.energy_eV, entry_id=e.name) for e in entries]


def hull_table(entries, names=None) -> dict[str, dict]:
    """E_form and E_hull (eV/atom) of ``names`` (default: every entry) on the hull of ``entries``.

    All entries must share one label (:func:`check_consistent`) and every element of the
    chemical system needs at least one single-element entry. Returns name -> ``{"formula",
    "e_form_eV_atom", "e_hull_eV_atom", "decomposition" (formula -> fraction), "label"}``.
    """
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    entries = list(entries)
    label = check_consistent(entries)
    refs = elemental_references(entries)
    pd_entries = _pd_entries(entries)
    elements = sorted({str(el) for e in pd_entries for el in e.composition.elements})
    missing = [el for el in elements if el not in refs]
    if missing:
        raise ValueError(f"hull over {'-'.join(elements)}: no elemental entry for {', '.join(missing)}")
    pdiag = PhaseDiagram(pd_entries)
    wanted = set(names) if names is not None else {e.name for e in entries}
    unknown = wanted - {e.name for e in entries}
    if unknown:
        raise ValueError(f"not among the hull entries: {', '.join(sorted(unknown))}")
    out = {}
    for e, pe in zip(entries, pd_entries):
        if e.name not in wanted:
            continue
        decomp, e_hull = pdiag.get_decomp_and_e_above_hull(pe, allow_negative=True)
        out[e.name] = {
            "formula": pe.composition.reduced_formula,
            "e_form_eV_atom": formation_energy_per_atom(pe.composition, e.energy_eV, refs),
            "e_hull_eV_atom": 0.0 if abs(e_hull) < 1e-9 else float(e_hull),
            "decomposition": {d.composition.reduced_formula: float(f) for d, f in decomp.items()},
            "label": label,
        }
    return out


# ----------------------------------------------------------------------------- MLIP hull
@lru_cache(maxsize=1)
def mp_shipped_entries() -> tuple:
    """pymatgen's shipped MP entries, MP2020-corrected (a tuple of ComputedEntry)."""
    import gzip
    import json
    from importlib.resources import files

    from monty.json import MontyDecoder
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    path = files("pymatgen.analysis.compatibility") / "calc_compounds.json.gz"
    with gzip.open(path, "rt") as fh:
        raw = json.load(fh)
    entries = [MontyDecoder().process_decoded(v) for v in raw.values()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(MaterialsProject2020Compatibility(check_potcar=False).process_entries(entries))


def mp2020_entry(name: str, composition, energy_eV: float):
    """A ComputedEntry for an energy on the MP GGA(+U) scale (what an MLIP trained on MP predicts),
    with MP2020's anion and U corrections applied (GGA+U for oxides/fluorides of Co, Cr, Fe, Mn,
    Mo, Ni, V, W, as MP ran them). ``ValueError`` when the scheme rejects the composition."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
    from pymatgen.entries.computed_entries import ComputedEntry

    compat = MaterialsProject2020Compatibility(check_potcar=False)
    comp = _composition(composition)
    syms = {str(el) for el in comp.elements}
    anion = "O" if "O" in syms else ("F" if "F" in syms else None)
    hubbards = {el: u for el, u in compat.u_settings.get(anion, {}).items() if el in syms} if anion else {}
    params = {"run_type": "GGA+U" if hubbards else "GGA", "is_hubbard": bool(hubbards), "hubbards": hubbards}
    entry = ComputedEntry(comp, energy_eV, entry_id=name, parameters=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = compat.process_entries([entry])
    if not done:
        raise ValueError(f"{name}: MP2020 compatibility rejects {comp.reduced_formula}")
    return done[0]


def mlip_hull(energies: dict[str, tuple], label: str, corrected: bool = False) -> dict[str, dict]:
    """E_form and E_hull (eV/atom) of MLIP energies against pymatgen's shipped MP entries.

    ``energies``: name -> (composition, total energy in eV on the MP GGA(+U) scale).
    ``corrected``: the energies already include MP2020's corrections (CHGNet: trained on MPtrj
    labels with MaterialsProject2020Compatibility applied, as its README says), so none is added;
    False: uncorrected GGA(+U) energies, corrected here by :func:`mp2020_entry`.
    ``label`` names the potential (e.g. ``"CHGNet 0.3.0"``); it must name an MP-trained model.
    Each candidate is placed on the hull of its own chemical system; the result rows carry
    ``label`` = the potential + :data:`MLIP_LABEL`.
    """
    from pymatgen.entries.computed_entries import ComputedEntry

    from pymatgen.analysis.phase_diagram import PhaseDiagram

    ref = mp_shipped_entries()
    out = {}
    for name, (composition, energy) in energies.items():
        cand = (ComputedEntry(_composition(composition), float(energy), entry_id=name) if corrected
                else mp2020_entry(name, composition, float(energy)))
        system = {str(el) for el in cand.composition.elements}
        local = [e for e in ref if {str(el) for el in e.composition.elements} <= system]
        have = {str(e.composition.elements[0]) for e in local if len(e.composition.elements) == 1}
        missing = sorted(system - have)
        if missing:
            raise ValueError(f"{name}: pymatgen's shipped MP entries have no {', '.join(missing)}")
        pdiag = PhaseDiagram(local + [cand])
        decomp, e_hull = pdiag.get_decomp_and_e_above_hull(cand, allow_negative=True)
        out[name] = {"formula": cand.composition.reduced_formula,
                     "e_form_eV_atom": float(pdiag.get_form_energy_per_atom(cand)),
                     "e_hull_eV_atom": float(e_hull),
                     "decomposition": {d.composition.reduced_formula: float(f) for d, f in decomp.items()},
                     "n_reference_entries": len(local), "label": f"{label}; {MLIP_LABEL}"}
    return out
