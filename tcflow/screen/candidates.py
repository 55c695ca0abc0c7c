"""The candidate set sent to DFT: the screen's survivors or a user's directory of CIFs.

Outputs:

- ``results/candidates/<id>.cif``: each accepted candidate's structure, byte-for-byte its source
- ``results/screen/candidates.csv``: id, formula, natoms, source (path of the original file)
- ``results/screen/rejected.csv``: id, source, reason, for inputs that could not be used (each
  rejection is also one warning line in the log and on the console)

The table lives outside the CIF directory so that downstream rules can depend on it (a file
inside a ``directory()`` output is not linked to the rule that made it).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Callable

from tcflow.config import CID_PATTERN
from tcflow.io import atomic_path
from tcflow.structures import StructureError, min_distance_A, read_structure

_CID_RE = re.compile(rf"^{CID_PATTERN}$")
CANDIDATE_COLUMNS = ("id", "formula", "natoms", "source")
REJECTED_COLUMNS = ("id", "source", "reason")


def _sources_from_dir(path: Path) -> list[tuple[str, Path]]:
    files = sorted(Path(path).glob("*.cif"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.cif files")
    return [(f.stem, f) for f in files]


def _sources_from_survivors(survivors_csv: Path) -> list[tuple[str, Path]]:
    import pandas as pd

    df = pd.read_csv(survivors_csv, dtype={"id": str, "cif": str})
    return [(row.id, Path(row.cif)) for row in df.itertuples(index=False)]


def _check_user_structure(struct, max_atoms: int | None, min_distance: float | None) -> str:
    """The reason a user's structure is not sent to DFT, or ``""``."""
    if max_atoms is not None and len(struct) > max_atoms:
        return f"{len(struct)} atoms per cell > candidates.max_atoms = {max_atoms}"
    if min_distance:
        d = min_distance_A(struct)
        if d < min_distance:
            return f"atoms {d:.3f} Å apart (< candidates.min_distance_A = {min_distance:g} Å)"
    return ""


def select_candidates(out_dir: str | Path, table_csv: str | Path, rejected_csv: str | Path, *,
                      cif_dir: str | Path | None = None, survivors_csv: str | Path | None = None,
                      max_count: int | None = None, max_atoms: int | None = None,
                      min_distance_A: float | None = None) -> dict:
    """Fill ``out_dir`` with the candidates' CIFs and write the two tables.

    Returns ``{"accepted": n, "rejected": m, "rejected_rows": [...]}``.

    Exactly one of ``cif_dir`` and ``survivors_csv`` is given. Unusable inputs (bad id, unreadable
    CIF, unknown element; for ``cif_dir`` also more than ``max_atoms`` atoms per cell or two atoms
    closer than ``min_distance_A`` Å, periodic images included) are listed in ``rejected.csv``
    with the reason; the others go on. (The screen's survivors passed its own checks.)
    """
    import pandas as pd

    if (cif_dir is None) == (survivors_csv is None):
        raise ValueError("give exactly one of cif_dir and survivors_csv")
    sources = _sources_from_dir(Path(cif_dir)) if cif_dir else _sources_from_survivors(Path(survivors_csv))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    accepted, rejected = [], []
    for cid, src in sources:
        if max_count is not None and len(accepted) >= max_count:
            break
        if not _CID_RE.match(cid):
            rejected.append({"id": cid, "source": str(src),
                             "reason": f"id {cid!r} does not match {CID_PATTERN} (letters, digits, _ . -; "
                                       "at least one letter or digit)"})
            continue
        try:
            struct = read_structure(src)
        except StructureError as exc:
            rejected.append({"id": cid, "source": str(src), "reason": str(exc)})
            continue
        reason = _check_user_structure(struct, max_atoms, min_distance_A) if cif_dir else ""
        if reason:
            rejected.append({"id": cid, "source": str(src), "reason": f"{src}: {reason}"})
            continue
        with atomic_path(out_dir / f"{cid}.cif") as tmp:
            # byte-for-byte with the source's mtime: when the checkpoint reruns (one CIF added,
            # say) an unchanged candidate's input looks unchanged and its DFT chain is not redone
            shutil.copy2(src, tmp)
        accepted.append({"id": cid, "formula": struct.composition.reduced_formula,
                         "natoms": len(struct), "source": str(src)})
    for path, rows, cols in ((table_csv, accepted, CANDIDATE_COLUMNS),
                             (rejected_csv, rejected, REJECTED_COLUMNS)):
        with atomic_path(path) as tmp:
            pd.DataFrame.from_records(rows, columns=list(cols)).to_csv(tmp, index=False)
    return {"accepted": len(accepted), "rejected": len(rejected), "rejected_rows": rejected}


def _console(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_checkpoint(params, input, output, log_path: str | None,
                   warn: Callable[[str], None] = _console) -> dict:
    """Body of the ``candidates`` checkpoint (a ``run:`` rule, in the Snakemake process on one
    machine): the user's CIF directory or the screen survivors -> ``output.dir`` (atomically),
    ``output.table`` and ``output.rejected``.

    ``params``: ``source``, ``path``, ``max``, ``max_atoms`` (None: no limit) and
    ``min_distance_A`` (Å), as in the config's ``candidates`` section. Each rejection is one
    warning line in the log and one line ``candidates: <id> rejected: <reason>`` through ``warn``
    (the console: Snakemake's stderr).
    """
    from tcflow.io import atomic_dir
    from tcflow.smk import job_logging

    with job_logging(log_path, "candidates") as log:
        if params.source == "cif_dir":
            kw = {"cif_dir": params.path, "max_atoms": params.max_atoms, "min_distance_A": params.min_distance_A}
        else:
            kw = {"survivors_csv": input.survivors}
        with atomic_dir(output.dir) as tmp:
            res = select_candidates(tmp, output.table, output.rejected, max_count=params.max, **kw)
        for row in res["rejected_rows"]:
            log.warning("candidate %s rejected: %s", row["id"], row["reason"])
            warn(f"candidates: {row['id']} rejected: {row['reason']}")
        log.info("%d candidates accepted, %d rejected", res["accepted"], res["rejected"])
        if res["rejected"]:
            warn(f"candidates: {res['accepted']} accepted, {res['rejected']} rejected "
                 f"(listed in {output.rejected})")
    return res
