"""Provenance: which versions, settings and inputs produced an output.

Every stage writes a small metadata record next to its outputs (``metadata.json``) with
:func:`run_metadata`; the report stage collates them into ``results/versions.json``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as _md
import os
import platform
import sys
from pathlib import Path
from typing import Any, Iterable

#: Python distributions whose versions matter for the results.
TRACKED_PACKAGES = (
    "tcflow", "torch", "torch-geometric", "alignn", "chgnet", "pymatgen", "jarvis-tools",
    "phonopy", "spglib", "ase", "numpy", "scipy", "pandas", "smact", "matminer", "snakemake",
)


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def run_metadata(stage: str, settings: dict[str, Any] | None = None, seed: int | None = None,
                 inputs: Iterable[str | os.PathLike] = (), **extra: Any) -> dict[str, Any]:
    """A JSON-ready record: stage, UTC time, host, Python and package versions, settings,
    seed, and the SHA-256 of each input file (directories are listed, not hashed)."""
    hashed = {}
    for p in inputs:
        p = Path(p)
        hashed[str(p)] = file_sha256(p) if p.is_file() else ("<dir>" if p.is_dir() else None)
    return {
        "stage": stage,
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": sys.version.split()[0],
        "versions": package_versions(),
        "settings": settings or {},
        "seed": seed,
        "inputs": hashed,
        **extra,
    }
