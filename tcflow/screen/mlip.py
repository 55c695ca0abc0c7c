"""Universal machine-learned interatomic potential (CHGNet 0.4.2, weights in its wheel, offline):
relaxation, energies and formation energies.

Formation energy (eV/atom) = (E_MLIP - sum_i n_i mu_i) / N with mu_i the per-atom energy of
element i's reference entry in pymatgen's ``analysis/compatibility/calc_compounds.json.gz``
(Materials Project GGA, 89 elements, no corrections: MP2020 corrects anions in compounds, not
elements). CHGNet was trained on MPtrj energies with the MP2020 corrections applied, so its
compound energies are on the corrected scale and no further correction is added.
"""

from __future__ import annotations

import gzip
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Relaxations whose cell volume changes by more than this factor (either way) have exploded.
MAX_VOLUME_FACTOR = 3.0

_REFS: dict[str, float] = {}
_MODEL = {}


def elemental_references() -> dict[str, float]:
    """Element symbol -> MP GGA energy (eV/atom) of its reference entry shipped with pymatgen."""
    if not _REFS:
        import pymatgen.analysis.compatibility as comp
        from pymatgen.core import Composition

        path = Path(comp.__path__[0]) / "calc_compounds.json.gz"
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            entries = json.load(fh)
        for entry in entries.values():
            c = Composition(entry["composition"])
            if len(c.elements) == 1:
                _REFS[c.elements[0].symbol] = float(entry["energy"]) / c.num_atoms
    return _REFS


def formation_energy_per_atom(energy_eV: float, composition) -> float:
    """Formation energy (eV/atom) of a total energy (eV) of ``composition`` (pymatgen Composition);
    raises KeyError naming an element without a reference."""
    refs = elemental_references()
    ref = 0.0
    for el, n in composition.element_composition.items():
        if el.symbol not in refs:
            raise KeyError(f"no elemental reference energy for {el.symbol}")
        ref += n * refs[el.symbol]
    return (float(energy_eV) - ref) / composition.num_atoms


def load_chgnet():
    """CHGNet, loaded once per process."""
    if "chgnet" not in _MODEL:
        from chgnet.model import CHGNet

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _MODEL["chgnet"] = CHGNet.load(verbose=False)
    return _MODEL["chgnet"]


@dataclass
class RelaxResult:
    """energy_initial_eV / energy_final_eV: total energies (eV); max_force_eV_A: largest atomic
    force at the end (eV/Å); steps: optimiser steps; converged: forces and stress below fmax
    before the step cap; error: reason when the relaxation is unusable ('' when fine)."""

    structure: object
    energy_initial_eV: float
    energy_final_eV: float
    max_force_eV_A: float
    steps: int
    converged: bool
    error: str = ""


def energy(struct) -> float:
    """CHGNet total energy (eV) of a structure as it is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = load_chgnet().predict_structure(struct, task="e")
    return float(pred["e"]) * len(struct)


def relax(struct, fmax: float = 0.1, steps: int = 300, relax_cell: bool = True) -> RelaxResult:
    """FIRE relaxation (positions and, with ``relax_cell``, the cell) with CHGNet."""
    from chgnet.model import StructOptimizer

    from tcflow.screen.graphs import MIN_DISTANCE_A

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = StructOptimizer(model=load_chgnet(), optimizer_class="FIRE")
        res = opt.relax(struct, fmax=fmax, steps=steps, relax_cell=relax_cell, verbose=False)
    traj = res["trajectory"]
    final = res["final_structure"]
    e0, e1 = float(traj.energies[0]), float(traj.energies[-1])
    fmax_end = float(np.linalg.norm(np.asarray(traj.forces[-1]), axis=1).max())
    n_steps = len(traj.energies) - 1
    out = RelaxResult(final, e0, e1, fmax_end, n_steps, converged=n_steps < steps)
    ratio = final.volume / struct.volume
    if not (math.isfinite(e1) and math.isfinite(fmax_end)):
        out.error = "relaxation exploded (non-finite energy or forces)"
    elif not 1 / MAX_VOLUME_FACTOR <= ratio <= MAX_VOLUME_FACTOR:
        out.error = f"relaxation exploded (volume x{ratio:.2f})"
    elif len(final) > 1 and float(np.min(final.distance_matrix + np.eye(len(final)) * 1e9)) < MIN_DISTANCE_A:
        out.error = "relaxation exploded (atoms overlap after relaxing)"
    elif not out.converged:
        out.error = f"relaxation not converged in {steps} steps (max force {fmax_end:.3f} eV/A)"
    return out
