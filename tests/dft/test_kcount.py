"""ph.x's k-points per q-point, counted before it runs, against ph.x's own counts."""

import pytest

from tcflow.dft.cell import Cell
from tcflow.dft.kcount import ph_kpoints

A_PB = 2.460486757  # Å: the relaxed fcc Pb of the dft_experiment `converged` run (SSSP PBEsol)
#: that run's 16 irreducible q-points (its ph.x fildyn0, 2π/alat, alat = |a1|) and ph.x's
#: "number of k points" at each (k 12x12x12; the same list QE printed, in its order)
PB_Q = [[0, 0, 0], [1, 1, -1], [2, 2, -2], [-3, -3, 3], [2, 0, 0], [3, 1, -1], [-2, -4, 4], [-1, -3, 3],
        [0, -2, 2], [4, 0, 0], [-1, -5, 5], [0, -4, 4], [-6, 0, 0], [-2, -4, 6], [-1, -3, 5], [-6, 2, 0]]
PB_Q_UNIT = 0.117851130197756  # the q-points above are integer multiples of this (2π/alat)
PB_NK = [72, 728, 728, 378, 588, 1872, 1872, 1872, 1020, 588, 1872, 1020, 326, 1872, 1752, 1020]
#: QE's own fcc-Al el-ph test (../shared/reference/qe_test_suite_ph_metal_al: ibrav 2, k 8x8x8,
#: q 4x4x4): q-points in 2π/celldm(1) and ph.x's counts from its benchmark output
AL_Q = [[0, 0, 0], [-.25, .25, -.25], [.5, -.5, .5], [0, .5, 0], [.75, -.25, .75], [.5, 0, .5], [0, -1, 0], [-.5, -1, 0]]
AL_NK = [29, 240, 130, 200, 576, 328, 118, 174]


def test_counts_match_ph_x_on_fcc_pb_q6_k12():
    pb = Cell(((0, A_PB, A_PB), (A_PB, 0, A_PB), (A_PB, A_PB, 0)), ("Pb",), ((0.5, 0.5, 0.5),))
    qs = [[PB_Q_UNIT * x for x in q] for q in PB_Q]
    assert ph_kpoints(pb, [12, 12, 12], qs) == PB_NK


def test_counts_match_qe_test_suite_al_in_its_own_orientation():
    # ibrav = 2 vectors in units of celldm(1); alat there is celldm(1), not |a1|, so the q-points
    # (2π/celldm(1)) are rescaled to the 2π/|a1| units the function takes
    al = Cell(((-0.5, 0, 0.5), (0, 0.5, 0.5), (-0.5, 0.5, 0)), ("Al",), ((0, 0, 0),))
    s = 0.5 ** 0.5
    assert ph_kpoints(al, [8, 8, 8], [[x * s for x in q] for q in AL_Q]) == AL_NK


def test_lower_symmetry_counts_more_and_grids_must_be_invariant():
    # a tetragonally strained fcc Pb: fewer operations, more k-points at Γ than the cubic 72
    pb = Cell(((0, A_PB, A_PB), (A_PB, 0, A_PB), (1.1 * A_PB, 1.1 * A_PB, 0)), ("Pb",), ((0, 0, 0),))
    assert ph_kpoints(pb, [12, 12, 12], [[0, 0, 0]])[0] > 72
    cubic = Cell(((0, A_PB, A_PB), (A_PB, 0, A_PB), (A_PB, A_PB, 0)), ("Pb",), ((0, 0, 0),))
    with pytest.raises(ValueError, match="not invariant"):
        ph_kpoints(cubic, [12, 12, 6], [[0, 0, 0]])
