"""Crystal fingerprints for the coverage metrics (own definitions; matminer is not available).

- structure: for every site, the neighbours within ``SHELL_MAX`` times its nearest-neighbour
  distance are smeared onto ``N_SHELL_BINS`` Gaussian bins of r / r_nn (so the fingerprint
  describes coordination geometry, not cell size), divided by ``COUNT_SCALE``; averaged over
  sites. Values are O(0.1..1); distances are Euclidean.
- composition: fraction-weighted mean, mean absolute deviation, minimum and maximum of eight
  element properties (Magpie-style), each feature standardised by the reference set's std.
"""

from __future__ import annotations

import numpy as np

#: r / r_nn range (dimensionless) covered by the structure fingerprint.
SHELL_MIN, SHELL_MAX = 0.9, 2.0
N_SHELL_BINS = 12
#: Gaussian width (in r / r_nn units) of each neighbour on the bin grid.
SHELL_WIDTH = 0.1
#: Neighbour counts are divided by this (a typical first-shell coordination number).
COUNT_SCALE = 12.0
#: Search radius cap (Å) for neighbours.
MAX_RADIUS_A = 12.0
#: Element properties of the composition fingerprint.
ELEMENT_PROPS = ("Z", "row", "group", "X", "atomic_mass", "atomic_radius", "mendeleev_no",
                 "molar_volume")


def structure_fingerprint(struct) -> np.ndarray:
    """(N_SHELL_BINS,) averaged site fingerprint of a pymatgen Structure."""
    centers = np.linspace(SHELL_MIN, SHELL_MAX, N_SHELL_BINS)
    n = len(struct)
    # grow the search radius until every site has a neighbour
    r = 4.0
    while True:
        ci, _, _, d = struct.get_neighbor_list(r)
        if len(set(ci.tolist())) == n or r >= MAX_RADIUS_A:
            break
        r *= 1.5
    fp = np.zeros((n, N_SHELL_BINS))
    if len(d) == 0:
        return fp.mean(0)
    rnn = np.full(n, np.inf)
    np.minimum.at(rnn, ci, d)
    rnn = np.maximum(rnn, 1e-3)
    need = SHELL_MAX * rnn.max() + 3 * SHELL_WIDTH * rnn.max()
    if need > r:
        ci, _, _, d = struct.get_neighbor_list(min(need, MAX_RADIUS_A))
    ratio = d / rnn[ci]
    w = np.exp(-0.5 * ((ratio[:, None] - centers[None]) / SHELL_WIDTH) ** 2)
    np.add.at(fp, ci, w)
    return fp.mean(0) / COUNT_SCALE


def _element_table() -> dict[int, np.ndarray]:
    from pymatgen.core import Element

    table = {}
    for zz in range(1, 104):
        el = Element.from_Z(zz)
        vals = []
        for p in ELEMENT_PROPS:
            try:
                v = getattr(el, p)
                v = float(v) if v is not None else np.nan
            except Exception:  # pymatgen raises/warns for missing data
                v = np.nan
            vals.append(v)
        table[zz] = np.array(vals)
    allv = np.stack(list(table.values()))
    fill = np.nanmean(allv, axis=0)
    for zz, v in table.items():
        table[zz] = np.where(np.isnan(v), fill, v)
    return table


_TABLE: dict[int, np.ndarray] | None = None


def composition_fingerprint(struct) -> np.ndarray:
    """(4 * len(ELEMENT_PROPS),) raw (unstandardised) composition features."""
    import warnings

    global _TABLE
    if _TABLE is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _TABLE = _element_table()
    comp = struct.composition.fractional_composition
    fr = np.array([comp[el] for el in comp.elements])
    props = np.stack([_TABLE[el.Z] for el in comp.elements])
    mean = fr @ props
    mad = fr @ np.abs(props - mean)
    return np.concatenate([mean, mad, props.min(0), props.max(0)])
