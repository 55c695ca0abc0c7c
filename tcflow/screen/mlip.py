"""Universal machine-learned interatomic potentials, weights in their wheels (offline):
relaxation, energies, forces and formation energies. ``screen.mlip`` picks one:

- ``chgnet``: CHGNet 0.4.2 (its pretrained 0.3.0 weights), trained on MPtrj energies with the
  MP2020 corrections applied: its compound energies are on the corrected scale;
- ``sevenn``: SevenNet 0.13.0's ``7net-0``, trained on MPtrj's uncorrected GGA(+U) energies:
  MP2020's anion and U corrections are added here (:func:`tcflow.energy.hull.mp2020_entry`).

Formation energy (eV/atom) = (E_corrected - sum_i n_i mu_i) / N with mu_i the per-atom energy of
element i's reference entry in pymatgen's ``analysis/compatibility/calc_compounds.json.gz``
(Materials Project GGA, 89 elements, no corrections: MP2020 corrects anions in compounds, not
elements).
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


def small_matrix_blas():
    """Context manager: NumPy's and SciPy's BLAS/LAPACK on one thread, for the relaxation: ASE's
    cell filter does linear algebra on 3x3 matrices, where a multi-threaded OpenBLAS only adds
    thread handoffs. Measured on 2 shared cores (OpenBLAS at its default 2 threads): one FIRE cell
    relaxation of a perturbed 3-atom cell 6.97 s -> 0.82 s (load ~4; the filter spent 2.3 s in 306
    3x3 ``lu_solve`` calls); relaxations of 4 JARVIS-SC structures, interleaved with and without
    it, 15.1 s -> 6.4 s (``benchmarks/screen_mlip.py --blas-ab 4``). Not used for the phonon
    pre-check, where the same A/B gave no gain (54 s without, 117 s with, on a loaded machine)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


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


def formation_energy_per_atom(energy_eV: float, composition, model: str = "chgnet") -> float:
    """Formation energy (eV/atom) of a total energy (eV) of ``composition`` (pymatgen Composition)
    as ``model`` gives it (corrected to MP2020's scale first: :func:`corrected_energy`); raises
    KeyError naming an element without a reference, ValueError when MP2020 rejects the composition."""
    energy_eV = corrected_energy(energy_eV, composition, model)
    refs = elemental_references()
    ref = 0.0
    for el, n in composition.element_composition.items():
        if el.symbol not in refs:
            raise KeyError(f"no elemental reference energy for {el.symbol}")
        ref += n * refs[el.symbol]
    return (float(energy_eV) - ref) / composition.num_atoms


#: Potentials offered, and whether their energies already include MP2020's corrections.
MODELS = {"chgnet": True, "sevenn": False}


def check_model(name: str) -> str:
    if name not in MODELS:
        raise ValueError(f"unknown MLIP {name!r} (one of {', '.join(MODELS)})")
    return name


def load_chgnet():
    """CHGNet, loaded once per process."""
    if "chgnet" not in _MODEL:
        from chgnet.model import CHGNet

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _MODEL["chgnet"] = CHGNet.load(verbose=False)
    return _MODEL["chgnet"]


def calculator(name: str = "chgnet"):
    """The potential as an ASE calculator, built once per process."""
    key = f"calc:{check_model(name)}"
    if key not in _MODEL:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "chgnet":
                from chgnet.model.dynamics import CHGNetCalculator

                _MODEL[key] = CHGNetCalculator(model=load_chgnet(), use_device="cpu")
            else:
                from sevenn.calculator import SevenNetCalculator

                _MODEL[key] = SevenNetCalculator("7net-0", device="cpu")
    return _MODEL[key]


def label(name: str = "chgnet") -> str:
    """The potential and its version, e.g. ``CHGNet 0.4.2`` or ``SevenNet 0.13.0 (7net-0)``."""
    from importlib.metadata import version

    return f"CHGNet {version('chgnet')}" if check_model(name) == "chgnet" else f"SevenNet {version('sevenn')} (7net-0)"


def _atoms(struct, model: str):
    """ASE Atoms of a pymatgen Structure with the potential ``model`` attached."""
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(struct)
    atoms.calc = calculator(model)
    return atoms


def energy(struct, model: str = "chgnet") -> float:
    """Total energy (eV) of a structure as it is, as the potential gives it (uncorrected for
    ``sevenn``: see :func:`corrected_energy`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(_atoms(struct, model).get_potential_energy())


def forces(structs, model: str = "chgnet") -> list:
    """Forces (eV/Å, natoms x 3 arrays) of several structures, one at a time: for four displaced
    72-atom supercells (a phonon pre-check), CHGNet's predict_structure batched by 4 took 32.6 s
    and 5.1 GB of peak memory, one at a time 13.0 s and 2.8 GB (2 shared cores, one torch thread)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [np.asarray(_atoms(s, model).get_forces(), dtype=float) for s in structs]


def corrected_energy(energy_eV: float, composition, model: str = "chgnet") -> float:
    """The energy on MP2020's corrected scale: as it is for ``chgnet``; with MP2020's anion and U
    corrections for ``sevenn``. ``ValueError`` when the scheme rejects the composition."""
    if MODELS[check_model(model)]:
        return float(energy_eV)
    from tcflow.energy.hull import mp2020_entry

    return float(mp2020_entry("mlip", composition, float(energy_eV)).energy)


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


def relax(struct, fmax: float = 0.1, steps: int = 300, relax_cell: bool = True, model: str = "chgnet") -> RelaxResult:
    """FIRE relaxation (ASE) of the positions and, with ``relax_cell``, the cell (ASE's
    FrechetCellFilter, as CHGNet's own StructOptimizer) with the potential ``model``; converged
    when forces (and stress) fall below ``fmax`` (eV/Å) within ``steps``."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.core import Lattice, Structure

    from tcflow.screen.graphs import MIN_DISTANCE_A

    atoms = _atoms(struct, model)
    with warnings.catch_warnings(), small_matrix_blas():
        warnings.simplefilter("ignore")
        e0 = float(atoms.get_potential_energy())
        opt = FIRE(FrechetCellFilter(atoms) if relax_cell else atoms, logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        e1 = float(atoms.get_potential_energy())
        fmax_end = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
    final = Structure(Lattice(np.asarray(atoms.cell[:])), atoms.get_chemical_symbols(), atoms.get_positions(),
                      coords_are_cartesian=True)
    out = RelaxResult(final, e0, e1, fmax_end, int(opt.nsteps), converged=converged)
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
