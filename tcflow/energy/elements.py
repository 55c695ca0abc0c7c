"""Ground-state structures of the elements: the elemental references of the DFT hull.

Where a structure comes from, first match wins (:func:`element_structure`):

1. ``<El>.cif`` in the user's directory (config ``energy.element_cifs``);
2. a diatomic molecule in a cubic box of :data:`BOX_A` Å for :data:`MOLECULES` (H, N, O, F, Cl,
   Br, I); its bond length (Å) is ASE's reference state for H, N, O, F and the experimental gas
   value for Cl, Br, I (K. P. Huber and G. Herzberg, *Constants of Diatomic Molecules*, 1979);
   the workflow relaxes the ions (not the box) at the Γ point;
3. a CIF shipped in ``tcflow/energy/elements/`` (α-B, α-Ga, black P, trigonal Se and Te), each
   citing the crystallographic data it was written from;
4. ASE's ``ase.build.bulk`` from ``ase.data.reference_states`` (fcc, bcc, hcp, diamond, sc,
   bct, rhombohedral with their bases);
5. otherwise :class:`ElementStructureError`: one line naming the element and the config key that
   supplies it (e.g. S: α-S has 128 atoms; Mn: α-Mn has 58).

Magnetism: the candidates are computed without spin polarisation, and so are the references.
:data:`MAGNETIC` lists the elements whose ground state is magnetic; their records carry
``magnetic_ground_state_not_modelled`` (docs/energy.md).
"""

from __future__ import annotations

from pathlib import Path

PACKAGED_DIR = Path(__file__).with_name("elements")
#: edge of the cubic box around a molecule (Å)
BOX_A = 12.0
#: bond lengths (Å) of the elements computed as diatomic molecules; None: ASE's reference state
MOLECULES = {"H": None, "N": None, "O": None, "F": None, "Cl": 1.988, "Br": 2.281, "I": 2.666}
#: elements whose ground state is magnetic (not modelled: references are spin-unpolarised)
MAGNETIC = {"O": "O2 is a spin triplet", "Fe": "ferromagnetic", "Co": "ferromagnetic", "Ni": "ferromagnetic",
            "Cr": "antiferromagnetic (spin-density wave)", "Mn": "antiferromagnetic (alpha-Mn)"}
ELEMENT_CIFS_KEY = "energy.element_cifs"


class ElementStructureError(ValueError):
    """No ground-state structure for an element (one line naming it and the config key)."""


def _molecule(el: str):
    from ase import Atoms
    from ase.data import atomic_numbers, reference_states

    d = MOLECULES[el]
    if d is None:
        d = float(reference_states[atomic_numbers[el]]["d"])
    c = BOX_A / 2
    return Atoms(f"{el}2", positions=[(c, c, c - d / 2), (c, c, c + d / 2)], cell=[BOX_A] * 3, pbc=True)


def _ase_bulk(el: str):
    from ase.build import bulk
    from ase.data import atomic_numbers, reference_states

    state = reference_states[atomic_numbers[el]] if el in atomic_numbers else None
    if not state or state.get("symmetry") in (None, "diatom", "atom"):
        return None
    try:
        return bulk(el)
    except ValueError:  # ASE: "This structure requires an atomic basis" (S, Mn, B, P, Ga, ...)
        return None


def element_structure(el: str, element_cifs: str | Path | None = None) -> tuple[object, dict]:
    """The ground-state structure of element ``el`` (pymatgen Structure) and where it came from:
    ``{"source", "molecule" (bool), "magnetic" (reason or None)}``."""
    from pymatgen.core import Element
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        Element(el)
    except ValueError:
        raise ElementStructureError(f"{el}: not a chemical element") from None
    info = {"molecule": False, "magnetic": MAGNETIC.get(el)}
    user = Path(element_cifs) / f"{el}.cif" if element_cifs else None
    if user is not None and user.is_file():
        return _read_cif(user, el), {**info, "source": str(user)}
    if el in MOLECULES:
        return (AseAtomsAdaptor.get_structure(_molecule(el)),
                {**info, "molecule": True, "source": f"{el}2 molecule in a {BOX_A:g} A box"})
    packaged = PACKAGED_DIR / f"{el}.cif"
    if packaged.is_file():
        return _read_cif(packaged, el), {**info, "source": f"tcflow/energy/elements/{el}.cif"}
    atoms = _ase_bulk(el)
    if atoms is not None:
        from ase.data import atomic_numbers, reference_states

        sym = reference_states[atomic_numbers[el]]["symmetry"]
        return AseAtomsAdaptor.get_structure(atoms), {**info, "source": f"ase.build.bulk ({sym})"}
    where = f" (no {user})" if user is not None else ""
    raise ElementStructureError(f"{el}: no ground-state structure; supply {el}.cif in the directory "
                                f"{ELEMENT_CIFS_KEY}{where}")


def _read_cif(path: Path, el: str):
    from tcflow.structures import StructureError, read_structure

    try:
        s = read_structure(path)
    except StructureError as exc:
        raise ElementStructureError(f"{el}: {path}: {str(exc).splitlines()[0]}") from None
    if {sp.symbol for sp in s.composition.elements} != {el}:
        raise ElementStructureError(f"{el}: {path} holds {s.composition.reduced_formula}, not {el}")
    return s


def is_molecule(el: str, element_cifs: str | Path | None = None) -> bool:
    """Whether element ``el``'s reference is a molecule in a box (no user CIF replaces it)."""
    return el in MOLECULES and not (element_cifs and (Path(element_cifs) / f"{el}.cif").is_file())
