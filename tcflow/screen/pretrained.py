"""Pretrained ALIGNN models by name: downloaded once (where there is internet) into a cache
directory with the archive's SHA-256, then loaded strictly like any ``checkpoint:`` directory.

Names are those of alignn 2026.8.11's registries: ``alignn.pretrained.ALIGNN2_MODELS`` (ALIGNN 2)
and ``alignn.deprecated.pretrained.all_models`` (the DGL-era ``jv_*`` models, e.g. the paper's
``jv_supercon_tc_alignn``). Most of them need DGL-era layers or graph builders that are not
reproduced here; :func:`tcflow.screen.model.load_model` then refuses them in one line.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from tcflow.io import atomic_dir, atomic_write_json
from tcflow.screen.model import CONFIG_JSON, WEIGHTS, ModelLoadError

#: Checksum record written next to the extracted files.
CHECKSUM_JSON = "download.json"


def model_url(name: str) -> str:
    """The download URL of a registered pretrained model; ModelLoadError for unknown names."""
    from alignn.pretrained import ALIGNN2_MODELS

    if name in ALIGNN2_MODELS and ALIGNN2_MODELS[name].get("url"):
        return ALIGNN2_MODELS[name]["url"]
    from alignn.deprecated.pretrained import all_models

    if name in all_models:
        return all_models[name][0]
    raise ModelLoadError(f"pretrained model {name!r} is not in alignn's registries "
                         "(alignn.pretrained.ALIGNN2_MODELS, alignn.deprecated.pretrained.all_models)")


def fetch(name: str, cache_dir: str | Path, key: str, url: str | None = None, timeout_s: float = 60) -> Path:
    """The model directory ``cache_dir/<name>`` (config.json, best_model.pt), downloading it first
    when absent. A failed download raises ModelLoadError: one line naming ``key``, the URL, the
    reason, and how to supply the model as ``checkpoint:`` instead."""
    import urllib.request

    dest = Path(cache_dir) / name
    if (dest / CONFIG_JSON).is_file() and (dest / WEIGHTS).is_file():
        return dest
    url = url or model_url(name)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            blob = resp.read()
    except Exception as exc:
        reason = str(getattr(exc, "reason", exc)).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"{key}: pretrained {name!r}: download from {url} failed ({reason}); download the zip elsewhere, "
            f"unpack {CONFIG_JSON} and {WEIGHTS} into a directory and set {key.rsplit('.', 1)[0]}: "
            "{checkpoint: <that directory>}") from None
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile:
        raise ModelLoadError(f"{key}: pretrained {name!r}: {url} is not a zip archive") from None
    with atomic_dir(dest) as tmp:
        for base in (CONFIG_JSON, WEIGHTS):
            hits = [n for n in zf.namelist() if n == base or n.endswith("/" + base)]
            if not hits:
                raise ModelLoadError(f"{key}: pretrained {name!r}: the archive from {url} has no {base}")
            (tmp / base).write_bytes(zf.read(sorted(hits, key=len)[0]))
        atomic_write_json(tmp / CHECKSUM_JSON, {"name": name, "url": url,
                                                "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)})
    return dest
