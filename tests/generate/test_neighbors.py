"""The torch periodic neighbour search agrees with pymatgen on every dataset structure."""

import warnings

import numpy as np
import pytest
import torch

from tcflow.generate.neighbors import radius_graph_pbc

CUTOFF_A = 5.0
BATCH = 64


def _edges_ours(structs):
    frac = torch.tensor(np.concatenate([s.frac_coords for s in structs]), dtype=torch.float64)
    lat = torch.tensor(np.stack([s.lattice.matrix for s in structs]), dtype=torch.float64)
    natoms = torch.tensor([len(s) for s in structs])
    e = radius_graph_pbc(frac, lat, natoms, CUTOFF_A, max_images=20)
    start = np.concatenate([[0], np.cumsum(natoms.numpy())])
    graph = np.searchsorted(start, e.src.numpy(), side="right") - 1
    out = [dict() for _ in structs]
    for g, i, j, im, d in zip(graph, e.src.numpy(), e.dst.numpy(), e.image.numpy(), e.dist.numpy()):
        out[g][(i - start[g], j - start[g], *im)] = d
    return out


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_matches_pymatgen_on_all_structures(split, split_csv):
    import pandas as pd
    from pymatgen.core import Structure

    cifs = pd.read_csv(split_csv(split))["cif"].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structs = [Structure.from_str(c, fmt="cif") for c in cifs]
    checked = 0
    for s0 in range(0, len(structs), BATCH):
        chunk = structs[s0:s0 + BATCH]
        ours = _edges_ours(chunk)
        for s, mine in zip(chunk, ours):
            ci, pi, im, d = s.get_neighbor_list(CUTOFF_A)
            ref = {(a, b, *map(int, o)): x for a, b, o, x in zip(ci, pi, im, d)}
            # ignore pairs within 1e-6 Å of the cutoff (either side may round differently)
            near = lambda dd: abs(dd - CUTOFF_A) < 1e-6  # noqa: E731
            assert {k for k, v in ref.items() if not near(v)} == {k for k, v in mine.items() if not near(v)}
            for k, v in ref.items():
                if k in mine:
                    assert mine[k] == pytest.approx(v, abs=1e-8)
            checked += 1
    assert checked == len(structs)


def test_skewed_cell_and_wrapped_coordinates():
    """A strongly sheared cell with coordinates outside [0, 1) still matches pymatgen."""
    from pymatgen.core import Lattice, Structure

    lat = Lattice([[3.0, 0, 0], [2.7, 1.2, 0], [0.4, 0.3, 2.5]])
    s = Structure(lat, ["Nb", "N"], [[0.1, -0.3, 1.2], [0.6, 0.5, 0.5]], coords_are_cartesian=False)
    mine = _edges_ours([s])[0]
    ci, pi, im, d = s.get_neighbor_list(CUTOFF_A)
    assert set(mine) == {(a, b, *map(int, o)) for a, b, o in zip(ci, pi, im)}
