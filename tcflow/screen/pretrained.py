"""Pretrained ALIGNN models by name: downloaded once (where there is internet) into a cache
directory with the archive's SHA-256, then loaded strictly like any ``checkpoint:`` directory.

Names are those of alignn 2026.8.11's registries: ``alignn.pretrained.ALIGNN2_MODELS`` (ALIGNN 2)
and ``alignn.deprecated.pretrained.all_models`` (the DGL-era ``jv_*`` models, e.g. the paper's
``jv_supercon_tc_alignn``). The DGL-era ``alignn`` models load into the plain-torch port
(:mod:`tcflow.screen.legacy`); models whose layers or graph builders are not reproduced here are
refused by :func:`tcflow.screen.model.load_model` in one line.

The weights are the archive's ``best_model.pt``, or, in the DGL-era archives, which hold training
checkpoints instead, the ``model`` state of the ``checkpoint_<epoch>.pt`` with the highest epoch
(as alignn's own loader picks the last one), saved as ``best_model.pt``; ``download.json`` says
which file it was.
"""

from __future__ import annotations

import hashlib
import io
import re
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
        config = _member(zf, CONFIG_JSON)
        if config is None:
            raise ModelLoadError(f"{key}: pretrained {name!r}: the archive from {url} has no {CONFIG_JSON}")
        (tmp / CONFIG_JSON).write_bytes(zf.read(config))
        weights = _member(zf, WEIGHTS) or _last_checkpoint(zf)
        if weights is None:
            raise ModelLoadError(f"{key}: pretrained {name!r}: the archive from {url} has no {WEIGHTS} "
                                 "and no checkpoint_<epoch>.pt")
        if weights.endswith(WEIGHTS):
            (tmp / WEIGHTS).write_bytes(zf.read(weights))
        else:
            _save_model_state(zf.read(weights), tmp / WEIGHTS, f"{key}: pretrained {name!r}: {weights}")
        atomic_write_json(tmp / CHECKSUM_JSON, {"name": name, "url": url, "weights_from": weights,
                                                "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)})
    return dest


def _member(zf: zipfile.ZipFile, base: str) -> str | None:
    """The archive member named ``base`` (the shallowest one), or None."""
    hits = [n for n in zf.namelist() if n == base or n.endswith("/" + base)]
    return sorted(hits, key=len)[0] if hits else None


def _last_checkpoint(zf: zipfile.ZipFile) -> str | None:
    """The ``checkpoint_<epoch>.pt`` member with the highest epoch, or None."""
    found = {}
    for n in zf.namelist():
        m = re.fullmatch(r"(?:.*/)?checkpoint_(\d+)\.pt", n)
        if m:
            found[int(m.group(1))] = n
    return found[max(found)] if found else None


def _save_model_state(raw: bytes, path: Path, where: str) -> None:
    """Write the ``model`` state dict of a training checkpoint (ignite's layout: model, optimizer,
    ...) as a plain state dict. Loaded with ``weights_only`` (tensors and plain containers only)."""
    import torch

    try:
        ck = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{where}: unreadable ({str(exc).splitlines()[0]})") from None
    state = ck.get("model") if isinstance(ck, dict) else None
    if not isinstance(state, dict):
        raise ModelLoadError(f"{where}: no 'model' state dict in the checkpoint")
    torch.save(state, path)
