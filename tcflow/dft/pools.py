"""k-point pools (QE's ``-nk``): how the MPI ranks of a pw.x / ph.x run share the work.

Without pools QE splits plane waves and FFT grids over the ranks, which for the small cells of
this workflow means an all-to-all exchange at every FFT. With ``-nk n`` the ranks form n pools
that each take a share of the k-points and talk only when they sum up. Measured with QE 6.7 on
fcc Al (45/250 Ry, 14x14x14 k, 2 ranks): about 12 % less time with 2 pools on a quiet machine
(one ph.x q-point 66-70 s -> 58-61 s), half beside another 2-rank QE job on the same 2 cores
(236 s -> 125 s); identical frequencies (docs/dft.md).

Pools must divide the ranks and none may be left without a k-point, so the count is the largest
divisor of the ranks that is at most the number of irreducible k-points (spglib's count with time
reversal, a lower bound of the k-points pw.x and ph.x work with) and at most ``dft.pools`` when
that is a number.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

from tcflow.dft.cell import Cell

#: QE codes that take ``-nk``; the serial post-processing codes do not
POOL_CODES = ("pw.x", "ph.x")
#: the largest point group with inversion (O_h): no k-point orbit is larger
MAX_ORBIT = 48


def irreducible_kpoints(cell: Cell, grid: Sequence[int], symprec: float = 1e-5) -> int:
    """Irreducible points of the Gamma-centred ``grid`` (n1, n2, n3) under the cell's point group
    and time reversal (spglib); without spglib's answer, the lower bound ceil(N / 48)."""
    n_total = math.prod(int(n) for n in grid)
    try:
        import numpy as np
        import spglib

        species = {el: i + 1 for i, el in enumerate(cell.kinds)}
        spg = (np.asarray(cell.lattice), np.asarray(cell.frac_coords), [species[s] for s in cell.species])
        with warnings.catch_warnings():  # spglib 2.x: a deprecation notice about its error handling
            warnings.simplefilter("ignore", DeprecationWarning)
            mapping, _ = spglib.get_ir_reciprocal_mesh([int(n) for n in grid], spg, is_shift=[0, 0, 0],
                                                       is_time_reversal=True, symprec=symprec)
        return int(len(np.unique(mapping)))
    except Exception:  # spglib refused the cell: the orbit bound is always safe
        return max(1, math.ceil(n_total / MAX_ORBIT))


def pool_count(tasks: int, n_kpoints: int, setting: int | str = "auto") -> int:
    """The pools for ``tasks`` ranks and ``n_kpoints`` k-points: the largest divisor of ``tasks``
    not above ``n_kpoints`` nor, when ``setting`` is a number, above it (1: no pools)."""
    cap = min(int(tasks), int(n_kpoints))
    if setting != "auto":
        cap = min(cap, int(setting))
    return max(d for d in range(1, max(cap, 1) + 1) if tasks % d == 0)
