"""The screen's Tc cut, calibrated on the validation split (``screen.tc_recall_target``).

A regression model's "predicted Tc > 5 K" finds few of the structures whose Tc is above 5 K: it is
trained to be close on average, and most of the training set is below 1-2 K, so it predicts high
values cautiously. Measured on the JARVIS-SC test split (``benchmarks/screen_tc.py``), the fixed
cut found 38 % of them. Calibrating asks instead: which threshold on the screen's Tc score (the
ensemble mean - ``tc_spread_k`` x its spread, K) still finds a given share (the recall) of the
validation structures with Tc > ``tc_min_K``? The highest such threshold is used, so the precision
there is as high as the validation split allows. The test split is never read.

Precision and recall are of the class "Tc > ``tc_min_K``" (K); a rule is ``score >= threshold``
(calibrated) or ``score > threshold`` (the fixed cut).
"""

from __future__ import annotations

import math

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """95 % Wilson score interval of the proportion k/n (None for n = 0): the splits are small."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def classify(y_K, score_K, threshold_K: float, tc_min_K: float, strict: bool = True) -> dict:
    """Precision and recall for Tc > ``tc_min_K`` of the rule ``score > threshold`` (``>=`` if
    not strict), with their 95 % intervals; precision is None when nothing is selected."""
    pos = np.asarray(y_K, float) > tc_min_K
    score = np.asarray(score_K, float)
    sel = score > threshold_K if strict else score >= threshold_K
    tp, n_sel, n_pos = int((pos & sel).sum()), int(sel.sum()), int(pos.sum())
    return {"threshold_K": float(threshold_K), "selected": n_sel, "true_positives": tp, "positives": n_pos,
            "precision": tp / n_sel if n_sel else None, "recall": tp / n_pos if n_pos else None,
            "precision_ci95": wilson(tp, n_sel), "recall_ci95": wilson(tp, n_pos)}


def threshold_for_recall(y_K, score_K, tc_min_K: float, recall: float) -> float:
    """The highest score threshold (rule ``score >= t``) at which the structures with
    Tc > ``tc_min_K`` are found with at least ``recall``: the k-th highest score among them,
    k = ceil(recall x their number). ValueError when the split has none of them, or a NaN score."""
    score = np.asarray(score_K, float)
    if not np.isfinite(score).all():
        raise ValueError(f"{int((~np.isfinite(score)).sum())} of {len(score)} scores are NaN")
    pos = np.sort(score[np.asarray(y_K, float) > tc_min_K])[::-1]
    if not len(pos):
        raise ValueError(f"no structure with Tc > {tc_min_K} K to calibrate on")
    k = max(1, math.ceil(recall * len(pos) - 1e-9))
    return float(pos[k - 1])


def calibrate(model_dir, val_csv, tc_min_K: float, recall: float, spread_k: float = 0.0,
              batch_size: int = 8, log=print) -> dict:
    """The calibration record of an ensemble on a validation split: the threshold on the Tc score
    (mean - ``spread_k`` x spread, K) for ``recall`` of the structures with Tc > ``tc_min_K``, and
    the validation split's precision and recall there and at the fixed cut ``score > tc_min_K``.
    ``val_csv`` is a split file of the data stage (``material_id``, ``cif``, ``tc_K``)."""
    from tcflow.screen.model import Ensemble
    from tcflow.screen.train_tc import split_graphs

    ens = Ensemble.load(model_dir)
    pairs, y, ids = split_graphs(val_csv, ens.graph, log)
    if not pairs:
        raise ValueError(f"{val_csv}: no structure to calibrate the Tc cut on")
    mean, std = ens.predict(pairs, batch_size=batch_size)
    score = mean - spread_k * std
    try:
        t = threshold_for_recall(y, score, tc_min_K, recall)
    except ValueError as exc:
        raise ValueError(f"{val_csv}: cannot calibrate the Tc cut for recall {recall}: {exc}") from None
    return {"threshold_K": t, "recall_target": recall, "tc_min_K": tc_min_K, "tc_spread_k": spread_k,
            "n_validation": len(pairs), "validation": classify(y, score, t, tc_min_K, strict=False),
            "validation_fixed_cut": classify(y, score, tc_min_K, tc_min_K, strict=True),
            "models": [str(d) for d in ens.dirs], "validation_csv": str(val_csv)}
