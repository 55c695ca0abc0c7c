"""The MLIP columns from the screen's CHGNet energies (no model run): E_form by hand against the
shipped MP elemental entries, and the one-line status when there is no MLIP energy."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from tcflow.energy.hull import mp_shipped_entries
from tcflow.energy.mlip import mlip_rows, write_mlip


def test_screen_energies_on_the_shipped_mp_hull(tmp_path):
    vc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.16), ["V", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    vc = vc.get_primitive_structure()
    vc.to(filename=str(tmp_path / "c1.cif"))
    vc.to(filename=str(tmp_path / "c2.cif"))
    pred = tmp_path / "predictions.csv"
    # the screen relaxed c1 in a 4-atom cell: -9.5 eV/atom; c2 has no energy (relaxation off)
    pd.DataFrame([{"id": "c1", "natoms": 4, "e_final_eV_atom": -9.5},
                  {"id": "c2", "natoms": 2, "e_final_eV_atom": float("nan")}]).to_csv(pred, index=False)
    refs = {}
    for e in mp_shipped_entries():
        if len(e.composition.elements) == 1:
            el = str(e.composition.elements[0])
            refs[el] = min(refs.get(el, 0.0), e.energy_per_atom)
    rows = {r["id"]: r for r in mlip_rows([("c1", tmp_path / "c1.cif"), ("c2", tmp_path / "c2.cif")], "screen", pred)}
    r1 = rows["c1"]
    assert r1["mlip_status"] == "ok" and r1["mlip_natoms"] == 4 and r1["mlip_energy_eV"] == pytest.approx(-38.0)
    assert r1["mlip_e_form_eV_atom"] == pytest.approx(-9.5 - (refs["V"] + refs["C"]) / 2)
    assert r1["mlip_label"].startswith("CHGNet ") and "lower bound" in r1["mlip_label"]
    assert rows["c2"]["mlip_status"] == "the screen has no MLIP energy (energy.mlip: screen)"
    write_mlip(list(rows.values()), tmp_path / "mlip.csv")
    assert pd.read_csv(tmp_path / "mlip.csv")["mlip_status"].tolist() == ["ok", rows["c2"]["mlip_status"]]


def test_screen_energies_from_sevenn_get_mp2020_corrections(tmp_path):
    """A screen run with SevenNet (uncorrected energies): the oxide's energy gets MP2020's oxide
    correction before the hull, CHGNet's (already corrected) does not; an unknown potential name
    is a one-line status."""
    from tcflow.energy.hull import mp2020_entry

    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.25), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    mgo.get_primitive_structure().to(filename=str(tmp_path / "m.cif"))
    pred = tmp_path / "predictions.csv"
    cands = [("m", tmp_path / "m.cif")]
    out = {}
    for model in ("chgnet", "sevenn", "mace"):
        pd.DataFrame([{"id": "m", "natoms": 2, "e_final_eV_atom": -6.0, "mlip": model}]).to_csv(pred, index=False)
        out[model] = mlip_rows(cands, "screen", pred)[0]
    correction = mp2020_entry("x", mgo.get_primitive_structure().composition, -12.0).correction
    assert correction < -0.5  # MP2020's oxide correction, per formula unit
    assert out["sevenn"]["mlip_e_form_eV_atom"] == pytest.approx(out["chgnet"]["mlip_e_form_eV_atom"] + correction / 2)
    assert out["sevenn"]["mlip_label"].startswith("SevenNet ") and out["chgnet"]["mlip_label"].startswith("CHGNet ")
    assert out["mace"]["mlip_status"] == "the screen's MLIP 'mace' is not one of chgnet, sevenn"
