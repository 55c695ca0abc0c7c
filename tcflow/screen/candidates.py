"""The candidate set sent to DFT: the screen's survivors or a user's directory of CIFs.

Outputs:

- ``results/candidates/<id>.cif``: each accepted candidate's structure, byte-for-byte its source
- ``results/screen/candidates.csv``: id, formula, natoms, source (path of the original file)
- ``results/screen/rejected.csv``: id, source, reason, for inputs that could not be used

The table lives outside the CIF directory so that downstream rules can depend on it (a file
inside a ``directory()`` output is not linked to the rule that made it).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tcflow.config import CID_PATTERN
from tcflow.io import atomic_path
from tcflow.screen.structures import StructureError, read_structure

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


def select_candidates(out_dir: str | Path, table_csv: str | Path, rejected_csv: str | Path, *,
                      cif_dir: str | Path | None = None, survivors_csv: str | Path | None = None,
                      max_count: int | None = None) -> dict:
    """Fill ``out_dir`` with the candidates' CIFs and write the two tables.

    Returns ``{"accepted": n, "rejected": m, "rejected_rows": [...]}``.

    Exactly one of ``cif_dir`` and ``survivors_csv`` is given. Unusable inputs (bad id, unreadable
    CIF, unknown element) are listed in ``rejected.csv`` with the reason; the others go on.
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
            rejected.append({"id": cid, "source": str(src), "reason": f"id does not match {CID_PATTERN}"})
            continue
        try:
            struct = read_structure(src)
        except StructureError as exc:
            rejected.append({"id": cid, "source": str(src), "reason": str(exc)})
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


def run_checkpoint(params, input, output, log_path: str | None) -> dict:
    """Body of the ``candidates`` checkpoint (a ``run:`` rule, in the Snakemake process on one
    machine): the user's CIF directory or the screen survivors -> ``output.dir`` (atomically),
    ``output.table`` and ``output.rejected``. Rejections are logged one per line."""
    from tcflow.io import atomic_dir
    from tcflow.smk import job_logging

    with job_logging(log_path, "candidates") as log:
        kw = {"cif_dir": params.path} if params.source == "cif_dir" else {"survivors_csv": input.survivors}
        with atomic_dir(output.dir) as tmp:
            res = select_candidates(tmp, output.table, output.rejected, max_count=params.max, **kw)
        for row in res["rejected_rows"]:
            log.warning("candidate %s rejected: %s", row["id"], row["reason"])
        log.info("%d candidates accepted, %d rejected", res["accepted"], res["rejected"])
    return res
