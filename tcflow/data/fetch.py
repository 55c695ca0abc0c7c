"""Fill ``resources/`` from the local mirror, or from the public sources when it is absent.

Dataset: the JARVIS-DFT electron-phonon superconductor set, as three CSV files
(``material_id, cif, prop`` with **prop = -Tc in K**, the convention of the paper's CDVAE run).
Pseudopotentials: one family directory of UPF files plus ``<family>.json`` mapping
element -> {filename, md5, source, ecutwfc_ry, ecutrho_ry, dual} (cutoffs in Ry).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from tcflow.io import atomic_path, atomic_write_json
from tcflow.data.splits import SPLITS

log = logging.getLogger(__name__)

#: Where the mirror keeps the dataset and the pseudopotentials, relative to its root.
MIRROR_DATA = Path("data") / "jarvis_supercon"
MIRROR_PSEUDO = Path("pseudo")
#: jarvis-tools dataset name and the key of the DFT Tc (K) in it.
JARVIS_DATASET = "dft_3d"
JARVIS_TC_KEY = "Tc_supercon"


class FetchError(RuntimeError):
    """A source could not provide the data; the message names the file or URL."""


def mirror_has_dataset(mirror: str | Path) -> bool:
    root = Path(mirror) / MIRROR_DATA
    return all((root / f"{s}.csv").is_file() for s in SPLITS)


def fetch_dataset(mirror: str | Path, source: str, out_dir: str | Path,
                  split_fractions=(0.8, 0.1, 0.1), seed: int = 0) -> str:
    """Write ``out_dir/{train,val,test}.csv`` (raw mirror format). Returns where they came from.

    ``source``: ``auto`` (mirror if present, else jarvis-tools), ``mirror`` or ``jarvis``.
    """
    out_dir = Path(out_dir)
    use_mirror = source == "mirror" or (source == "auto" and mirror_has_dataset(mirror))
    if use_mirror:
        root = Path(mirror) / MIRROR_DATA
        for split in SPLITS:
            src = root / f"{split}.csv"
            if not src.is_file():
                raise FetchError(f"{src}: dataset split missing from the mirror")
            with atomic_path(out_dir / f"{split}.csv") as tmp:
                shutil.copyfile(src, tmp)
        return f"mirror:{root.resolve()}"
    _fetch_jarvis(out_dir, split_fractions, seed)
    return f"jarvis-tools:{JARVIS_DATASET}:{JARVIS_TC_KEY}"


def _fetch_jarvis(out_dir: Path, split_fractions, seed: int) -> None:
    """Download dft_3d through jarvis-tools, keep entries with a numeric Tc, split with ``seed``."""
    import numpy as np
    import pandas as pd
    from jarvis.core.atoms import Atoms
    from jarvis.db.figshare import data as jarvis_data
    from pymatgen.io.cif import CifWriter

    try:
        entries = jarvis_data(JARVIS_DATASET)
    except Exception as exc:  # network errors come in many types
        raise FetchError(f"jarvis-tools {JARVIS_DATASET}: download failed ({exc})") from exc
    rows = []
    for e in entries:
        tc = e.get(JARVIS_TC_KEY)
        if not isinstance(tc, (int, float)) or not math.isfinite(tc):
            continue
        struct = Atoms.from_dict(e["atoms"]).pymatgen_converter()
        rows.append({"material_id": e["jid"], "cif": str(CifWriter(struct)), "prop": -float(tc)})
    if not rows:
        raise FetchError(f"jarvis-tools {JARVIS_DATASET}: no entries with {JARVIS_TC_KEY}")
    df = pd.DataFrame(rows).sort_values("material_id").reset_index(drop=True)
    perm = np.random.default_rng(seed).permutation(len(df))
    n_train = int(round(split_fractions[0] * len(df)))
    n_val = int(round(split_fractions[1] * len(df)))
    parts = {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}
    for split, idx in parts.items():
        with atomic_path(out_dir / f"{split}.csv") as tmp:
            df.iloc[idx].to_csv(tmp)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def fetch_pseudos(mirror: str | Path, family: str, out_dir: str | Path,
                  archive_url: str, json_url: str) -> str:
    """Fill ``out_dir`` with the family's UPFs and ``<family>.json``; md5 of every file checked.

    Files are written under their final names only after their checksum matched.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(mirror) / MIRROR_PSEUDO / family
    table_name = f"{family}.json"
    if (src / table_name).is_file():
        table = json.loads((src / table_name).read_text())
        origin = f"mirror:{src.resolve()}"
        get = lambda name, dest: shutil.copyfile(src / name, dest)  # noqa: E731
    else:
        table, get = _download_family(archive_url, json_url)
        origin = archive_url
    for element, entry in sorted(table.items()):
        dest = out_dir / entry["filename"]
        if dest.is_file() and _md5(dest) == entry["md5"]:
            continue
        with atomic_path(dest) as tmp:
            try:
                get(entry["filename"], tmp)
            except FileNotFoundError as exc:
                raise FetchError(f"{entry['filename']}: pseudopotential for {element} missing from {origin}") from exc
            got = _md5(tmp)
            if got != entry["md5"]:
                raise FetchError(f"{entry['filename']}: md5 {got} != {entry['md5']} (pseudopotential for {element})")
    atomic_write_json(out_dir / table_name, table)
    return origin


def _download_family(archive_url: str, json_url: str):
    """Download the SSSP JSON and tarball; return (family table, file getter)."""
    try:
        with urllib.request.urlopen(json_url, timeout=60) as resp:
            sssp = json.load(resp)
        tmpdir = Path(tempfile.mkdtemp(prefix="tcflow-pseudo-"))
        archive = tmpdir / "family.tar.gz"
        with urllib.request.urlopen(archive_url, timeout=600) as resp, open(archive, "wb") as fh:
            shutil.copyfileobj(resp, fh)
    except OSError as exc:
        raise FetchError(f"{archive_url}: download failed ({exc})") from exc
    with tarfile.open(archive) as tar:
        tar.extractall(tmpdir, filter="data")
    files = {p.name: p for p in tmpdir.rglob("*") if p.is_file()}
    table = {
        el: {
            "filename": e["filename"], "md5": e["md5"], "source": e.get("pseudopotential", ""),
            "ecutwfc_ry": float(e["cutoff_wfc"]), "ecutrho_ry": float(e["cutoff_rho"]),
            "dual": float(e["cutoff_rho"]) / float(e["cutoff_wfc"]),
        }
        for el, e in sssp.items()
    }

    def get(name: str, dest: Path) -> None:
        if name not in files:
            raise FileNotFoundError(name)
        shutil.copyfile(files[name], dest)

    return table, get
