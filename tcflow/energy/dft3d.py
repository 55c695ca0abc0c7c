"""Competing phases from JARVIS-DFT ``dft_3d`` (the database the JARVIS-SC set comes from).

The structures only: every phase is recomputed by the energy stage with the candidates' own
protocol; JARVIS's OptB88vdW energies never enter a hull. What is kept of the database is the
entries near JARVIS's own hull (``ehull`` in eV/atom at most ``energy.dft_3d_max_ehull_eV_atom``)
with two or more elements: the phases most likely to bound a candidate's hull.

Where the archive comes from, first match wins:

1. ``energy.dft_3d_file``: a local copy, jarvis-tools' ``<name>.json.zip`` or the bare ``.json``;
2. the data mirror: ``<data.mirror>/data/jarvis_dft_3d/<name>.json.zip``;
3. the public source jarvis-tools names (figshare), downloaded once into ``resources/jarvis/``
   (written under a temporary name and renamed when complete and readable, so a killed
   download never leaves a file that looks done).

The kept entries go to one CSV (``resources/jarvis/dft_3d_phases.csv``: jid, formula, natoms,
ehull_eV_atom, elements, structure as JSON of lattice (Å), species and fractional coordinates),
with its provenance (archive, sha256, counts) in the ``.json`` beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Iterable

from tcflow.io import atomic_path, atomic_write_json

COLUMNS = ("jid", "formula", "natoms", "ehull_eV_atom", "elements", "structure")
MIRROR_SUBDIR = Path("data") / "jarvis_dft_3d"
DATASET = "dft_3d"
HOW_TO_SUPPLY = ("put jarvis-tools' {name} (from {url}) on this machine and set energy.dft_3d_file "
                 "to its path, or set energy.dft_3d_phases: false")


class Dft3dError(RuntimeError):
    """The dft_3d archive could not be found, downloaded or read; the message is one line."""


def source_info() -> tuple[str, str]:
    """(download URL, archive member name) of dft_3d as the installed jarvis-tools names them."""
    from jarvis.db.figshare import get_db_info

    url, member = get_db_info()[DATASET][:2]
    return url, member


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_archive(path: str | Path, member: str | None = None) -> list[dict]:
    """The entries of a dft_3d archive: a zip holding one JSON list (``member``, or its only
    ``.json``) or a bare JSON list. A file that is neither raises :class:`Dft3dError`."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith(".json")]
                name = member if member in names else (names[0] if len(names) == 1 else None)
                if name is None:
                    raise Dft3dError(f"{path}: expected one .json in the zip, found {names or 'none'}")
                data = json.loads(zf.read(name))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise Dft3dError(f"{path}: not a readable dft_3d archive ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, list):
        raise Dft3dError(f"{path}: expected a JSON list of dft_3d entries, got {type(data).__name__}")
    return data


def download(url: str, dest: str | Path, timeout_s: float = 600.0) -> Path:
    """``url`` to ``dest``, atomically; a failure raises :class:`Dft3dError` saying how to supply it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout_s) as resp, open(tmp, "wb") as fh:
            shutil.copyfileobj(resp, fh)
            fh.flush()
            if not zipfile.is_zipfile(tmp):
                raise Dft3dError(f"energy.dft_3d_phases: {url} did not return a zip archive; "
                                 + HOW_TO_SUPPLY.format(name=dest.name, url=url))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise Dft3dError(f"energy.dft_3d_phases: download of JARVIS dft_3d from {url} failed ({reason}); "
                         + HOW_TO_SUPPLY.format(name=dest.name, url=url)) from None
    return dest


def locate(user_file: str | None, mirror: str | None, cache_dir: str | Path, url: str, member: str) -> tuple[Path, str]:
    """The archive to read and where it came from (``file``, ``mirror``, ``cache`` or ``download``)."""
    if user_file:
        p = Path(user_file)
        if not p.is_file():
            raise Dft3dError(f"energy.dft_3d_file: {p} not found")
        return p, "file"
    if mirror:
        p = Path(mirror) / MIRROR_SUBDIR / f"{member}.zip"
        if p.is_file():
            return p, "mirror"
    cached = Path(cache_dir) / f"{member}.zip"
    if cached.is_file():
        return cached, "cache"
    return download(url, cached), "download"


def _number(v: Any) -> float | None:
    """A finite float, or None for JARVIS's ``"na"`` and the like."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _structure_json(atoms: dict) -> tuple[str, list[str]]:
    """JARVIS ``atoms`` (lattice_mat Å, coords fractional or Cartesian, elements) as compact JSON
    with fractional coordinates, and its species."""
    import numpy as np

    lat = np.asarray(atoms["lattice_mat"], dtype=float)
    xyz = np.asarray(atoms["coords"], dtype=float).reshape(-1, 3)
    frac = np.linalg.solve(lat.T, xyz.T).T if atoms.get("cartesian") else xyz
    species = [str(e).strip() for e in atoms["elements"]]
    if len(species) != len(frac):
        raise ValueError(f"{len(species)} elements for {len(frac)} coordinates")
    doc = {"lattice": lat.round(10).tolist(), "species": species, "frac": frac.round(10).tolist()}
    return json.dumps(doc, separators=(",", ":")), species


def select(entries: Iterable[dict], max_ehull: float) -> tuple[list[dict], dict[str, int]]:
    """Rows (:data:`COLUMNS`) of the entries with 2+ elements and a finite ``ehull`` ≤ ``max_ehull``
    (eV/atom), sorted by jid; and counts of what was left out and why."""
    from pymatgen.core import Composition

    rows, skipped = [], {"unary": 0, "no_ehull": 0, "above_ehull": 0, "unreadable": 0}
    for e in entries:
        try:
            struct, species = _structure_json(e["atoms"])
            comp = Composition("".join(species))
            jid = str(e["jid"])
        except (KeyError, TypeError, ValueError):
            skipped["unreadable"] += 1
            continue
        ehull = _number(e.get("ehull"))
        if len(comp.elements) < 2:
            skipped["unary"] += 1
        elif ehull is None:
            skipped["no_ehull"] += 1
        elif ehull > max_ehull:
            skipped["above_ehull"] += 1
        else:
            rows.append({"jid": jid, "formula": comp.reduced_formula, "natoms": len(species), "ehull_eV_atom": ehull,
                         "elements": " ".join(sorted(str(el) for el in comp.elements)), "structure": struct})
    rows.sort(key=lambda r: r["jid"])
    return rows, skipped


def build_table(out_csv: str | Path, user_file: str | None, mirror: str | None, max_ehull: float) -> dict:
    """Locate (or download) the archive, select its entries, write ``out_csv`` and its provenance
    ``.json`` atomically; returns the provenance."""
    import pandas as pd

    out_csv = Path(out_csv)
    url, member = source_info()
    path, origin = locate(user_file, mirror, out_csv.parent, url, member)
    rows, skipped = select(read_archive(path, member), max_ehull)
    if not rows:
        raise Dft3dError(f"{path}: no dft_3d entry with 2+ elements and ehull <= {max_ehull} eV/atom")
    meta = {"archive": str(path.resolve()), "origin": origin, "sha256": _sha256(path), "url": url, "member": member,
            "max_ehull_eV_atom": max_ehull, "kept": len(rows), "skipped": skipped}
    with atomic_path(out_csv) as tmp:
        pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(tmp, index=False)
    atomic_write_json(out_csv.with_suffix(".json"), meta)
    return meta


def structure_from_row(structure_json: str):
    """The pymatgen Structure of a table row's ``structure`` cell."""
    from pymatgen.core import Lattice, Structure

    doc = json.loads(structure_json)
    return Structure(Lattice(doc["lattice"]), doc["species"], doc["frac"])


def read_table(path: str | Path):
    """The kept entries as a DataFrame (jid as string)."""
    import pandas as pd

    return pd.read_csv(path, dtype={"jid": str, "elements": str, "structure": str})
