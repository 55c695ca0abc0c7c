"""Crystal fingerprints for the coverage metrics (COV-R / COV-P), two kinds:

- ``cdvae`` (default): the fingerprints of CDVAE's evaluation (Xie et al. 2021), computed with
  matminer — structure = CrystalNNFingerprint preset ``ops`` of every site, averaged over sites
  (61 values); composition = ElementProperty preset ``magpie`` (132 values: six statistics of
  22 element properties). matminer is imported on first use only (it takes seconds).
- ``own``: tcflow's earlier fingerprints, kept for comparison —
  structure: for every site, the neighbours within ``SHELL_MAX`` times its nearest-neighbour
  distance are smeared onto ``N_SHELL_BINS`` Gaussian bins of r / r_nn (so the fingerprint
  describes coordination geometry, not cell size), divided by ``COUNT_SCALE``; averaged over
  sites. composition: fraction-weighted mean, mean absolute deviation, minimum and maximum of
  eight element properties (Magpie-style).

Composition fingerprints are returned raw; the metrics standardise them (metrics.py).
A crystal whose fingerprint cannot be computed is a *failure*, not an error: its row is NaN,
``ok`` is False and the reason is kept (:func:`fingerprint_set`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

#: Fingerprint kinds (``generate.metrics.fingerprint``).
KINDS = ("cdvae", "own")
#: COV cutoffs (structure, composition) used when the config leaves them null: CDVAE's for
#: MP-20 for ``cdvae``; for ``own`` about the 90th percentile of the test->training
#: nearest-neighbour distances (docs/generate.md).
DEFAULT_CUTOFFS = {"cdvae": (0.4, 10.0), "own": (0.3, 3.0)}
#: Bumped when the ``own`` definition changes (part of the fingerprint cache key).
OWN_VERSION = "1"

#: r / r_nn range (dimensionless) covered by the ``own`` structure fingerprint.
SHELL_MIN, SHELL_MAX = 0.9, 2.0
N_SHELL_BINS = 12
#: Gaussian width (in r / r_nn units) of each neighbour on the bin grid.
SHELL_WIDTH = 0.1
#: Neighbour counts are divided by this (a typical first-shell coordination number).
COUNT_SCALE = 12.0
#: Search radius cap (Å) for neighbours.
MAX_RADIUS_A = 12.0
#: Element properties of the ``own`` composition fingerprint.
ELEMENT_PROPS = ("Z", "row", "group", "X", "atomic_mass", "atomic_radius", "mendeleev_no",
                 "molar_volume")


# ---- own ------------------------------------------------------------------------------------

def structure_fingerprint(struct) -> np.ndarray:
    """``own``: (N_SHELL_BINS,) averaged site fingerprint of a pymatgen Structure."""
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
    """``own``: (4 * len(ELEMENT_PROPS),) raw (unstandardised) composition features."""
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


# ---- cdvae (matminer) -----------------------------------------------------------------------

_MM: tuple | None = None


def _matminer():
    """(CrystalNNFingerprint 'ops', ElementProperty 'magpie'), built once (lazy import)."""
    global _MM
    if _MM is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from matminer.featurizers.composition.composite import ElementProperty
            from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

            _MM = (CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie"))
    return _MM


def cdvae_structure_fingerprint(struct) -> np.ndarray:
    """``cdvae``: (61,) CrystalNN 'ops' site fingerprints averaged over the sites."""
    cnn, _ = _matminer()
    return np.mean([cnn.featurize(struct, i) for i in range(len(struct))], axis=0)


def cdvae_composition_fingerprint(struct) -> np.ndarray:
    """``cdvae``: (132,) Magpie element-property statistics of the composition (raw)."""
    _, ep = _matminer()
    return np.asarray(ep.featurize(struct.composition), dtype=float)


_FUNCS = {"cdvae": (cdvae_structure_fingerprint, cdvae_composition_fingerprint),
          "own": (structure_fingerprint, composition_fingerprint)}


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"generate.metrics.fingerprint: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return kind


def version_tag(kind: str) -> str:
    """What the fingerprints of ``kind`` depend on besides the structures (cache key)."""
    from importlib.metadata import version

    check_kind(kind)
    base = f"pymatgen-{version('pymatgen')}"
    return f"{base}_matminer-{version('matminer')}" if kind == "cdvae" else f"{base}_own-{OWN_VERSION}"


# ---- sets of fingerprints -------------------------------------------------------------------

@dataclass
class FingerprintSet:
    """Fingerprints of n crystals: ``struct`` (n, ds) and raw ``comp`` (n, dc) — NaN rows where
    ``ok`` is False; ``errors`` maps the index of every failure to its reason."""

    kind: str
    struct: np.ndarray
    comp: np.ndarray
    ok: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ok)

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())

    def take(self, idx) -> "FingerprintSet":
        idx = np.asarray(idx, dtype=int)
        pos = {int(j): k for k, j in enumerate(idx)}
        return FingerprintSet(self.kind, self.struct[idx], self.comp[idx], self.ok[idx],
                              {pos[j]: m for j, m in self.errors.items() if j in pos})

    def save(self, path: str | os.PathLike, tag: str) -> None:
        from tcflow.io import atomic_path

        idx = np.array(sorted(self.errors), dtype=int)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, kind=self.kind, tag=tag, struct=self.struct, comp=self.comp, ok=self.ok,
                         err_idx=idx, err_msg=np.array([self.errors[int(i)] for i in idx], dtype=str))

    @classmethod
    def load(cls, path: str | os.PathLike, tag: str) -> "FingerprintSet | None":
        """The saved set, or None when the file is unreadable or from another ``tag``."""
        try:
            with np.load(path, allow_pickle=False) as d:
                if str(d["tag"]) != tag:
                    return None
                return cls(str(d["kind"]), d["struct"], d["comp"], d["ok"],
                           {int(i): str(m) for i, m in zip(d["err_idx"], d["err_msg"])})
        except Exception:
            return None


def _dims(kind: str) -> tuple[int, int]:
    if kind == "cdvae":
        return 61, 132
    return N_SHELL_BINS, 4 * len(ELEMENT_PROPS)


def fingerprint_set(structs, kind: str) -> FingerprintSet:
    """Fingerprints of ``structs`` (pymatgen Structures; None = a crystal that could not be
    read). Any exception or non-finite structure fingerprint marks that crystal failed."""
    check_kind(kind)
    f_struct, f_comp = _FUNCS[kind]
    ds, dc = _dims(kind)
    n = len(structs)
    S, C = np.full((n, ds), np.nan), np.full((n, dc), np.nan)
    ok = np.zeros(n, dtype=bool)
    errors: dict[int, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CrystalNN warns about missing oxidation states per site
        for i, s in enumerate(structs):
            if s is None:
                errors[i] = "structure could not be read"
                continue
            try:
                sf = np.asarray(f_struct(s), dtype=float)
                cf = np.asarray(f_comp(s), dtype=float)
                if sf.shape != (ds,) or cf.shape != (dc,):
                    raise ValueError(f"fingerprint shapes {sf.shape}, {cf.shape}")
                if not np.isfinite(sf).all():
                    raise ValueError("non-finite structure fingerprint")
            except Exception as exc:  # failures are data (counted in metrics.json)
                errors[i] = f"{type(exc).__name__}: {exc}"[:200]
                continue
            S[i], C[i], ok[i] = sf, cf, True
    return FingerprintSet(kind, S, C, ok, errors)
