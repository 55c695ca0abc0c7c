"""Formation energy and energy above hull on a toy Nb-Al system with hand-computed answers, the
refusal to mix methods, and the MLIP hull against pymatgen's shipped MP entries."""

from __future__ import annotations

import pytest

from tcflow.energy.hull import (Entry, check_consistent, elemental_references, formation_energy_per_atom,
                                  hull_table, mlip_hull, mp_shipped_entries)

LAB = "QE / PBEsol / toy"
# mu_Nb = -10, mu_Al = -3 eV/atom. Formation energies (eV/atom), chosen by hand:
#   NbAl  (x_Al 0.50) -0.40: on the hull
#   NbAl3 (x_Al 0.75) -0.30: on the hull (the NbAl--Al tie line is at -0.20 there)
#   Nb3Al (x_Al 0.25) -0.10: the Nb--NbAl tie line is at -0.20, so 0.10 eV/atom above it
#   Al (a second, higher polymorph) +0.10 eV/atom above fcc Al
TOY = [
    Entry("Nb", "Nb", -10.0, LAB),
    Entry("Al", "Al4", -12.0, LAB),
    Entry("Al-hi", "Al", -2.9, LAB),
    Entry("NbAl", "NbAl", -10.0 - 3.0 + 2 * -0.40, LAB),
    Entry("NbAl3", "NbAl3", -10.0 - 9.0 + 4 * -0.30, LAB),
    Entry("Nb3Al", "Nb3Al", -30.0 - 3.0 + 4 * -0.10, LAB),
]


def test_references_and_formation_energy():
    refs = elemental_references(TOY)
    assert refs == pytest.approx({"Nb": -10.0, "Al": -3.0})  # the lower Al polymorph, per atom
    assert formation_energy_per_atom("NbAl3", -20.2, refs) == pytest.approx(-0.30)
    with pytest.raises(ValueError, match="NbSn: no elemental reference for Sn"):
        formation_energy_per_atom("NbSn", -15.0, refs)


def test_hull_by_hand():
    t = hull_table(TOY)
    assert t["NbAl"]["e_form_eV_atom"] == pytest.approx(-0.40)
    assert t["NbAl"]["e_hull_eV_atom"] == 0.0
    assert t["NbAl3"]["e_form_eV_atom"] == pytest.approx(-0.30)
    assert t["NbAl3"]["e_hull_eV_atom"] == 0.0
    assert t["Nb3Al"]["e_form_eV_atom"] == pytest.approx(-0.10)
    assert t["Nb3Al"]["e_hull_eV_atom"] == pytest.approx(0.10)
    assert t["Nb3Al"]["decomposition"] == pytest.approx({"Nb": 0.5, "NbAl": 0.5})
    assert t["Al-hi"]["e_hull_eV_atom"] == pytest.approx(0.10)
    assert t["Al-hi"]["e_form_eV_atom"] == pytest.approx(0.10)
    assert {r["label"] for r in t.values()} == {LAB}
    # without NbAl3 the NbAl--Al line sets the hull at x_Al 0.75: -0.20; a -0.15 NbAl3 is 0.05 above
    raised = [e for e in TOY if e.name != "NbAl3"] + [Entry("NbAl3", "NbAl3", -19.0 + 4 * -0.15, LAB)]
    assert hull_table(raised, names=["NbAl3"])["NbAl3"]["e_hull_eV_atom"] == pytest.approx(0.05)


def test_hull_refuses_mixed_methods_and_missing_elements():
    mixed = TOY + [Entry("NbAl2", "NbAl2", -17.0, "VASP / PBE")]
    with pytest.raises(ValueError, match="refusing to mix energies of different methods.*VASP / PBE': NbAl2"):
        hull_table(mixed)
    with pytest.raises(ValueError, match="refusing to mix"):
        check_consistent(mixed)
    no_al = [e for e in TOY if e.name not in ("Al", "Al-hi")]
    with pytest.raises(ValueError, match="no elemental entry for Al"):
        hull_table(no_al)


def test_mlip_hull_against_shipped_mp_entries():
    entries = {e.entry_id: e for e in mp_shipped_entries()}
    assert len(entries) == 423 and sum(len(e.composition.elements) == 1 for e in entries.values()) == 89
    mgo, mg = entries["mp-1265"], next(e for e in entries.values() if e.composition.reduced_formula == "Mg")
    o2 = next(e for e in entries.values() if e.composition.reduced_formula == "O2")
    # an MP-trained MLIP predicts the uncorrected GGA energy; MP2020 adds -0.687 eV per oxide O
    by_hand = (mgo.uncorrected_energy - 0.687 - mg.energy_per_atom - o2.energy_per_atom) / 2
    t = mlip_hull({"m": ("MgO", mgo.uncorrected_energy), "hi": ("Mg2O2", 2 * mgo.uncorrected_energy + 0.8)},
                  "test potential")
    assert t["m"]["e_form_eV_atom"] == pytest.approx(by_hand)
    assert t["m"]["e_hull_eV_atom"] == pytest.approx(0.0, abs=1e-9)
    assert t["hi"]["e_hull_eV_atom"] == pytest.approx(0.2)  # +0.8 eV over 4 atoms
    assert "lower bound" in t["m"]["label"] and t["m"]["label"].startswith("test potential")
    with pytest.raises(ValueError, match="x: pymatgen's shipped MP entries have no"):
        mlip_hull({"x": ("Og", -1.0)}, "p")


def test_mlip_hull_takes_already_corrected_energies_as_they_are():
    """CHGNet predicts MP2020-corrected energies: no second anion correction."""
    entries = {e.entry_id: e for e in mp_shipped_entries()}
    mgo = entries["mp-1265"]
    mg = next(e for e in entries.values() if e.composition.reduced_formula == "Mg")
    o2 = next(e for e in entries.values() if e.composition.reduced_formula == "O2")
    by_hand = (mgo.energy - mg.energy_per_atom - o2.energy_per_atom) / 2  # mgo.energy: corrected
    t = mlip_hull({"m": ("MgO", mgo.energy)}, "p", corrected=True)
    assert t["m"]["e_form_eV_atom"] == pytest.approx(by_hand)
    assert t["m"]["e_hull_eV_atom"] == pytest.approx(0.0, abs=1e-9)
    twice = mlip_hull({"m": ("MgO", mgo.energy)}, "p")  # corrected again: 0.687/2 eV/atom lower
    assert twice["m"]["e_form_eV_atom"] == pytest.approx(by_hand - 0.687 / 2, abs=2e-3)
