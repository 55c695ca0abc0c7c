"""A standard high-symmetry path through the Brillouin zone of a candidate's own cell.

pymatgen's :class:`~pymatgen.symmetry.bandstructure.HighSymmKpath` (Setyawan-Curtarolo) gives
the path in the reciprocal lattice of the *standard primitive* cell, which may be a different
basis of the lattice, and rotated, relative to the cell QE ran (``relax/relaxed.json``). The
points are mapped through Cartesian coordinates: the rotation between the standard primitive
lattice and the primitive lattice of the cell (:meth:`Lattice.find_mapping`) brings them into the
cell's frame, and they are written in crystal coordinates of the cell's reciprocal lattice (what
matdyn.x reads with ``q_in_cryst_coord``). For a supercell of the primitive cell the same
Cartesian points give the folded branches.
"""

from __future__ import annotations

import numpy as np

#: q-points per 1/Å of path (2π included): ~100 points across a typical metal's path
LINE_DENSITY = 40
#: tolerances of the lattice mapping (relative length, degrees)
LTOL, ATOL_DEG = 1e-3, 0.5


def _rotation(structure, prim_lattice) -> np.ndarray:
    """The rotation R taking Cartesian vectors of ``prim_lattice``'s frame into ``structure``'s."""
    own = structure.get_primitive_structure().lattice
    found = own.find_mapping(prim_lattice, ltol=LTOL, atol=ATOL_DEG)
    if found is None:
        raise ValueError("the standard primitive lattice maps onto no basis of the cell's primitive lattice")
    return np.asarray(found[1], float)


def high_symmetry_path(structure, line_density: float = LINE_DENSITY) -> dict:
    """The path as data: ``frac`` (n, 3) q-points in crystal coordinates of ``structure``'s
    reciprocal lattice; ``x`` (n,) distance along the path in 1/Å (2π included; 0 across a jump
    between disconnected segments); ``ticks``: [x, label] at every high-symmetry point (``A|B``
    where one segment ends at A and the next starts at B); ``starts``: the index in ``frac`` where
    each connected segment begins (lines are not drawn across a jump)."""
    import warnings

    from pymatgen.symmetry.bandstructure import HighSymmKpath

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input structure is not the standard primitive": handled below
        kp = HighSymmKpath(structure, path_type="setyawan_curtarolo")
    rot = _rotation(structure, kp.prim.lattice)
    prim_rec = kp.prim.lattice.reciprocal_lattice.matrix         # rows b_i, 1/Å with 2π
    own_rec_inv = np.linalg.inv(structure.lattice.reciprocal_lattice.matrix)
    frac, x, ticks, starts = [], [], [], []
    dist = 0.0
    for seg in kp.kpath["path"]:
        starts.append(len(frac))
        for i, (a, b) in enumerate(zip(seg[:-1], seg[1:])):
            ka = np.asarray(kp.kpath["kpoints"][a]) @ prim_rec @ rot.T
            kb = np.asarray(kp.kpath["kpoints"][b]) @ prim_rec @ rot.T
            length = float(np.linalg.norm(kb - ka))
            n = max(2, int(round(length * line_density)) + 1)
            start = 0 if (i == 0) else 1  # segment joins are not repeated
            for t in np.linspace(0.0, 1.0, n)[start:]:
                frac.append((ka + t * (kb - ka)) @ own_rec_inv)
                x.append(dist + t * length)
            if i == 0:
                _add_tick(ticks, dist, a)
            dist += length
            _add_tick(ticks, dist, b)
    return {"frac": np.asarray(frac), "x": np.asarray(x), "ticks": ticks, "starts": starts}


def _add_tick(ticks: list, x: float, label: str) -> None:
    """Append a labelled tick; a label at the x of the previous one (a jump) joins it as ``A|B``."""
    label = "Γ" if label in ("\\Gamma", "GAMMA", "G") else label
    if ticks and abs(ticks[-1][0] - x) < 1e-9:
        if ticks[-1][1] != label:
            ticks[-1][1] = f"{ticks[-1][1]}|{label}"
        return
    ticks.append([x, label])
