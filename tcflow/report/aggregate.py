"""Collect every candidate's ``results/dft/<id>/tc.json`` into one table.

Columns: ``id``, the scalar fields of tc.json (status, tc_K, lambda, omega_log_K, ...), the
candidate's formula/natoms, and its novelty (:mod:`tcflow.report.novelty`): ``novelty``
(known / new_structure / new_composition), ``matched_id`` and ``matched_set`` (the structure
and set it matches, if any), ``duplicate_of`` (an earlier candidate it repeats). Lists and
tables inside tc.json stay there. With the energy stage's ``results/energy/hull.csv`` (optional),
its columns :data:`HULL_COLUMNS` are merged in by ``id`` (a candidate it has no row for gets
empty cells).
"""

from __future__ import annotations

from pathlib import Path

from tcflow.io import atomic_path, read_json

#: Columns that lead the table, in this order, when present.
LEAD_COLUMNS = ("id", "formula", "natoms", "status", "tc_K", "lambda", "omega_log_K",
                "novelty", "matched_id", "matched_set", "duplicate_of")
#: the columns taken from the energy stage's hull.csv (eV/atom; the MLIP's hull is a lower bound)
HULL_COLUMNS = ("e_form_eV_atom", "e_hull_eV_atom", "hull_decomposition", "hull_label", "hull_n_phases",
                "hull_status", "mlip_e_form_eV_atom", "mlip_e_hull_eV_atom", "mlip_label")


def merge_hull(df, hull_csv: str | Path):
    """``df`` (one row per candidate ``id``) with :data:`HULL_COLUMNS` of ``hull_csv`` merged by
    id; a column the file lacks is added empty, a duplicated id in the file is an error."""
    import pandas as pd

    hull = pd.read_csv(hull_csv, dtype={"id": str})
    if "id" not in hull.columns:
        raise ValueError(f"{hull_csv}: no 'id' column")
    dup = hull["id"][hull["id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{hull_csv}: more than one row for id {', '.join(map(str, dup))}")
    for c in HULL_COLUMNS:
        if c not in hull.columns:
            hull[c] = None
    if not len(df):
        return df
    return df.drop(columns=[c for c in HULL_COLUMNS if c in df.columns]).merge(
        hull[["id", *HULL_COLUMNS]], on="id", how="left")


def _scalars(record: dict) -> dict:
    return {k: v for k, v in record.items() if isinstance(v, (str, int, float, bool)) or v is None}


def reference_sets(dataset_csvs: list[str | Path], extra: list[str | Path] = ()) -> list:
    """The data stage's splits (named by file stem; train first) and the user's reference sets."""
    from tcflow.report.novelty import load_reference, load_split

    csvs = sorted((Path(p) for p in dataset_csvs), key=lambda p: (p.stem != "train", p.stem))
    return [load_split(p.stem, p) for p in csvs] + [load_reference(p) for p in extra]


def aggregate(tc_jsons: list[str | Path], candidates_dir: str | Path, table_csv: str | Path,
              dataset_csvs: list[str | Path], out_csv: str | Path, references: list[str | Path] = (),
              hull_csv: str | Path | None = None):
    """Write the summary table (sorted by Tc, highest first) and return it as a DataFrame.

    ``dataset_csvs``: the data stage's splits; ``references``: further reference sets for the
    novelty check (CSV with material_id, cif, or a directory of CIFs); ``hull_csv``: the energy
    stage's table (None: the energy stage is not part of the run).
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
    if hull_csv is not None:
        df = merge_hull(df, hull_csv)
    if len(df):
        lead = [c for c in LEAD_COLUMNS if c in df.columns]
        df = df[lead + [c for c in df.columns if c not in lead]]
        if "tc_K" in df.columns:
            df = df.sort_values("tc_K", ascending=False, na_position="last", kind="stable")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df
