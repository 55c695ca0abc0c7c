"""k-point pools (QE's -nk): the irreducible k-point count against pw.x's own on frozen real runs,
the pool count's rules, and the command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tcflow.dft import outputs as qo
from tcflow.dft.cell import Cell
from tcflow.dft.pools import irreducible_kpoints, pool_count
from tcflow.dft.runner import Launch

FIX = Path(__file__).parent / "fixtures"


def _pw_cell_and_grid(path: Path) -> tuple[Cell, tuple[int, int, int]]:
    """Cell (CELL_PARAMETERS angstrom, ATOMIC_POSITIONS crystal) and K_POINTS automatic grid of a pw.x input."""
    lines = path.read_text().splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("CELL_PARAMETERS angstrom"))
    lattice = tuple(tuple(float(x) for x in lines[i + k].split()) for k in (1, 2, 3))
    j = next(n for n, ln in enumerate(lines) if ln.startswith("ATOMIC_POSITIONS crystal"))
    species, frac = [], []
    for ln in lines[j + 1:]:
        parts = ln.split()
        if len(parts) < 4 or ln.startswith("K_POINTS"):
            break
        species.append(parts[0])
        frac.append(tuple(float(x) for x in parts[1:4]))
    k = next(n for n, ln in enumerate(lines) if ln.startswith("K_POINTS automatic"))
    grid = tuple(int(x) for x in lines[k + 1].split()[:3])
    return Cell(lattice, tuple(species), tuple(frac)), grid


def _pw_count(text: str) -> int:
    return int(re.search(r"number of k points=\s*(\d+)", text).group(1))


@pytest.mark.parametrize("name", ["alpha_B", "hcp_Mg", "JVASP-36214"])
def test_irreducible_count_is_pw_x_count(name):
    """alpha-B (R-3m, 12 atoms), hcp Mg (fractional translations), a 12-operation binary: spglib's
    count with time reversal is exactly the k-point count pw.x 6.7 printed for the same input."""
    cell, grid = _pw_cell_and_grid(FIX / "kpoints" / f"{name}.in")
    assert irreducible_kpoints(cell, grid) == _pw_count((FIX / "kpoints" / f"{name}.out.head").read_text())


def test_irreducible_count_fcc_al_relax_run():
    cell, grid = _pw_cell_and_grid(FIX / "pw_walltime" / "relax.in")
    assert grid == (14, 14, 14)
    assert irreducible_kpoints(cell, grid) == _pw_count((FIX / "pw_walltime" / "pw_relax_ok.out").read_text()) == 104


def test_unusable_cell_falls_back_to_the_orbit_bound():
    flat = Cell(((1.0, 0, 0), (2.0, 0, 0), (0, 0, 1.0)), ("Al",), ((0, 0, 0),))  # singular lattice
    assert irreducible_kpoints(flat, (12, 12, 12)) == 36  # 1728 / 48


@pytest.mark.parametrize("tasks, n_k, setting, want", [
    (2, 104, "auto", 2), (32, 104, "auto", 32), (32, 20, "auto", 16), (32, 1, "auto", 1),
    (12, 5, "auto", 4), (6, 104, "auto", 6), (7, 3, "auto", 1), (32, 104, 8, 8), (32, 104, 1, 1),
    (32, 104, 12, 8), (1, 104, "auto", 1),
])
def test_pool_count_divides_ranks_and_never_exceeds_k_points(tasks, n_k, setting, want):
    got = pool_count(tasks, n_k, setting)
    assert got == want
    assert tasks % got == 0 and got <= n_k


def test_command_puts_pools_on_pw_and_ph_only():
    launch = Launch(mpi="mpirun", tasks=4, pools=2)
    assert launch.command("pw.x", "scf.in") == ["mpirun", "-n", "4", "pw.x", "-nk", "2", "-in", "scf.in"]
    assert launch.command("ph.x", "ph.in") == ["mpirun", "-n", "4", "ph.x", "-nk", "2", "-in", "ph.in"]
    assert launch.command("matdyn.x", "m.in") == ["matdyn.x"]
    assert Launch(tasks=4).command("pw.x", "scf.in") == ["mpirun", "-n", "4", "pw.x", "-in", "scf.in"]


def test_pools_parsed_from_output():
    """QE prints 'K-points division: npool = n' only with pools; the plane-wave split otherwise."""
    assert qo.pools((FIX / "pw_walltime" / "pw_relax_ok.out").read_text()) == 1
    pooled = "     Parallel version (MPI), running on     2 processors\n\n" \
             "     MPI processes distributed on     1 nodes\n     K-points division:     npool     =       2\n"
    assert qo.pools(pooled) == 2
