"""Elemental reference structures: every element of the JARVIS-SC set builds, or fails in one line
naming the element and the config key; molecules, shipped CIFs, ASE bulk and user overrides."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from tcflow.energy.elements import (BOX_A, MAGNETIC, ElementStructureError, element_structure, is_molecule)
from workflow_helpers import SHARED


def _jarvis_elements() -> set[str]:
    import pandas as pd

    els = set()
    for split in ("train", "val", "test"):
        df = pd.read_csv(SHARED / "data" / "jarvis_supercon" / f"{split}.csv")
        for cif in df["cif"]:
            formula = re.search(r"_chemical_formula_sum\s+'?([^'\n]+)'?", cif).group(1)
            els |= set(re.findall(r"([A-Z][a-z]?)\d*", formula))
    return els


def _kind(source: str) -> str:
    return source.split()[0] if not source.startswith("tcflow/") else "shipped"


def test_every_jarvis_sc_element_builds_or_fails_in_one_line(shared):
    els = _jarvis_elements()
    assert len(els) == 62
    kinds, errors = Counter(), {}
    for el in sorted(els):
        try:
            s, info = element_structure(el)
        except ElementStructureError as exc:
            errors[el] = str(exc)
            continue
        assert {str(e) for e in s.composition.elements} == {el}
        kinds["molecule" if info["molecule"] else _kind(info["source"])] += 1
    assert kinds == {"ase.build.bulk": 48, "molecule": 7, "shipped": 5}
    assert sorted(errors) == ["Mn", "S"]  # alpha-Mn (58 atoms) and alpha-S (128 atoms) are not shipped
    for el, msg in errors.items():
        assert "\n" not in msg and msg.startswith(f"{el}: no ground-state structure")
        assert f"supply {el}.cif in the directory energy.element_cifs" in msg


def test_alpha_boron_is_the_12_atom_r3m_cell():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    s, info = element_structure("B")
    sga = SpacegroupAnalyzer(s, symprec=0.01)
    assert sga.get_space_group_symbol() == "R-3m"
    prim = sga.get_primitive_standard_structure()
    assert len(prim) == 12
    d = prim.distance_matrix[np.triu_indices(12, 1)]
    assert 1.6 < d.min() < 1.7  # the inter-icosahedral bond (1.67 A)
    assert info["source"] == "tcflow/energy/elements/B.cif" and not info["molecule"]


def test_molecules_in_a_box_and_magnetic_flags():
    s, info = element_structure("O")
    assert info["molecule"] and info["magnetic"] == MAGNETIC["O"]
    assert len(s) == 2 and s.lattice.abc == pytest.approx((BOX_A,) * 3)
    assert s.get_distance(0, 1) == pytest.approx(1.21)  # ASE's reference bond length
    assert element_structure("I")[0].get_distance(0, 1) == pytest.approx(2.666)
    assert element_structure("Nb")[1]["magnetic"] is None
    assert element_structure("Fe")[1]["magnetic"] == "ferromagnetic"


def test_user_cif_overrides_and_bad_input(tmp_path):
    from pymatgen.core import Lattice, Structure

    Structure(Lattice.cubic(3.0), ["Nb"], [[0, 0, 0]]).to(filename=str(tmp_path / "Nb.cif"))
    Structure(Lattice.cubic(3.0), ["V"], [[0, 0, 0]]).to(filename=str(tmp_path / "Ta.cif"))
    (tmp_path / "I.cif").write_text("data_broken\n_cell_length_a 1\n")
    s, info = element_structure("Nb", tmp_path)
    assert info["source"] == str(tmp_path / "Nb.cif") and s.lattice.a == pytest.approx(3.0)
    with pytest.raises(ElementStructureError, match=r"^Ta: .*Ta.cif holds V, not Ta$"):
        element_structure("Ta", tmp_path)
    with pytest.raises(ElementStructureError, match=r"^I: .*I.cif: "):
        element_structure("I", tmp_path)   # a user's file replaces the molecule, and must be readable
    assert not is_molecule("I", tmp_path) and is_molecule("I") and not is_molecule("Nb")
    with pytest.raises(ElementStructureError, match=r"^S: no ground-state structure; supply S.cif .* \(no "):
        element_structure("S", tmp_path)
    with pytest.raises(ElementStructureError, match="^Xx: not a chemical element$"):
        element_structure("Xx")
