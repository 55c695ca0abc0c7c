"""Which phases a run needs: the subset rule, the caps, de-duplication (among JARVIS phases and
against the candidate itself), elements without a structure, and the cutoffs key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from tcflow.energy.phases import ecut_key, parse_ecut_key, plan, phase_cif_text
from workflow_helpers import SHARED

SSSP = SHARED / "pseudo" / "sssp_pbesol_efficiency_1.3.0"
FAST = {"protocol": "fast", "overrides": {}, "pseudo_dir": None, "pseudo_map": {}}


def _rocksalt(a=4.16, el=("V", "C")):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), list(el), [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def _v2c():
    return Structure(Lattice.hexagonal(2.9, 4.6), ["V", "V", "C"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75], [0, 0, 0]])


def _splits(tmp_path: Path, rows) -> list[Path]:
    """A train split holding ``rows`` (id, structure) and empty val/test, in the data stage's format."""
    recs = [{"material_id": i, "tc_K": 1.0, "formula": s.composition.formula.replace(" ", ""), "natoms": len(s),
             "cif": s.to(fmt="cif")} for i, s in rows]
    paths = []
    for name, r in (("train", recs), ("val", []), ("test", [])):
        p = tmp_path / f"{name}.csv"
        pd.DataFrame(r, columns=["material_id", "tc_K", "formula", "natoms", "cif"]).to_csv(p, index=False)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("phases")
    vc = _rocksalt()
    big = _v2c().make_supercell([2, 2, 2], in_place=False)  # 24 atoms: over max_phase_atoms
    rows = [("J-VC", vc), ("J-VC-super", vc.make_supercell([1, 1, 2], in_place=False)),  # the candidate, twice
            ("J-V2C", _v2c()), ("J-V2C-copy", _v2c()),
            ("J-V4C2", _v2c().make_supercell([1, 1, 2], in_place=False)),  # = J-V2C in a supercell
            ("J-VN", _rocksalt(el=("V", "N"))), ("J-VCN", Structure(Lattice.cubic(4.2), ["V", "C", "N"],
                                                                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]])),
            ("J-V3C2", Structure(Lattice.hexagonal(2.9, 7.0), ["V", "V", "V", "C", "C"],
                                 [[0, 0, 0], [1 / 3, 2 / 3, 0.4], [2 / 3, 1 / 3, 0.6], [1 / 3, 2 / 3, 0.2], [2 / 3, 1 / 3, 0.8]])),
            ("J-big", big)]
    cifs = tmp_path / "cands"
    cifs.mkdir()
    vc.to(filename=str(cifs / "VC.cif"))
    _rocksalt(el=("Mn", "S")).to(filename=str(cifs / "MnS.cif"))
    return _splits(tmp_path, rows), [("VC", cifs / "VC.cif"), ("MnS", cifs / "MnS.cif")]


def _cfg(**kw):
    return {"max_phases_per_system": 8, "max_phase_atoms": 12, "reference_cifs": None, "element_cifs": None, **kw}


def test_subset_rule_deduplication_and_the_candidate_itself(world):
    splits, cands = world
    phases, systems = plan(cands, splits, _cfg(), FAST, SSSP)
    vc, mns = systems
    assert vc["status"] == "ok" and vc["chemsys"] == "C-V" and vc["ecut"] == "25-200"
    # elemental references first; then V2C (3 atoms) before V3C2 (5); the copies of V2C, VN and
    # VCN (not within C-V) and the 24-atom cell (over max_phase_atoms) are not there
    assert vc["phases"].split() == ["el-C", "el-V", "J-V2C", "J-V3C2"]
    assert "J-VC: the candidate's own structure" in vc["excluded"]
    assert "J-VC-super" not in vc["phases"]  # a duplicate of J-VC: dropped before selection
    assert mns["status"].startswith("Mn: no ground-state structure; supply Mn.cif in the directory energy.element_cifs")
    assert "S: no ground-state structure" in mns["status"] and mns["phases"] == ""
    table = {p["phase"]: p for p in phases}
    assert set(table) == {"el-C", "el-V", "J-V2C", "J-V3C2"}
    assert table["el-C"]["natoms"] == 2 and table["el-C"]["source"] == "ase.build.bulk (diamond)"


def test_caps(world):
    splits, cands = world
    _, systems = plan(cands[:1], splits, _cfg(max_phases_per_system=1), FAST, SSSP)
    assert systems[0]["phases"].split() == ["el-C", "el-V", "J-V2C"]  # the smallest cell
    _, systems = plan(cands[:1], splits, _cfg(max_phase_atoms=4), FAST, SSSP)
    assert systems[0]["phases"].split() == ["el-C", "el-V", "J-V2C"]
    _, systems = plan(cands[:1], splits, _cfg(max_phases_per_system=0), FAST, SSSP)
    assert systems[0]["phases"].split() == ["el-C", "el-V"]


def test_user_references_come_first_and_bad_ones_fail_in_one_line(world, tmp_path):
    splits, cands = world
    refs = tmp_path / "refs"
    refs.mkdir()
    Structure(Lattice.cubic(3.0), ["V", "V", "C"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(refs / "V2C_mine.cif"))
    _rocksalt(el=("Nb", "C")).to(filename=str(refs / "NbC.cif"))  # not within C-V
    _, systems = plan(cands[:1], splits, _cfg(reference_cifs=str(refs), max_phases_per_system=2), FAST, SSSP)
    assert systems[0]["phases"].split() == ["el-C", "el-V", "ref-V2C_mine", "J-V2C"]
    assert phase_cif_text("ref-V2C_mine", splits, _cfg(reference_cifs=str(refs))) == (refs / "V2C_mine.cif").read_text()
    (refs / "bad.cif").write_text("not a cif\n")
    with pytest.raises(ValueError, match=r"^energy.reference_cifs: .*bad.cif: unreadable structure"):
        plan(cands[:1], splits, _cfg(reference_cifs=str(refs)), FAST, SSSP)


def test_sssp_cutoffs_are_the_candidates_own(world):
    import json

    splits, cands = world
    family = json.loads(next(SSSP.glob("*.json")).read_text())
    _, systems = plan(cands[:1], splits, _cfg(), {**FAST, "protocol": "sssp"}, SSSP)
    want = {"ecutwfc_ry": max(family[e]["ecutwfc_ry"] for e in ("V", "C")),
            "ecutrho_ry": max(family[e]["ecutrho_ry"] for e in ("V", "C"))}
    assert parse_ecut_key(systems[0]["ecut"]) == want and ecut_key(want) == systems[0]["ecut"]


def test_phase_cif_text_of_each_kind(world):
    splits, _ = world
    assert phase_cif_text("J-V2C", splits, _cfg()).startswith("# generated using pymatgen")
    assert phase_cif_text("el-B", splits, _cfg()).startswith("# el-B: tcflow/energy/elements/B.cif")
    with pytest.raises(ValueError, match="phase J-nope: not an element"):
        phase_cif_text("J-nope", splits, _cfg())
