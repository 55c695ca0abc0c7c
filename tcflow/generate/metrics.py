"""Generation metrics as the CDVAE paper (Xie et al. 2021) and its evaluation code define them,
against a reference (test) split.

- validity: fraction of samples that are structurally / compositionally valid (and both);
- COV-R (recall): fraction of reference crystals covered by the samples; COV-P (precision):
  fraction of samples that cover some reference crystal (every sample counts in the
  denominator, also those whose fingerprint failed). "Covered" compares fingerprint distances
  (structure: Euclidean; composition: Euclidean after standardisation) with two cutoffs, by
  one of two rules:

  * ``separate`` (CDVAE's evaluation code): the nearest sample in structure and the nearest
    sample in composition are taken separately; a reference crystal is covered when both
    distances are within their cutoffs (and symmetrically for precision);
  * ``joint``: one sample must lie within both cutoffs of the reference crystal.

  Which samples are candidates (``cov_samples``): ``all`` as in CDVAE's code, or only the
  valid ones. A sample whose CIF cannot be read or whose fingerprint fails covers nothing.
- Wasserstein distances of density (g/cm^3) and of the number of distinct elements between
  valid samples and the reference;
- space-group histogram after spglib detection (sample column ``spacegroup``);
- predicted Tc: property head on the latents before and after latent optimisation and on the
  re-encoded decoded crystals (K).

``calibration`` repeats COV and the distances for the training split against the same
reference: what a generator that reproduced real crystals would score with these fingerprints.

Fingerprints of split files can be cached (``cache_dir``): one ``.npz`` per split file content
(SHA-256) and fingerprint kind, invalidated by the pymatgen / matminer version.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tcflow.generate.fingerprints import DEFAULT_CUTOFFS, FingerprintSet, check_kind

COV_RULES = ("separate", "joint")
COV_SAMPLES = ("all", "valid")
#: Which split standardises the composition fingerprints, per kind: CDVAE standardises by
#: statistics of training data; ``own`` keeps its original definition (reference split's std).
STANDARDISE_BY = {"cdvae": "train", "own": "reference"}
#: At most this many per-sample failure reasons are written to metrics.json.
MAX_FAILURE_DETAILS = 20


@dataclass
class MetricSettings:
    """fingerprint: ``cdvae`` (matminer CrystalNN + Magpie) or ``own`` (fingerprints.py);
    cov_rule: ``separate`` (CDVAE) or ``joint``; cov_samples: ``all`` (CDVAE) or ``valid``;
    struct_cutoff / comp_cutoff: COV distance thresholds, None = the kind's default
    (:data:`~tcflow.generate.fingerprints.DEFAULT_CUTOFFS`); max_reference: use at most this
    many reference crystals (None: all)."""

    fingerprint: str = "cdvae"
    cov_rule: str = "separate"
    cov_samples: str = "all"
    struct_cutoff: float | None = None
    comp_cutoff: float | None = None
    max_reference: int | None = None

    def __post_init__(self):
        check_kind(self.fingerprint)
        if self.cov_rule not in COV_RULES:
            raise ValueError(f"generate.metrics.cov_rule: unknown rule {self.cov_rule!r} "
                             f"(one of {', '.join(COV_RULES)})")
        if self.cov_samples not in COV_SAMPLES:
            raise ValueError(f"generate.metrics.cov_samples: unknown value {self.cov_samples!r} "
                             f"(one of {', '.join(COV_SAMPLES)})")

    @property
    def cutoffs(self) -> tuple[float, float]:
        """(structure, composition) cutoffs in effect."""
        ds, dc = DEFAULT_CUTOFFS[self.fingerprint]
        return (ds if self.struct_cutoff is None else float(self.struct_cutoff),
                dc if self.comp_cutoff is None else float(self.comp_cutoff))


def read_structures(path: str | os.PathLike, limit: int | None = None) -> list:
    """pymatgen Structures of a split CSV (data-stage or raw mirror format)."""
    from tcflow.structures import read_split, structure_from_cif_text

    df = read_split(path, "any")
    return [structure_from_cif_text(cif, f"{path}: {mid}")
            for mid, cif in zip(df["material_id"], df["cif"][:limit] if limit else df["cif"])]


def split_fingerprints(path: str | os.PathLike, kind: str, cache_dir: str | os.PathLike | None = None,
                       log: Callable[[str], None] | None = None) -> tuple[list, FingerprintSet]:
    """(Structures, fingerprints) of a split CSV; fingerprints are read from / written to
    ``cache_dir/<kind>-<sha256 of the file, 32 hex digits>.npz`` when ``cache_dir`` is given."""
    from tcflow.generate.fingerprints import fingerprint_set, version_tag
    from tcflow.provenance import file_sha256

    structs = read_structures(path)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{kind}-{file_sha256(path)[:32]}.npz"
        tag = version_tag(kind)
        if cache.exists():
            fps = FingerprintSet.load(cache, tag)
            if fps is not None and fps.kind == kind and len(fps) == len(structs):
                if log:
                    log(f"fingerprints ({kind}) of {path}: from {cache}")
                return structs, fps
    t0 = time.perf_counter()
    fps = fingerprint_set(structs, kind)
    if log:
        log(f"fingerprints ({kind}) of {path}: {len(structs)} crystals in {time.perf_counter() - t0:.1f} s, "
            f"{fps.n_failed} failed")
    if cache is not None:
        fps.save(cache, tag)
    return structs, fps


def _structs_and_fps(src, kind, cache_dir, log) -> tuple[list, FingerprintSet]:
    if isinstance(src, (str, os.PathLike)):
        return split_fingerprints(src, kind, cache_dir, log)
    from tcflow.generate.fingerprints import fingerprint_set

    return list(src), fingerprint_set(list(src), kind)


def comp_scaler(fps: FingerprintSet) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the composition fingerprints of ``fps`` (successful rows, NaN ignored).
    ``cdvae``: zero or undefined std -> 1 (as CDVAE's scaler); ``own``: std floored at 1e-6."""
    X = fps.comp[fps.ok]
    if len(X) == 0:
        return np.zeros(fps.comp.shape[1]), np.ones(fps.comp.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN columns
        mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    mean = np.nan_to_num(mean, nan=0.0)
    if fps.kind == "cdvae":
        std = np.where(~np.isfinite(std) | (std == 0), 1.0, std)
    else:
        std = np.maximum(np.nan_to_num(std, nan=1.0), 1e-6)
    return mean, std


def fingerprint_distances(gen: FingerprintSet, ref: FingerprintSet, mean: np.ndarray,
                          std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(structure, composition) distance matrices (n_gen, n_ref); inf where either crystal's
    fingerprint failed. Standardised composition features that are NaN count as 0 (CDVAE)."""
    from scipy.spatial.distance import cdist

    ds = np.full((len(gen), len(ref)), np.inf)
    dc = np.full((len(gen), len(ref)), np.inf)
    g, r = np.flatnonzero(gen.ok), np.flatnonzero(ref.ok)
    if len(g) and len(r):
        def z(c):
            return np.nan_to_num((c - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)

        ds[np.ix_(g, r)] = cdist(gen.struct[g], ref.struct[r])
        dc[np.ix_(g, r)] = cdist(z(gen.comp[g]), z(ref.comp[r]))
    return ds, dc


def coverage_from_distances(ds: np.ndarray, dc: np.ndarray, struct_cutoff: float, comp_cutoff: float,
                            rule: str = "separate") -> dict:
    """COV-R and COV-P (fractions) from (n_gen, n_ref) structure / composition distances.

    ``separate``: reference j is covered when min_i ds[i, j] and min_i dc[i, j] are both within
    the cutoffs (the two minima may come from different samples); ``joint``: some single i has
    ds[i, j] and dc[i, j] within the cutoffs. Precision likewise over samples; its denominator
    is every row (failed rows are inf and cover nothing)."""
    if rule not in COV_RULES:
        raise ValueError(f"unknown COV rule {rule!r}")
    n_gen, n_ref = ds.shape
    if n_gen == 0 or n_ref == 0:
        return {"cov_recall": 0.0, "cov_precision": 0.0}
    if rule == "separate":
        rec = (ds.min(0) <= struct_cutoff) & (dc.min(0) <= comp_cutoff)
        prec = (ds.min(1) <= struct_cutoff) & (dc.min(1) <= comp_cutoff)
    else:
        hit = (ds <= struct_cutoff) & (dc <= comp_cutoff)
        rec, prec = hit.any(0), hit.any(1)
    return {"cov_recall": float(rec.mean()), "cov_precision": float(prec.mean())}


def recall_by_part(ds: np.ndarray, dc: np.ndarray, struct_cutoff: float, comp_cutoff: float) -> dict:
    """What limits COV-R: the fraction of reference crystals with some sample within the
    structure cutoff, and with some sample within the composition cutoff (each alone; COV-R
    under the ``separate`` rule needs both)."""
    if ds.size == 0:
        return {"structure": 0.0, "composition": 0.0}
    return {"structure": float((ds.min(0) <= struct_cutoff).mean()),
            "composition": float((dc.min(0) <= comp_cutoff).mean())}


def _mean_finite(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _coverage_block(ds, dc, ms: MetricSettings) -> dict:
    sc, cc = ms.cutoffs
    by_rule = {rule: coverage_from_distances(ds, dc, sc, cc, rule) for rule in COV_RULES}
    out = dict(by_rule[ms.cov_rule])
    out["cov_by_rule"] = by_rule
    out["cov_recall_by_part"] = recall_by_part(ds, dc, sc, cc)
    empty = ds.size == 0
    # CDVAE's AMSD / AMCD: mean nearest-neighbour distances (over crystals whose fingerprint worked)
    out["cov_distances"] = {
        "amsd_recall": None if empty else _mean_finite(ds.min(0)),
        "amsd_precision": None if empty else _mean_finite(ds.min(1)),
        "amcd_recall": None if empty else _mean_finite(dc.min(0)),
        "amcd_precision": None if empty else _mean_finite(dc.min(1)),
    }
    return out


def _n_elements(structs) -> np.ndarray:
    return np.array([len(s.composition.elements) for s in structs])


def _density(structs) -> np.ndarray:
    return np.array([s.density for s in structs])


def _read_sample(path):
    from tcflow.structures import StructureError, read_structure

    try:
        return read_structure(path, check=False)
    except StructureError:
        return None


def generation_metrics(samples, ref_structs, ms: MetricSettings, train_structs=None,
                       cache_dir: str | os.PathLike | None = None,
                       log: Callable[[str], None] | None = None) -> dict:
    """Metrics of the samples table (DataFrame of results/generate/samples.csv) against the
    reference crystals. ``ref_structs`` / ``train_structs``: lists of pymatgen Structures or
    paths of split CSVs (paths allow the fingerprint cache in ``cache_dir``). The training
    split standardises the ``cdvae`` composition fingerprints (without it: the reference) and
    gives the ``calibration`` block."""
    from scipy.stats import wasserstein_distance

    from tcflow.generate.fingerprints import fingerprint_set

    kind = ms.fingerprint
    ref_structs, ref_fps = _structs_and_fps(ref_structs, kind, cache_dir, log)
    if ms.max_reference:
        ref_structs = ref_structs[: ms.max_reference]
        ref_fps = ref_fps.take(range(len(ref_structs)))
    train_fps = None
    if train_structs is not None:
        train_structs, train_fps = _structs_and_fps(train_structs, kind, cache_dir, log)
    std_by = STANDARDISE_BY[kind] if train_fps is not None else "reference"
    mean, std = comp_scaler(train_fps if std_by == "train" else ref_fps)

    n = len(samples)
    sv = samples["struct_valid"].astype(bool).to_numpy()
    cv = samples["comp_valid"].astype(bool).to_numpy()
    valid = sv & cv
    cand = np.ones(n, dtype=bool) if ms.cov_samples == "all" else valid
    cand_idx = np.flatnonzero(cand)
    cifs = samples["cif"].to_numpy()
    cand_structs = [_read_sample(cifs[i]) for i in cand_idx]
    t0 = time.perf_counter()
    gen_fps = fingerprint_set(cand_structs, kind)
    if log:
        log(f"fingerprints ({kind}) of {len(cand_idx)} samples in {time.perf_counter() - t0:.1f} s, "
            f"{gen_fps.n_failed} failed")
    ds, dc = fingerprint_distances(gen_fps, ref_fps, mean, std)
    sc, cc = ms.cutoffs
    ids = samples["id"].astype(str).to_numpy()
    failures = {ids[cand_idx[k]]: msg for k, msg in sorted(gen_fps.errors.items())}
    # valid samples (whose CIF reads back) for the distribution distances
    by_row = dict(zip(cand_idx.tolist(), cand_structs))
    gen = []
    for i in np.flatnonzero(valid).tolist():
        s = by_row[i] if i in by_row else _read_sample(cifs[i])
        if s is not None:
            gen.append(s)

    out = {
        "n_samples": n, "n_reference": len(ref_structs),
        "struct_validity": float(sv.mean()) if n else 0.0,
        "comp_validity": float(cv.mean()) if n else 0.0,
        "validity": float(valid.mean()) if n else 0.0,
        "cov_fingerprint": kind, "cov_rule": ms.cov_rule, "cov_samples": ms.cov_samples,
        "cov_struct_cutoff": sc, "cov_comp_cutoff": cc, "cov_comp_standardisation": std_by,
        "cov_candidates": len(cand_idx),
        "fingerprint_failures": gen_fps.n_failed,
        "fingerprint_failures_reference": ref_fps.n_failed,
        "fingerprint_failure_reasons": dict(list(failures.items())[:MAX_FAILURE_DETAILS]),
        **_coverage_block(ds, dc, ms),
        "wdist_density_g_cm3": float(wasserstein_distance(_density(gen), _density(ref_structs))) if gen else None,
        "wdist_num_elements": float(wasserstein_distance(_n_elements(gen), _n_elements(ref_structs))) if gen else None,
    }
    sg = samples["spacegroup"].astype(int)
    out["spacegroups"] = {str(k): int(v) for k, v in sg.value_counts().sort_index().items()}
    out["fraction_not_P1"] = float((sg != 1).mean()) if n else 0.0
    out["fraction_not_P1_valid"] = float((sg[valid] != 1).mean()) if valid.any() else 0.0
    tc = {"pred_tc_latent_start_K_mean": float(samples["pred_tc_latent_start_K"].mean()),
          "pred_tc_latent_K_mean": float(samples["pred_tc_latent_K"].mean()),
          "pred_tc_decoded_K_mean": float(samples["pred_tc_K"].mean())}
    tc["latent_optimisation_raised_tc"] = tc["pred_tc_latent_K_mean"] > tc["pred_tc_latent_start_K_mean"]
    tc["by_latent_step"] = {str(k): {"n": int(len(g)), "pred_tc_latent_K_mean": float(g["pred_tc_latent_K"].mean()),
                                     "pred_tc_decoded_K_mean": float(g["pred_tc_K"].mean())}
                            for k, g in samples.groupby("latent_step")}
    out["tc"] = tc
    if train_fps is not None:
        tds, tdc = fingerprint_distances(train_fps, ref_fps, mean, std)
        out["calibration"] = {
            "what": "training split scored as if it were samples (a generator reproducing real crystals)",
            "n": len(train_structs), "fingerprint_failures": train_fps.n_failed, **_coverage_block(tds, tdc, ms),
            "wdist_density_g_cm3": float(wasserstein_distance(_density(train_structs), _density(ref_structs))),
            "wdist_num_elements": float(wasserstein_distance(_n_elements(train_structs), _n_elements(ref_structs))),
        }
    return out

