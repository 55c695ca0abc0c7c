"""Generation metrics as the CDVAE paper defines them, against a reference (test) split.

- validity: fraction of samples that are structurally / compositionally valid (and both);
- COV-R (recall): fraction of reference crystals with a valid sample within both the
  structure- and composition-fingerprint cutoffs; COV-P (precision): fraction of valid
  samples within both cutoffs of some reference crystal;
- Wasserstein distances of density (g/cm^3) and of the number of distinct elements between
  valid samples and the reference;
- space-group histogram after spglib detection (sample column ``spacegroup``);
- predicted Tc: property head on the latents before and after latent optimisation and on the
  re-encoded decoded crystals (K).

``calibration`` repeats COV and the distances for the training split against the same
reference: what a generator that reproduced real crystals would score with these fingerprints.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class MetricSettings:
    """struct_cutoff / comp_cutoff: COV fingerprint distance thresholds (see fingerprints.py);
    max_reference: use at most this many reference crystals (None: all)."""

    struct_cutoff: float = 0.1
    comp_cutoff: float = 4.0
    max_reference: int | None = None


def read_structures(path: str | os.PathLike, limit: int | None = None) -> list:
    """pymatgen Structures of a split CSV (data-stage or raw mirror format)."""
    import pandas as pd
    from pymatgen.core import Structure

    df = pd.read_csv(path, dtype={"material_id": str, "cif": str})
    out = []
    for mid, cif in zip(df["material_id"], df["cif"][:limit] if limit else df["cif"]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.append(Structure.from_str(cif, fmt="cif"))
        except Exception as exc:
            raise ValueError(f"{path}: cannot parse CIF of {mid}: {exc}") from exc
    return out


def _fps(structs):
    from tcflow.generate.fingerprints import composition_fingerprint, structure_fingerprint

    return (np.stack([structure_fingerprint(s) for s in structs]),
            np.stack([composition_fingerprint(s) for s in structs]))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))


def coverage(gen_fps, ref_fps, comp_std, ms: MetricSettings) -> dict:
    """COV-R and COV-P (fractions) from (struct, comp) fingerprints of samples and reference."""
    if len(gen_fps[0]) == 0:
        return {"cov_recall": 0.0, "cov_precision": 0.0}
    ds = _pairwise(gen_fps[0], ref_fps[0])
    dc = _pairwise(gen_fps[1] / comp_std, ref_fps[1] / comp_std)
    hit = (ds <= ms.struct_cutoff) & (dc <= ms.comp_cutoff)
    return {"cov_recall": float(hit.any(0).mean()), "cov_precision": float(hit.any(1).mean())}


def _n_elements(structs) -> np.ndarray:
    return np.array([len(s.composition.elements) for s in structs])


def _density(structs) -> np.ndarray:
    return np.array([s.density for s in structs])


def generation_metrics(samples, ref_structs, ms: MetricSettings, train_structs=None) -> dict:
    """Metrics of the samples table (DataFrame of results/generate/samples.csv) against
    reference crystals (pymatgen Structures)."""
    from pymatgen.core import Structure
    from scipy.stats import wasserstein_distance

    if ms.max_reference:
        ref_structs = ref_structs[: ms.max_reference]
    n = len(samples)
    sv = samples["struct_valid"].astype(bool).to_numpy()
    cv = samples["comp_valid"].astype(bool).to_numpy()
    valid = sv & cv
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = [Structure.from_file(p) for p in samples["cif"][valid]]
    ref_fps = _fps(ref_structs)
    comp_std = np.maximum(ref_fps[1].std(0), 1e-6)
    gen_fps = _fps(gen) if gen else (np.zeros((0, ref_fps[0].shape[1])), np.zeros((0, ref_fps[1].shape[1])))
    out = {
        "n_samples": n, "n_reference": len(ref_structs),
        "struct_validity": float(sv.mean()) if n else 0.0,
        "comp_validity": float(cv.mean()) if n else 0.0,
        "validity": float(valid.mean()) if n else 0.0,
        **coverage(gen_fps, ref_fps, comp_std, ms),
        "wdist_density_g_cm3": float(wasserstein_distance(_density(gen), _density(ref_structs))) if gen else None,
        "wdist_num_elements": float(wasserstein_distance(_n_elements(gen), _n_elements(ref_structs))) if gen else None,
        "cov_struct_cutoff": ms.struct_cutoff, "cov_comp_cutoff": ms.comp_cutoff,
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
    if train_structs:
        tr_fps = _fps(train_structs)
        out["calibration"] = {
            "what": "training split scored as if it were samples (a generator reproducing real crystals)",
            "n": len(train_structs), **coverage(tr_fps, ref_fps, comp_std, ms),
            "wdist_density_g_cm3": float(wasserstein_distance(_density(train_structs), _density(ref_structs))),
            "wdist_num_elements": float(wasserstein_distance(_n_elements(train_structs), _n_elements(ref_structs))),
        }
    return out
