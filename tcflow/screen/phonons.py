"""Dynamical-stability pre-check: phonopy finite displacements with MLIP forces (``screen.mlip``).

The lowest phonon frequency (THz) on a Gamma-centred q-mesh of the relaxed structure; imaginary
frequencies are negative (phonopy's convention). A structure passes when the lowest frequency is
at least ``min_freq_THz`` (slightly negative by default: the acoustic modes at Gamma are zero only
up to numerical noise).
"""

from __future__ import annotations

import math

import numpy as np


def supercell_matrix(struct, min_length_A: float) -> list[int]:
    """Diagonal supercell with every lattice vector at least ``min_length_A`` (Å) long."""
    return [max(1, math.ceil(min_length_A / a)) for a in struct.lattice.abc]


def lowest_frequency_THz(struct, min_length_A: float = 8.0, q_mesh: tuple = (8, 8, 8),
                         displacement_A: float = 0.01, model: str = "chgnet") -> dict:
    """{"min_freq_THz", "supercell", "n_displacements"} for a (relaxed) pymatgen Structure, forces
    from the potential ``model``."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    from tcflow.screen.mlip import forces

    unit = PhonopyAtoms(symbols=[s.specie.symbol for s in struct], cell=struct.lattice.matrix,
                        scaled_positions=struct.frac_coords)
    sc = supercell_matrix(struct, min_length_A)
    ph = Phonopy(unit, supercell_matrix=np.diag(sc), primitive_matrix="P")
    ph.generate_displacements(distance=displacement_A)
    from pymatgen.core import Lattice, Structure

    cells = [Structure(Lattice(c.cell), c.symbols, c.scaled_positions) for c in ph.supercells_with_displacements]
    ph.forces = np.array(forces(cells, model))
    ph.produce_force_constants()
    ph.run_mesh(list(q_mesh), with_eigenvectors=False, is_gamma_center=True)
    freqs = ph.mesh.frequencies
    return {"min_freq_THz": float(np.min(freqs)), "supercell": "x".join(map(str, sc)),
            "n_displacements": len(cells)}
