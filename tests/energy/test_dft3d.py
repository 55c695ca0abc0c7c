"""Competing phases from JARVIS-DFT dft_3d: reading jarvis-tools' archive (zip or bare JSON),
which entries are kept, where the archive comes from (file, mirror, download), a failed download
and a corrupt archive in one line, the plan with dft_3d phases, and the rules end to end (no QE).

The archives here are small files in dft_3d's format (entries written with jarvis-tools' own
``Atoms.to_dict``); their ids and ``ehull`` values are test data, not JARVIS's."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from jarvis.core.atoms import pmg_to_atoms
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from tcflow.energy import dft3d
from tcflow.energy.phases import phase_cif_text, plan
from workflow_helpers import SHARED, run_snakemake

MEMBER = "jdft_3d-test.json"
FAST = {"protocol": "fast", "overrides": {}, "pseudo_dir": None, "pseudo_map": {}}
SSSP = SHARED / "pseudo" / "sssp_pbesol_efficiency_1.3.0"


def _vc(a=4.16):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["V", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def _v2c():
    return Structure(Lattice.hexagonal(2.9, 4.6), ["V", "V", "C"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75], [0, 0, 0]])


def _v3c2():
    return Structure(Lattice.hexagonal(2.9, 7.0), ["V", "V", "V", "C", "C"],
                     [[0, 0, 0], [1 / 3, 2 / 3, 0.4], [2 / 3, 1 / 3, 0.6], [1 / 3, 2 / 3, 0.2], [2 / 3, 1 / 3, 0.8]])


def _entry(jid, struct, ehull, cartesian=False):
    atoms = pmg_to_atoms(struct).to_dict()
    if cartesian:
        atoms["coords"] = struct.cart_coords.tolist()
        atoms["cartesian"] = True
    atoms["angles"] = [float(x) for x in atoms["angles"]]
    return {"jid": jid, "atoms": atoms, "ehull": ehull, "formula": struct.composition.reduced_formula}


ENTRIES = [
    _entry("t3d-V2C", _v2c(), 0.0),
    _entry("t3d-V3C2", _v3c2(), 0.02, cartesian=True),
    _entry("t3d-V6C4", _v3c2().make_supercell([2, 1, 1], in_place=False), 0.0),  # = t3d-V3C2 in a supercell
    _entry("t3d-VC-hi", _vc(4.4), 0.3),              # above the ehull threshold
    _entry("t3d-VC-cscl", Structure(Lattice.cubic(2.6), ["V", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]), 0.04),
    _entry("t3d-V", Structure(Lattice.cubic(3.0), ["V", "V"], [[0, 0, 0], [0.5, 0.5, 0.5]]), 0.0),  # unary
    _entry("t3d-VN", Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.1), ["V", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]]), "na"),
    _entry("t3d-NbC", Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.47), ["Nb", "C"], [[0, 0, 0], [0.5, 0.5, 0.5]]), 0.0),
    {"jid": "t3d-broken", "atoms": {"elements": ["V"]}, "ehull": 0.0},
]


def _zip(path: Path, entries=ENTRIES) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MEMBER, json.dumps(entries))
    return path


@pytest.fixture
def closed_url(monkeypatch):
    """dft_3d's URL pointed at a closed local port: a real, immediate connection failure."""
    url = "http://127.0.0.1:9/files/dft_3d.zip"
    monkeypatch.setattr(dft3d, "source_info", lambda: (url, MEMBER))
    return url


def test_select_keeps_binaries_near_the_hull_and_says_what_it_left_out():
    rows, skipped = dft3d.select(ENTRIES, 0.05)
    assert [r["jid"] for r in rows] == ["t3d-NbC", "t3d-V2C", "t3d-V3C2", "t3d-V6C4", "t3d-VC-cscl"]
    assert skipped == {"unary": 1, "no_ehull": 1, "above_ehull": 1, "unreadable": 1}
    by = {r["jid"]: r for r in rows}
    assert by["t3d-V3C2"]["formula"] == "V3C2" and by["t3d-V3C2"]["natoms"] == 5
    assert by["t3d-V3C2"]["elements"] == "C V" and by["t3d-V3C2"]["ehull_eV_atom"] == 0.02
    # Cartesian coordinates come back as the same crystal
    back = dft3d.structure_from_row(by["t3d-V3C2"]["structure"])
    assert StructureMatcher().fit(back, _v3c2())
    assert back.lattice.abc == pytest.approx(_v3c2().lattice.abc)


@pytest.mark.parametrize("kind", ["zip", "json"])
def test_table_from_a_local_file(tmp_path, kind, closed_url):
    src = _zip(tmp_path / f"{MEMBER}.zip") if kind == "zip" else tmp_path / MEMBER
    if kind == "json":
        src.write_text(json.dumps(ENTRIES))
    meta = dft3d.build_table(tmp_path / "out" / "dft_3d_phases.csv", str(src), None, 0.05)
    assert meta["origin"] == "file" and meta["kept"] == 5 and len(meta["sha256"]) == 64
    df = dft3d.read_table(tmp_path / "out" / "dft_3d_phases.csv")
    assert list(df.columns) == list(dft3d.COLUMNS) and len(df) == 5
    assert json.loads((tmp_path / "out" / "dft_3d_phases.json").read_text())["kept"] == 5


def test_table_from_the_mirror_then_no_download(tmp_path, closed_url):
    mirror = tmp_path / "mirror"
    (mirror / dft3d.MIRROR_SUBDIR).mkdir(parents=True)
    _zip(mirror / dft3d.MIRROR_SUBDIR / f"{MEMBER}.zip")
    meta = dft3d.build_table(tmp_path / "res" / "t.csv", None, str(mirror), 0.0)
    assert meta["origin"] == "mirror"
    assert sorted(dft3d.read_table(tmp_path / "res" / "t.csv")["jid"]) == ["t3d-NbC", "t3d-V2C", "t3d-V6C4"]


def test_failed_download_says_how_to_supply_the_file_and_leaves_nothing(tmp_path, closed_url):
    with pytest.raises(dft3d.Dft3dError) as err:
        dft3d.build_table(tmp_path / "res" / "t.csv", None, str(tmp_path / "no-mirror"), 0.05)
    msg = str(err.value)
    assert "\n" not in msg and closed_url in msg and "energy.dft_3d_file" in msg and f"{MEMBER}.zip" in msg
    assert not any((tmp_path / "res").iterdir())  # no partial archive, no table


def test_corrupt_or_missing_archive_fails_in_one_line_naming_it(tmp_path, closed_url):
    bad = tmp_path / f"{MEMBER}.zip"
    bad.write_bytes(_zip(tmp_path / "good.zip").read_bytes()[:200])  # a truncated download
    with pytest.raises(dft3d.Dft3dError, match=rf"^{bad}: not a readable dft_3d archive") as err:
        dft3d.build_table(tmp_path / "t.csv", str(bad), None, 0.05)
    assert "\n" not in str(err.value)
    with pytest.raises(dft3d.Dft3dError, match=r"^energy.dft_3d_file: .*nope.zip not found$"):
        dft3d.build_table(tmp_path / "t.csv", str(tmp_path / "nope.zip"), None, 0.05)
    (tmp_path / "list.json").write_text('{"jid": 1}')
    with pytest.raises(dft3d.Dft3dError, match="expected a JSON list"):
        dft3d.build_table(tmp_path / "t.csv", str(tmp_path / "list.json"), None, 0.05)
    assert not (tmp_path / "t.csv").exists()


def test_plan_adds_dft3d_phases_by_ehull_without_duplicates(tmp_path, closed_url):
    table = tmp_path / "dft_3d_phases.csv"
    entries = ENTRIES + [_entry("J-V2C", _v2c(), 0.0)]  # a JARVIS-SC row is also in dft_3d
    dft3d.build_table(table, str(_zip(tmp_path / "a.zip", entries)), None, 0.05)
    split_rows = [{"material_id": "J-V2C", "tc_K": 1.0, "formula": "V2C", "natoms": 3, "cif": _v2c().to(fmt="cif")}]
    splits = []
    for name, rows in (("train", split_rows), ("val", []), ("test", [])):
        splits.append(tmp_path / f"{name}.csv")
        pd.DataFrame(rows, columns=["material_id", "tc_K", "formula", "natoms", "cif"]).to_csv(splits[-1], index=False)
    _vc().to(filename=str(tmp_path / "VC.cif"))
    cfg = {"max_phases_per_system": 8, "max_phase_atoms": 12, "reference_cifs": None, "element_cifs": None}
    cands = [("VC", tmp_path / "VC.cif")]
    phases, systems = plan(cands, splits, cfg, FAST, SSSP, dft3d_csv=table)
    # V2C once (the JARVIS-SC id; t3d-V2C is the same structure), V3C2 once (the smaller cell),
    # ordered by JARVIS's ehull (not by cell size: CsCl-type VC has the fewest atoms); NbC is outside V-C
    assert systems[0]["phases"].split() == ["el-C", "el-V", "J-V2C", "t3d-V3C2", "t3d-VC-cscl"]
    kinds = {p["phase"]: p["kind"] for p in phases}
    assert kinds["t3d-V3C2"] == "dft_3d" and kinds["J-V2C"] == "jarvis"
    # the cap and the atom limit hold for dft_3d phases too
    _, capped = plan(cands, splits, {**cfg, "max_phases_per_system": 1}, FAST, SSSP, dft3d_csv=table)
    assert capped[0]["phases"].split() == ["el-C", "el-V", "J-V2C"]
    _, small = plan(cands, splits, {**cfg, "max_phase_atoms": 4}, FAST, SSSP, dft3d_csv=table)
    assert "t3d-V3C2" not in small[0]["phases"].split()
    # without the table the plan is what it was
    _, plain = plan(cands, splits, cfg, FAST, SSSP)
    assert plain[0]["phases"].split() == ["el-C", "el-V", "J-V2C"]
    _, low = plan(cands, splits, cfg, FAST, SSSP, dft3d_csv=dft3d.build_table(
        tmp_path / "low.csv", str(tmp_path / "a.zip"), None, 0.03) and tmp_path / "low.csv")
    assert low[0]["phases"].split() == ["el-C", "el-V", "J-V2C", "t3d-V3C2"]
    cif = phase_cif_text("t3d-V3C2", splits, cfg, table)
    assert StructureMatcher().fit(Structure.from_str(cif, fmt="cif"), _v3c2())
    with pytest.raises(ValueError, match=r"phase t3d-nothing: .*dft_3d_phases.csv"):
        phase_cif_text("t3d-nothing", splits, cfg, table)


def test_rules_fetch_plan_and_write_a_dft3d_phase(tmp_path):
    """cif_dir candidate VC (JARVIS-SC's JVASP-19657) with a dft_3d file: fetch_dft_3d, the plan
    checkpoint and a dft_3d phase's structure through Snakemake (no QE)."""
    (tmp_path / "cifs").mkdir()
    df = pd.concat(pd.read_csv(SHARED / "data" / "jarvis_supercon" / f"{s}.csv") for s in ("train", "val", "test"))
    (tmp_path / "cifs" / "VC.cif").write_text(df[df["material_id"] == "JVASP-19657"]["cif"].iloc[0])
    archive = _zip(tmp_path / f"{MEMBER}.zip")
    cfg = {"candidates": {"source": "cif_dir", "path": str(tmp_path / "cifs")},
           "dft": {"protocol": "fast"},
           "energy": {"enabled": True, "mlip": "none", "max_phase_atoms": 6, "dft_3d_phases": True,
                      "dft_3d_file": str(archive)}}
    run_snakemake(tmp_path, cfg, "--cores", "1", "results/energy/phases.csv", "results/energy/structures/t3d-V3C2.cif")
    systems = pd.read_csv(tmp_path / "results" / "energy" / "systems.csv")
    assert "t3d-V3C2" in systems["phases"].iloc[0].split()
    meta = json.loads((tmp_path / "resources" / "jarvis" / "dft_3d_phases.json").read_text())
    assert meta["origin"] == "file" and meta["archive"] == str(archive.resolve())
    cif = (tmp_path / "results" / "energy" / "structures" / "t3d-V3C2.cif").read_text()
    assert StructureMatcher().fit(Structure.from_str(cif, fmt="cif"), _v3c2())
