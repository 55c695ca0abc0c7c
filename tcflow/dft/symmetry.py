"""Symmetry first: standardise a structure with spglib before and after the relax.

Generated structures are P1 within numerical noise; ph.x reduces the q-grid only with the
symmetry pw.x finds, so the cell handed to QE is spglib's standardised *primitive* cell with
idealised (symmetrised) positions. Tolerances are in Å and degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Symmetrised:
    """A standardised structure and what spglib found (tolerances used included)."""

    structure: Any  # pymatgen Structure (primitive, idealised)
    spacegroup_symbol: str
    spacegroup_number: int
    symprec_A: float
    angle_tolerance_deg: float
    n_operations: int

    def record(self) -> dict[str, Any]:
        return {"spacegroup_symbol": self.spacegroup_symbol, "spacegroup_number": self.spacegroup_number,
                "symprec_A": self.symprec_A, "angle_tolerance_deg": self.angle_tolerance_deg,
                "n_operations": self.n_operations, "natoms": len(self.structure),
                "formula": self.structure.composition.reduced_formula}


def standardise(structure, symprec_A: float = 0.01, angle_tolerance_deg: float = 5.0) -> Symmetrised:
    """spglib's standardised primitive cell of ``structure`` with idealised positions."""
    import spglib
    from pymatgen.core import Lattice, Structure

    cell = (structure.lattice.matrix, structure.frac_coords, [s.specie.Z for s in structure])
    lat, pos, nums = spglib.standardize_cell(cell, to_primitive=True, no_idealize=False,
                                             symprec=symprec_A, angle_tolerance=angle_tolerance_deg)
    std = Structure(Lattice(lat), [int(z) for z in nums], pos)
    ds = spglib.get_symmetry_dataset((lat, pos, nums), symprec=symprec_A, angle_tolerance=angle_tolerance_deg)
    return Symmetrised(std, ds.international, int(ds.number), symprec_A, angle_tolerance_deg,
                       len(ds.rotations))


def perturb(structure, amplitude_A: float, seed: int):
    """A copy with every site displaced at random by up to ``amplitude_A`` (Å) per Cartesian axis."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = structure.copy()
    for i in range(len(out)):
        out.translate_sites([i], rng.uniform(-amplitude_A, amplitude_A, 3), frac_coords=False)
    return out
