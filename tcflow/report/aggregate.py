"""Collect every candidate's ``results/dft/<id>/tc.json`` into one table.

Columns: ``id``, the scalar fields of tc.json (status, tc_K, lambda, omega_log_K, ...), the
candidate's formula/natoms, and its novelty (:mod:`tcflow.report.novelty`): ``novelty``
(known / new_structure / new_composition), ``matched_id`` and ``matched_set`` (the structure
and set it matches, if any), ``duplicate_of`` (an earlier candidate it repeats). Lists and
tables inside tc.json stay there.
"""

from __future__ import annotations

from pathlib import Path

from tcflow.io import atomic_path, read_json

#: Columns that lead the table, in this order, when present.
LEAD_COLUMNS = ("id", "formula", "natoms", "status", "tc_K", "lambda", "omega_log_K",
                "novelty", "matched_id", "matched_set", "duplicate_of")


def _scalars(record: dict) -> dict:
    return {k: v for k, v in record.items() if isinstance(v, (str, int, float, bool)) or v is None}


def reference_sets(dataset_csvs: list[str | Path], extra: list[str | Path] = ()) -> list:
    """The data stage's splits (named by file stem; train first) and the user's reference sets."""
    from tcflow.report.novelty import load_reference, load_split

    csvs = sorted((Path(p) for p in dataset_csvs), key=lambda p: (p.stem != "train", p.stem))
    return [load_split(p.stem, p) for p in csvs] + [load_reference(p) for p in extra]


def aggregate(tc_jsons: list[str | Path], candidates_dir: str | Path, table_csv: str | Path,
              dataset_csvs: list[str | Path], out_csv: str | Path, references: list[str | Path] = ()):
    """Write the summary table (sorted by Tc, highest first) and return it as a DataFrame.

    ``dataset_csvs``: the data stage's splits; ``references``: further reference sets for the
    novelty check (CSV with material_id, cif, or a directory of CIFs).
    """
    import pandas as pd

    from tcflow.report.novelty import classify
    from tcflow.structures import read_structure

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
    structures = dict(sorted(structures.items()))  # duplicates: the first id in sort order is the original
    matches = classify(structures, reference_sets(dataset_csvs, references))
    for row in rows:
        row.update(matches[row["id"]])
    df = pd.DataFrame(rows)
    if len(df):
        lead = [c for c in LEAD_COLUMNS if c in df.columns]
        df = df[lead + [c for c in df.columns if c not in lead]]
        if "tc_K" in df.columns:
            df = df.sort_values("tc_K", ascending=False, na_position="last", kind="stable")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df
