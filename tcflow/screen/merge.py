"""Merge of the ALIGNN screen's shards: one predictions table, de-duplicated and ranked survivors.

Outputs:

- ``results/screen/predictions.csv``: every sample, every prediction, pass/fail per criterion and
  the reason (columns of :data:`tcflow.screen.alignn_screen.COLUMNS`)
- ``results/screen/screened.csv``: id, formula, natoms, pred_tc_K, passed, reason (the report's view)
- ``results/screen/survivors.csv``: id, cif, formula, natoms, pred_tc_K, ... for the ``candidates``
  checkpoint; ``cif`` is the relaxed structure when relaxation is on

Survivors are ranked by Tc score (mean - k x spread, K), highest first; among survivors that
pymatgen's StructureMatcher (default tolerances) finds equal, only the best-ranked is kept, the
others fail with "duplicate of <id>"; then ``top_k`` caps the list.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from tcflow.io import atomic_path

SURVIVOR_COLUMNS = ("id", "cif", "formula", "natoms", "pred_tc_K", "pred_tc_std_K", "tc_score_K",
                    "eform_eV_atom", "min_freq_THz")
SCREENED_COLUMNS = ("id", "formula", "natoms", "pred_tc_K", "passed", "reason")


def _dedup(ranked, cif_col: str) -> dict[str, str]:
    """id -> id of the better-ranked survivor it duplicates."""
    from pymatgen.core import Structure
    from pymatgen.analysis.structure_matcher import StructureMatcher

    sm = StructureMatcher()
    kept: list[tuple[str, object]] = []
    dup = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in ranked.itertuples(index=False):
            s = Structure.from_file(getattr(row, cif_col))
            match = next((kid for kid, ks in kept
                          if ks.composition.reduced_formula == s.composition.reduced_formula and sm.fit(ks, s)), None)
            if match:
                dup[row.id] = match
            else:
                kept.append((row.id, s))
    return dup


def merge_shards(samples_csv, shard_dirs: list, predictions_csv, screened_csv, survivors_csv, cfg: dict,
                 log=print) -> dict:
    """Merge the shards; return the funnel (counts per criterion). Every sample of
    ``samples_csv`` must be in exactly one shard."""
    import pandas as pd

    samples = pd.read_csv(samples_csv, dtype={"id": str})
    frames = [pd.read_csv(Path(d) / "predictions.csv", dtype={"id": str, "reason": str, "gap_status": str})
              for d in shard_dirs]
    df = pd.concat(frames, ignore_index=True)
    df["reason"] = df["reason"].fillna("")
    df["passed"] = df["passed"].astype(bool)
    missing = sorted(set(samples["id"]) - set(df["id"]))
    if missing or df["id"].duplicated().any():
        raise ValueError(f"{predictions_csv}: shards do not cover {samples_csv} exactly once "
                         f"(missing {missing[:3]}, duplicated {df['id'][df['id'].duplicated()].tolist()[:3]})")
    df = df.set_index("id").loc[samples["id"]].reset_index()
    cif_col = "relaxed_cif" if cfg["relax"]["enabled"] else "source_cif"
    ranked = df[df["passed"]].sort_values(["tc_score_K", "id"], ascending=[False, True])
    for sid, of in _dedup(ranked, cif_col).items():
        df.loc[df["id"] == sid, ["passed", "reason"]] = [False, f"duplicate of {of}"]
    ranked = df[df["passed"]].sort_values(["tc_score_K", "id"], ascending=[False, True])
    if cfg.get("top_k"):
        drop = ranked["id"].iloc[cfg["top_k"]:]
        df.loc[df["id"].isin(drop), ["passed", "reason"]] = [False, f"not in top {cfg['top_k']} by predicted Tc"]
        ranked = ranked.iloc[: cfg["top_k"]]
    funnel = {"samples": len(df)}
    for crit in ("valid", "natoms", "tc", "eform", "gap", "phonon"):
        col = df[f"pass_{crit}"]
        funnel[f"{crit}: evaluated"] = int(col.notna().sum())
        funnel[f"{crit}: passed"] = int((col == True).sum())  # noqa: E712 (NaN = not evaluated)
    funnel["no prediction (reason)"] = int(df["tc_score_K"].isna().sum())
    funnel["duplicates"] = int(df["reason"].str.startswith("duplicate of").sum())
    funnel["survivors"] = len(ranked)
    for path, frame in ((predictions_csv, df),
                        (screened_csv, df.assign(pred_tc_K=df["tc_score_K"])[list(SCREENED_COLUMNS)]),
                        (survivors_csv, ranked.assign(cif=ranked[cif_col], pred_tc_K=ranked["tc_K"],
                                                      pred_tc_std_K=ranked["tc_std_K"])[list(SURVIVOR_COLUMNS)])):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    for k, v in funnel.items():
        log(f"funnel: {k}: {v}")
    return funnel
