"""A light periodic cell for writing QE inputs without importing pymatgen in every job.

Each DFT step is its own process; importing pymatgen costs ~0.3 s per process (numpy ~0.04 s),
more than some QE runs of the validation case. The structure step (which needs pymatgen to read
CIFs) stores the cell as pymatgen JSON; the QE steps read that JSON back with :meth:`Cell.read`,
in plain Python. Units: lattice rows in Å, fractional coordinates, masses in amu.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Cell:
    """lattice: (3, 3) Å, rows a1 a2 a3; species: element symbol per site; frac_coords: (n, 3)."""

    lattice: tuple[Vec3, Vec3, Vec3]
    species: tuple[str, ...]
    frac_coords: tuple[Vec3, ...]

    def __len__(self) -> int:
        return len(self.species)

    @property
    def kinds(self) -> list[str]:
        """Distinct element symbols in order of first appearance (QE's species order)."""
        return list(dict.fromkeys(self.species))

    @property
    def lengths(self) -> Vec3:
        """|a1|, |a2|, |a3| in Å."""
        return tuple(sum(x * x for x in row) ** 0.5 for row in self.lattice)

    @property
    def volume(self) -> float:
        """Cell volume in Å^3."""
        a, b, c = self.lattice
        return abs(a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                   + a[2] * (b[0] * c[1] - b[1] * c[0]))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Cell":
        """From a pymatgen ``Structure.as_dict()`` (ordered sites only)."""
        species = []
        for site in d["sites"]:
            occ = site["species"]
            if len(occ) != 1 or abs(float(occ[0].get("occu", 1.0)) - 1.0) > 1e-6:
                raise ValueError(f"site {site.get('label', '?')} is disordered: QE needs an ordered cell")
            species.append(occ[0]["element"])
        return cls(_rows(d["lattice"]["matrix"]), tuple(species), _rows(site["abc"] for site in d["sites"]))

    @classmethod
    def read(cls, path: str | Path) -> "Cell":
        """A pymatgen Structure JSON file (as written by the structure and relax steps)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_structure(self):
        """A pymatgen Structure (imports pymatgen)."""
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), list(self.species), list(self.frac_coords))

    @classmethod
    def from_structure(cls, structure) -> "Cell":
        """From a pymatgen Structure."""
        return cls(_rows(structure.lattice.matrix), tuple(site.specie.symbol for site in structure),
                   _rows(structure.frac_coords))


def _rows(rows) -> tuple:
    return tuple(tuple(float(x) for x in row) for row in rows)


def as_cell(structure) -> Cell:
    """``structure`` if it is a Cell already, else a Cell of the pymatgen Structure."""
    return structure if isinstance(structure, Cell) else Cell.from_structure(structure)


def element_masses(elements: Sequence[str]) -> dict[str, float]:
    """Element -> atomic mass (amu), pymatgen's values (imports pymatgen: call once per candidate)."""
    from pymatgen.core import Element

    return {el: float(Element(el).atomic_mass) for el in elements}
