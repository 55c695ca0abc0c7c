"""Collect every candidate's ``results/dft/<id>/tc.json`` into one table.

Columns: ``id``, the scalar fields of tc.json (status, tc_K, lambda, omega_log_K, ...), the
candidate's formula/natoms, ``novel`` (no structure in the training data matches it) and
``matched_id`` (the JARVIS id it matches, if any). Lists and tables inside tc.json stay there.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from tcflow.io import atomic_path, read_json

#: Columns that lead the table, in this order, when present.
LEAD_COLUMNS = ("id", "formula", "natoms", "status", "tc_K", "lambda", "omega_log_K",
                "novel", "matched_id")


def _scalars(record: dict) -> dict:
    return {k: v for k, v in record.items() if isinstance(v, (str, int, float, bool)) or v is None}


def novelty(structures: dict, dataset_csvs: list[str | Path]) -> dict[str, str | None]:
    """For each candidate id -> Structure, the id of a matching dataset structure or None.

    Matching uses pymatgen's StructureMatcher (default tolerances: ltol 0.2, stol 0.3,
    angle_tol 5 degrees) among dataset entries with the same reduced formula.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

    from tcflow.data.splits import read_split

    by_formula: dict[str, list[tuple[str, str]]] = {}
    for csv in dataset_csvs:
        df = read_split(csv)
        for row in df.itertuples(index=False):
            by_formula.setdefault(row.formula, []).append((row.material_id, row.cif))
    matcher = StructureMatcher()
    out: dict[str, str | None] = {}
    for cid, struct in structures.items():
        out[cid] = None
        for mid, cif in by_formula.get(struct.composition.reduced_formula, []):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = Structure.from_str(cif, fmt="cif")
            if matcher.fit(struct, ref):
                out[cid] = mid
                break
    return out


def aggregate(tc_jsons: list[str | Path], candidates_dir: str | Path, table_csv: str | Path,
              dataset_csvs: list[str | Path], out_csv: str | Path):
    """Write the summary table (sorted by Tc, highest first) and return it as a DataFrame."""
    import pandas as pd

    from tcflow.screen.structures import read_structure

    candidates_dir = Path(candidates_dir)
    cands = pd.read_csv(table_csv, dtype={"id": str}).set_index("id")
    rows, structures = [], {}
    for path in tc_jsons:
        cid = Path(path).parent.name
        row = {"id": cid, **_scalars(read_json(path))}
        if cid in cands.index:
            row.setdefault("formula", cands.loc[cid, "formula"])
            row.setdefault("natoms", int(cands.loc[cid, "natoms"]))
        structures[cid] = read_structure(candidates_dir / f"{cid}.cif")
        rows.append(row)
    matches = novelty(structures, dataset_csvs)
    for row in rows:
        row["matched_id"] = matches[row["id"]]
        row["novel"] = matches[row["id"]] is None
    df = pd.DataFrame(rows)
    if len(df):
        lead = [c for c in LEAD_COLUMNS if c in df.columns]
        df = df[lead + [c for c in df.columns if c not in lead]]
        if "tc_K" in df.columns:
            df = df.sort_values("tc_K", ascending=False, na_position="last", kind="stable")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df
