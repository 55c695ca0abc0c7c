"""Pseudopotentials: a directory plus an element -> file map.

The map comes from the family JSON in the directory (``<dir>/*.json``: element -> {filename,
ecutwfc_ry, ecutrho_ry, ...}, as the SSSP mirror ships it), with per-run entries of
``dft.pseudo_map`` taking precedence. A missing element raises :class:`MissingPseudopotential`,
which the pipeline records as ``error: no pseudopotential for <X>`` for that candidate alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence


class MissingPseudopotential(LookupError):
    """No pseudopotential file for an element; ``.element`` names it."""

    def __init__(self, element: str, where: str):
        super().__init__(f"no pseudopotential for {element} ({where})")
        self.element = element


def load_family(pseudo_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The family JSON of ``pseudo_dir`` (element -> record), or {} when the directory has none."""
    d = Path(pseudo_dir)
    found = sorted(d.glob("*.json")) if d.is_dir() else []
    for path in found:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if isinstance(data, dict) and all(isinstance(v, dict) and "filename" in v for v in data.values()):
            return data
    return {}


def resolve_pseudos(elements: Sequence[str], pseudo_dir: str | Path,
                    pseudo_map: Mapping[str, str] | None = None) -> dict[str, str]:
    """Element -> UPF file name (relative to ``pseudo_dir``) for every element; the file must exist."""
    d = Path(pseudo_dir)
    family = load_family(d)
    out = {}
    for el in elements:
        name = (pseudo_map or {}).get(el) or family.get(el, {}).get("filename")
        if not name:
            raise MissingPseudopotential(el, f"not in dft.pseudo_map nor the family JSON of {d}")
        if not (d / name).is_file():
            raise MissingPseudopotential(el, f"file {d / name} not found")
        out[el] = name
    return out
