"""Normalise the raw dataset (mirror format, prop = -Tc) into ``results/data/``.

Each row is checked; a malformed row (unreadable CIF, unknown element, empty cell, overlapping
atoms, missing or negative Tc) is excluded and reported by id with its reason in the manifest and
the log, never silently dropped and never fatal for the other rows.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

from tcflow.data.splits import COLUMNS, SPLITS
from tcflow.io import atomic_path, atomic_write_json
from tcflow.structures import StructureError, check_structure, min_distance_A, read_split, structure_from_cif_text

log = logging.getLogger(__name__)

#: Atoms closer than this (Å; periodic images included) make a structure physically invalid.
MIN_DISTANCE_A = 0.5
#: Heaviest element accepted (Lr).
MAX_Z = 103


def check_row(material_id: str, cif: str, prop) -> tuple[dict | None, str | None]:
    """Return (normalised record, None) or (None, reason) for one raw row.

    The record has the columns of :data:`tcflow.data.splits.COLUMNS` plus ``elements``
    (a set of element symbols).
    """
    if not isinstance(cif, str) or not cif.strip():
        return None, "empty CIF"
    try:
        tc = -float(prop)
    except (TypeError, ValueError):
        return None, f"prop {prop!r} is not a number"
    if not math.isfinite(tc):
        return None, f"prop {prop!r} is not finite"
    if tc < 0:
        return None, f"Tc = {tc:g} K < 0 (prop must be -Tc)"
    try:
        struct = check_structure(structure_from_cif_text(cif, str(material_id)), str(material_id))
    except StructureError as exc:
        return None, str(exc)
    beyond = [el.symbol for el in struct.composition.elements if el.Z > MAX_Z]
    if beyond:
        return None, f"unknown element {beyond[0]} (Z > {MAX_Z})"
    dmin = min_distance_A(struct)
    if dmin < MIN_DISTANCE_A:
        return None, f"atoms {dmin:.3f} A apart (< {MIN_DISTANCE_A} A)"
    return {
        "material_id": str(material_id),
        "tc_K": tc,
        "formula": struct.composition.reduced_formula,
        "natoms": len(struct),
        "cif": cif,
        "elements": {el.symbol for el in struct.composition.elements},
    }, None


def prepare_splits(raw_dir: str | Path, out_dir: str | Path, max_train: int | None = None,
                   seed: int = 0, origin: str = "") -> dict:
    """Write ``out_dir/{train,val,test}.csv`` and ``out_dir/manifest.json``; return the manifest.

    With ``max_train`` the training split keeps a seeded random subset of that size and val/test
    keep ``ceil(max_train / 8)`` rows each (small runs on a laptop).
    """
    import numpy as np
    import pandas as pd

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    manifest: dict = {"origin": origin, "seed": seed, "max_train": max_train, "splits": {}, "excluded": []}
    elements: set[str] = set()
    for split in SPLITS:
        raw_path = raw_dir / f"{split}.csv"
        raw = read_split(raw_path, "raw")
        if max_train is not None:
            keep = max_train if split == "train" else math.ceil(max_train / 8)
            rng = np.random.default_rng([seed, SPLITS.index(split)])
            raw = raw.iloc[np.sort(rng.permutation(len(raw))[:keep])]
        records, seen = [], set()
        for row in raw.itertuples(index=False):
            rid = str(row.material_id)
            rec, reason = check_row(rid, row.cif, row.prop)
            if rec is None or rid in seen:
                reason = reason or "duplicate material_id"
                manifest["excluded"].append({"split": split, "material_id": rid, "reason": reason})
                log.warning("%s: %s excluded: %s", raw_path, rid, reason)
                continue
            seen.add(rid)
            records.append(rec)
            elements.update(rec.pop("elements"))
        df = pd.DataFrame.from_records(records, columns=list(COLUMNS))
        out = out_dir / f"{split}.csv"
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
        manifest["splits"][split] = {
            "rows": len(df),
            "excluded": sum(e["split"] == split for e in manifest["excluded"]),
            "tc_K_mean": float(df["tc_K"].mean()) if len(df) else None,
            "tc_K_max": float(df["tc_K"].max()) if len(df) else None,
            "n_tc_above_5K": int((df["tc_K"] > 5).sum()),
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        }
    manifest["elements"] = sorted(elements)
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest
