"""Screen generated samples with CDVAE's own property head and validity checks.

Input: ``results/generate/samples.csv`` (see the generate stage: id, cif, natoms, pred_tc_K in K,
struct_valid, comp_valid, ...). Each sample gets ``passed`` and, when it fails, the first
``reason``; nothing is silently dropped.
"""

from __future__ import annotations

from pathlib import Path

from tcflow.io import atomic_path

REQUIRED_COLUMNS = ("id", "cif", "natoms", "pred_tc_K", "struct_valid", "comp_valid")
SURVIVOR_COLUMNS = ("id", "cif", "formula", "natoms", "pred_tc_K")


def _reason(row, cfg: dict) -> str:
    if cfg["require_valid"] and not bool(row["struct_valid"]):
        return "structurally invalid"
    if cfg["require_valid"] and not bool(row["comp_valid"]):
        return "compositionally invalid"
    if int(row["natoms"]) > cfg["max_atoms"]:
        return f"natoms {int(row['natoms'])} > {cfg['max_atoms']}"
    if not float(row["pred_tc_K"]) > cfg["tc_min_K"]:
        return f"predicted Tc {float(row['pred_tc_K']):.2f} K <= {cfg['tc_min_K']} K"
    return ""


def screen_samples(samples_csv: str | Path, screened_csv: str | Path, survivors_csv: str | Path,
                   cfg: dict) -> tuple[int, int]:
    """Write the full screened table and the survivors; return (n samples, n survivors).

    ``cfg`` is the config's ``screen`` section (tc_min_K, max_atoms, require_valid, top_k).
    Survivors are ordered by predicted Tc, highest first; ``top_k`` keeps the first k.
    """
    import pandas as pd

    df = pd.read_csv(samples_csv, dtype={"id": str, "cif": str}, float_precision="round_trip")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{samples_csv}: missing column(s) {', '.join(missing)}")
    df["reason"] = [_reason(row, cfg) for _, row in df.iterrows()]
    df["passed"] = df["reason"] == ""
    ranked = df[df["passed"]].sort_values(["pred_tc_K", "id"], ascending=[False, True])
    if cfg.get("top_k"):
        dropped = ranked.index[cfg["top_k"]:]
        df.loc[dropped, "passed"] = False
        df.loc[dropped, "reason"] = f"not in top {cfg['top_k']} by predicted Tc"
        ranked = ranked.iloc[: cfg["top_k"]]
    if "formula" not in ranked.columns:
        ranked = ranked.assign(formula="")
    with atomic_path(screened_csv) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(survivors_csv) as tmp:
        ranked[list(SURVIVOR_COLUMNS)].to_csv(tmp, index=False)
    return len(df), len(ranked)
