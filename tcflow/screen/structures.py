"""Reading candidate structures with errors that name the file."""

from __future__ import annotations

import warnings
from pathlib import Path


class StructureError(ValueError):
    """A structure file that cannot be used; the message names the file."""


def read_structure(path: str | Path):
    """Parse a CIF (or any format pymatgen knows by extension) into a pymatgen Structure.

    Raises :class:`StructureError` with a one-line reason for unreadable files, empty cells,
    unknown elements and partial occupancies.
    """
    from pymatgen.core import Element, Structure

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            struct = Structure.from_file(path)
    except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError... on bad CIFs
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StructureError(f"{path}: unreadable structure ({first})") from None
    if len(struct) == 0:
        raise StructureError(f"{path}: no atoms")
    if not struct.is_ordered:
        raise StructureError(f"{path}: partial occupancies are not supported")
    for sp in struct.composition.elements:
        if not isinstance(sp, Element):
            raise StructureError(f"{path}: unknown element {sp}")
    return struct
