"""How many k-points ph.x treats at each q-point: its cost, known before it runs.

ph.x's time at one irreducible q-point is close to proportional to the k-points it lists there:
the ph.x (scf) k-grid reduced by the small group of q, and for q != 0 each k with its k+q. On
fcc Pb (q 6x6x6, k 12x12x12, 16 q-points from 72 to 1872 k-points) the wall time per q-point
followed 0.41 s per k-point with R^2 0.98 (2 cores). The split ph.x jobs use these counts to
share q-points out evenly by work rather than by number (:func:`tcflow.dft.chain.q_chunks`).

The reduction follows QE: the crystal's point group (spglib) acts on fractional reciprocal
coordinates; at q it keeps the operations S with S q = q + G and, composed with time reversal,
those with S q = -q + G (as -S). Checked against ph.x's own ``number of k points`` at every q of
that Pb run (``tests/dft/test_kcount.py``).
"""

from __future__ import annotations

from typing import Sequence

from tcflow.dft.cell import Cell

#: fractional tolerance when deciding S q = ±q + G
_Q_TOL = 1e-6


def reciprocal_ops(cell: Cell, symprec_A: float = 1e-3) -> list:
    """Distinct point-group operations of ``cell`` on fractional reciprocal coordinates (integer
    3x3 arrays): for a real-space rotation R (fractional), k -> R^T k runs over the same group
    as the exact action R^-T."""
    import numpy as np
    import spglib

    numbers = [list(dict.fromkeys(cell.species)).index(s) + 1 for s in cell.species]
    sym = spglib.get_symmetry((np.array(cell.lattice), np.array(cell.frac_coords), numbers), symprec=symprec_A)
    if sym is None:
        raise ValueError("spglib found no symmetry operations for the cell")
    ops, seen = [], set()
    for r in sym["rotations"]:
        if r.tobytes() not in seen:
            seen.add(r.tobytes())
            ops.append(np.ascontiguousarray(r.T))
    return ops


def small_group(q_frac: Sequence[float], ops: list) -> list:
    """The operations ph.x reduces the k-grid with at ``q_frac``: S with S q = q + G, and -S for
    S with S q = -q + G (time reversal)."""
    import numpy as np

    q = np.asarray(q_frac, dtype=float)
    out, seen = [], set()
    for s in ops:
        for cand in (s, -s):  # -S q = q + G  <=>  S q = -q + G
            d = cand @ q - q
            if np.allclose(d, np.rint(d), atol=_Q_TOL) and cand.tobytes() not in seen:
                seen.add(cand.tobytes())
                out.append(cand)
    return out


def orbit_count(kgrid: Sequence[int], ops: list) -> int:
    """Number of orbits of the unshifted ``kgrid`` under the group ``ops``."""
    import numpy as np

    n = np.asarray([int(x) for x in kgrid])
    axes = np.meshgrid(*(np.arange(m) for m in n), indexing="ij")
    pts = np.stack([a.ravel() for a in axes], axis=1)          # integer grid coordinates
    images = []
    for s in ops:
        k = (s @ (pts / n).T).T * n
        kr = np.rint(k).astype(int)
        if not np.allclose(k, kr, atol=1e-6):
            raise ValueError(f"the {'x'.join(map(str, n))} k-grid is not invariant under the crystal's symmetry")
        kr %= n
        images.append((kr[:, 0] * n[1] + kr[:, 1]) * n[2] + kr[:, 2])
    # the group is closed, so a point's orbit is its images; count each orbit at its smallest index
    return int((np.stack(images).min(axis=0) == np.arange(len(pts))).sum())


def q_fractional(cell: Cell, q_cart_alat: Sequence[float]) -> list[float]:
    """A q-point given as ph.x writes it (Cartesian, 2π/alat, alat = |a1| for CELL_PARAMETERS
    angstrom) in fractional reciprocal coordinates: f_i = a_i · q / alat."""
    alat = cell.lengths[0]
    return [sum(a * x for a, x in zip(row, q_cart_alat)) / alat for row in cell.lattice]


def kpoints_at(kgrid: Sequence[int], q_frac: Sequence[float], ops: list) -> int:
    """k-points ph.x treats at ``q_frac`` (fractional) on the unshifted ``kgrid``, ``ops`` from
    :func:`reciprocal_ops`: the orbits under the small group of q, twice for q != 0 (k and k+q)."""
    import numpy as np

    q = np.asarray(q_frac, dtype=float)
    nk = orbit_count(kgrid, small_group(q, ops))
    return nk if np.allclose(q - np.rint(q), 0.0, atol=_Q_TOL) else 2 * nk


def ph_kpoints(cell: Cell, kgrid: Sequence[int], qpoints_cart_alat: Sequence[Sequence[float]],
               symprec_A: float = 1e-3) -> list[int]:
    """:func:`kpoints_at` for each of ``qpoints_cart_alat`` (ph.x's ``<fildyn>0`` list)."""
    ops = reciprocal_ops(cell, symprec_A)
    return [kpoints_at(kgrid, q_fractional(cell, qc), ops) for qc in qpoints_cart_alat]
