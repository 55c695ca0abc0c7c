"""Novelty of the candidates against the training set and any reference set, and duplicates
within the run.

Each candidate gets one class:

- ``known``: a structure in some set matches it (pymatgen's StructureMatcher, default
  tolerances: ltol 0.2, stol 0.3, angle_tol 5 degrees, volumes scaled, so a strained copy of a
  known crystal is still ``known``);
- ``new_structure``: its reduced composition is in some set, but no structure of it matches;
- ``new_composition``: no set has its reduced composition.

``duplicate_of`` names the first candidate (in the order given) that matches it, if any.
A reference set is a name and a list of ``(id, Structure)``; :func:`load_split` and
:func:`load_reference` read the data stage's splits, CSVs with ``material_id`` and ``cif``
columns, and directories of CIF files (id = file stem).
"""

from __future__ import annotations

from pathlib import Path

CLASSES = ("known", "new_structure", "new_composition")


def _parse_cif(text: str, where: str):
    from tcflow.structures import structure_from_cif_text

    return structure_from_cif_text(text, where)


class ReferenceSet:
    """Structures by reduced formula, parsed lazily (only formulas a candidate has are read)."""

    def __init__(self, name: str, rows):
        #: reduced formula -> [(id, CIF text or Structure)]
        self.name = name
        self._by_formula: dict[str, list] = {}
        for mid, formula, obj in rows:
            self._by_formula.setdefault(formula, []).append([mid, obj])

    def __contains__(self, formula: str) -> bool:
        return formula in self._by_formula

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_formula.values())

    def structures(self, formula: str):
        for item in self._by_formula.get(formula, []):
            if isinstance(item[1], str):
                item[1] = _parse_cif(item[1], f"{self.name}: {item[0]}")
            yield item[0], item[1]


def load_split(name: str, csv: str | Path) -> ReferenceSet:
    """A split of the data stage (material_id, formula, cif columns) as a reference set."""
    from tcflow.data.splits import read_split

    df = read_split(csv)
    return ReferenceSet(name, ((r.material_id, r.formula, r.cif) for r in df.itertuples(index=False)))


def load_reference(path: str | Path) -> ReferenceSet:
    """A user reference set: a CSV with ``material_id`` and ``cif`` columns, or a directory of
    ``*.cif`` files. Its name is the file or directory stem."""
    import pandas as pd

    path = Path(path)
    rows = []
    if path.is_dir():
        for f in sorted(path.glob("*.cif")):
            s = _parse_cif(f.read_text(), str(f))
            rows.append((f.stem, s.composition.reduced_formula, s))
    elif path.is_file():
        df = pd.read_csv(path, dtype={"material_id": str, "cif": str})
        missing = [c for c in ("material_id", "cif") if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for r in df.itertuples(index=False):
            s = _parse_cif(r.cif, f"{path}: {r.material_id}")
            rows.append((r.material_id, s.composition.reduced_formula, s))
    else:
        raise ValueError(f"{path}: reference set not found (a CSV with material_id, cif or a directory of CIFs)")
    return ReferenceSet(path.stem, rows)


def classify(structures: dict, references: list[ReferenceSet]) -> dict[str, dict]:
    """cid -> ``{"novelty": one of CLASSES, "matched_id", "matched_set", "duplicate_of"}``.

    ``structures``: cid -> pymatgen Structure, in the order that decides which of two
    duplicates is the original. A candidate that matches structures in several sets reports the
    first set in ``references`` order (put the training set first).
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    out: dict[str, dict] = {}
    seen: list[tuple[str, object]] = []
    for cid, s in structures.items():
        formula = s.composition.reduced_formula
        rec = {"novelty": "new_composition", "matched_id": None, "matched_set": None, "duplicate_of": None}
        for ref in references:
            if formula not in ref:
                continue
            if rec["novelty"] == "new_composition":
                rec["novelty"] = "new_structure"
            mid = next((mid for mid, r in ref.structures(formula) if matcher.fit(s, r)), None)
            if mid is not None:
                rec.update(novelty="known", matched_id=mid, matched_set=ref.name)
                break
        rec["duplicate_of"] = next((o for o, t in seen if t.composition.reduced_formula == formula
                                    and matcher.fit(s, t)), None)
        seen.append((cid, s))
        out[cid] = rec
    return out


def summarise(records: dict[str, dict]) -> dict[str, int]:
    """Counts per class, plus ``duplicates`` (candidates that repeat an earlier one)."""
    counts = {c: sum(r["novelty"] == c for r in records.values()) for c in CLASSES}
    counts["duplicates"] = sum(r["duplicate_of"] is not None for r in records.values())
    return counts
