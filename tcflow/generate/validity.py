"""Per-structure checks of generated crystals (CDVAE's validity definitions).

- structural validity: shortest interatomic distance > ``min_dist_A`` (0.5 Å) and cell volume
  > ``MIN_VOLUME_A3``;
- compositional validity: SMACT charge neutrality with the Pauling electronegativity test,
  all-metal compositions (alloys) counted valid, as CDVAE does;
- space group: spglib (through pymatgen) at the given tolerances.
"""

from __future__ import annotations

import math
import warnings

from tcflow.structures import min_distance_A

#: CDVAE's minimum cell volume for structural validity (Å^3).
MIN_VOLUME_A3 = 0.1


def structure_valid(struct, min_dist_A: float) -> tuple[bool, float]:
    """(valid, min distance Å)."""
    d = min_distance_A(struct)
    return (d > min_dist_A and struct.volume > MIN_VOLUME_A3), d


def composition_valid(struct) -> bool:
    """SMACT charge-neutrality + Pauling test; alloys (all metals) are valid."""
    from smact.screening import smact_validity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(smact_validity(struct.composition.reduced_formula, use_pauling_test=True,
                                   include_alloys=True))


def space_group(struct, symprec_A: float, angle_tolerance_deg: float) -> int:
    """International space-group number found by spglib; 1 when spglib finds none (it fails
    on overlapping atoms, which are then P1 in any case)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = SpacegroupAnalyzer(struct, symprec=symprec_A,
                                   angle_tolerance=angle_tolerance_deg).get_space_group_number()
        return int(n) if n else 1
    except Exception:  # spglib raises on degenerate cells
        return 1


def describe(struct, min_dist_A: float, symprec_A: float, angle_tolerance_deg: float) -> dict:
    """The per-sample record columns that depend only on the structure."""
    sv, d = structure_valid(struct, min_dist_A)
    n = len(struct)
    return {
        "formula": struct.composition.reduced_formula,
        "natoms": n,
        "density_g_cm3": float(struct.density),
        "min_dist_A": d,
        "vol_per_atom_A3": float(struct.volume / n),
        "struct_valid": sv,
        "comp_valid": composition_valid(struct),
        "spacegroup": space_group(struct, symprec_A, angle_tolerance_deg) if math.isfinite(d) else 1,
    }
