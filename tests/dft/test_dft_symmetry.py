"""Symmetrisation: a P1-perturbed copy of a dataset structure recovers its space group, and the
irreducible q-points of the symmetrised cell drop to the symmetric count."""

import numpy as np
import pytest

from tcflow.dft.symmetry import perturb, standardise
from workflow_helpers import SHARED

PERTURB_A = 2e-3   # Å, well inside symprec 0.01 Å, far outside spglib's 1e-5 Å
TIGHT_SYMPREC = 1e-5
QGRID = [4, 4, 4]


def _dataset_structure(min_atoms=3):
    for mid, s, _ in iter_structures_any(SHARED / "data" / "jarvis_supercon" / "test.csv"):
        sym = standardise(s)
        if len(sym.structure) >= min_atoms and sym.n_operations >= 16:
            return mid, s, sym
    pytest.fail("no symmetric multi-atom structure in test.csv")


def iter_structures_any(path):
    import csv
    import sys

    from pymatgen.core import Structure

    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            yield row["material_id"], Structure.from_str(row["cif"], fmt="cif"), -float(row["prop"])


def _n_irr_q(structure, symprec):
    import spglib

    cell = (structure.lattice.matrix, structure.frac_coords, [s.specie.Z for s in structure])
    mapping, _ = spglib.get_ir_reciprocal_mesh(QGRID, cell, is_shift=[0, 0, 0], is_time_reversal=True,
                                              symprec=symprec)
    return len(np.unique(mapping))


def test_perturbed_structure_recovers_space_group_and_q_count():
    mid, s, sym = _dataset_structure()
    noisy = perturb(s, PERTURB_A, seed=0)
    assert standardise(noisy, symprec_A=TIGHT_SYMPREC).spacegroup_number == 1, "perturbation should break symmetry"
    recovered = standardise(noisy, symprec_A=0.01)
    assert recovered.spacegroup_number == sym.spacegroup_number, mid
    assert len(recovered.structure) == len(sym.structure)
    n_p1 = _n_irr_q(noisy, TIGHT_SYMPREC)
    n_sym = _n_irr_q(recovered.structure, TIGHT_SYMPREC)  # idealised cell: symmetric at any tolerance
    assert n_sym == _n_irr_q(sym.structure, TIGHT_SYMPREC)
    assert n_sym < n_p1
    assert n_p1 == int(np.prod(QGRID)) // 2 + 4  # P1 with time reversal: only q <-> -q pairs


def test_fcc_al_irreducible_q_matches_ph_x():
    from pymatgen.core import Lattice, Structure

    a = 7.5 * 0.529177210903
    conv = Structure(Lattice.cubic(a), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    sym = standardise(conv)
    assert sym.spacegroup_symbol == "Fm-3m" and len(sym.structure) == 1
    assert _n_irr_q(sym.structure, TIGHT_SYMPREC) == 8  # ph.x's count for fcc 4x4x4 (QE test-suite)
