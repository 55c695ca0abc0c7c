"""The candidate set: user CIFs (ids = stems), bad inputs listed with a reason, caps honoured;
and the property-head screen."""

from __future__ import annotations

import pandas as pd
from pymatgen.core import Lattice, Structure

from tcflow.screen.candidates import select_candidates
from tcflow.screen.property_head import screen_samples


def _nb(path):
    Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(path))


def test_cif_dir_candidates(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _nb(src / "Nb-bcc.cif")
    _nb(src / "bad id.cif")
    (src / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    text = (src / "Nb-bcc.cif").read_text()
    (src / "unknown.cif").write_text(text.replace("Nb", "Qq"))
    res = select_candidates(tmp_path / "out", tmp_path / "c.csv", tmp_path / "r.csv", cif_dir=src)
    assert res["accepted"] == 1 and res["rejected"] == 3
    cands = pd.read_csv(tmp_path / "c.csv")
    assert cands.to_dict("records")[0]["id"] == "Nb-bcc"
    assert (tmp_path / "out" / "Nb-bcc.cif").read_bytes() == (src / "Nb-bcc.cif").read_bytes()
    rej = pd.read_csv(tmp_path / "r.csv").set_index("id")["reason"]
    assert "does not match" in rej["bad id"]
    assert "broken.cif" in rej["broken"]
    assert "unknown.cif" in rej["unknown"]


def test_max_count(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        _nb(src / f"c{i}.cif")
    assert select_candidates(tmp_path / "out", tmp_path / "c.csv", tmp_path / "r.csv", cif_dir=src, max_count=2)["accepted"] == 2


def test_property_head_screen(tmp_path):
    cifs = []
    for i in range(4):
        _nb(tmp_path / f"s{i}.cif")
        cifs.append(str(tmp_path / f"s{i}.cif"))
    samples = pd.DataFrame({
        "id": ["s0", "s1", "s2", "s3"], "cif": cifs, "formula": ["Nb"] * 4, "natoms": [2, 2, 30, 2],
        "pred_tc_K": [12.0, 3.0, 20.0, 8.0], "struct_valid": [True, True, True, False],
        "comp_valid": [True, True, True, True],
    })
    samples.to_csv(tmp_path / "samples.csv", index=False)
    cfg = {"tc_min_K": 5.0, "max_atoms": 18, "require_valid": True, "top_k": None}
    n, kept = screen_samples(tmp_path / "samples.csv", tmp_path / "scr.csv", tmp_path / "surv.csv", cfg)
    assert (n, kept) == (4, 1)
    scr = pd.read_csv(tmp_path / "scr.csv").set_index("id")
    assert scr.loc["s1", "reason"].startswith("predicted Tc 3.00 K")
    assert scr.loc["s2", "reason"] == "natoms 30 > 18"
    assert scr.loc["s3", "reason"] == "structurally invalid"
    cfg.update(require_valid=False, max_atoms=100, top_k=2)
    n, kept = screen_samples(tmp_path / "samples.csv", tmp_path / "scr.csv", tmp_path / "surv.csv", cfg)
    assert list(pd.read_csv(tmp_path / "surv.csv")["id"]) == ["s2", "s0"]
    # the survivors feed the candidate checkpoint
    res = select_candidates(tmp_path / "cands", tmp_path / "c.csv", tmp_path / "r.csv", survivors_csv=tmp_path / "surv.csv")
    assert res["accepted"] == 2


def test_checkpoint_body_from_survivors_and_from_cif_dir(tmp_path):
    """The `candidates` rule's run: body, with Snakemake's namespaces as plain attributes."""
    from types import SimpleNamespace as NS

    from tcflow.screen.candidates import run_checkpoint

    _nb(tmp_path / "s0.cif")
    pd.DataFrame({"id": ["s0"], "cif": [str(tmp_path / "s0.cif")]}).to_csv(tmp_path / "surv.csv", index=False)
    for source, inp in (("survivors", NS(survivors=str(tmp_path / "surv.csv"))), ("cif_dir", NS())):
        out = NS(dir=str(tmp_path / source / "cands"), table=str(tmp_path / source / "c.csv"),
                 rejected=str(tmp_path / source / "r.csv"))
        (tmp_path / source).mkdir()
        params = NS(source=source, path=str(tmp_path), max=None, max_atoms=50, min_distance_A=0.5)
        res = run_checkpoint(params, inp, out, str(tmp_path / source / "log"), warn=print)
        assert res["accepted"] == 1, source
        assert (tmp_path / source / "cands" / "s0.cif").is_file()
        assert "1 candidates accepted" in (tmp_path / source / "log").read_text()


def test_dot_ids_are_rejected_with_a_reason(tmp_path):
    """Issue "Interrupts and bad input" 3: a file `...cif` (stem `..`) once reached the DFT stage,
    which then wrote results/tc.json; stems without a letter or digit are rejected."""
    src = tmp_path / "in"
    src.mkdir()
    for stem in ("..", ".", "_", "Nb.bcc"):
        _nb(src / f"{stem}.cif")
    res = select_candidates(tmp_path / "out", tmp_path / "c.csv", tmp_path / "r.csv", cif_dir=src)
    assert res["accepted"] == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Nb.bcc.cif"]
    rej = pd.read_csv(tmp_path / "r.csv", dtype={"id": str}).set_index("id")["reason"]
    assert set(rej.index) == {"..", ".", "_"}
    assert all("does not match" in r and "at least one letter or digit" in r for r in rej)


def _al_fcc() -> Structure:
    return Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def _bad_user_structures(src):
    """fcc Al (fine), a 200-atom P1 supercell and a cell with two atoms 0.1 Å apart."""
    src.mkdir()
    _al_fcc().to(filename=str(src / "Al-fcc.cif"))
    _al_fcc().make_supercell([5, 5, 2]).to(filename=str(src / "big.cif"))
    Structure(Lattice.cubic(4.0), ["Al", "Al"], [[0, 0, 0], [0.025, 0, 0]]).to(filename=str(src / "close.cif"))


def test_user_structures_are_checked(tmp_path):
    """Issue "Interrupts and bad input" 5: cif_dir accepted a 200-atom cell and atoms 0.1 Å apart
    (its vc-relax ran 10 min until stopped); both are now rejected, each with its reason."""
    _bad_user_structures(tmp_path / "in")
    res = select_candidates(tmp_path / "out", tmp_path / "c.csv", tmp_path / "r.csv", cif_dir=tmp_path / "in",
                            max_atoms=18, min_distance_A=0.5)
    assert res["accepted"] == 1
    assert list(pd.read_csv(tmp_path / "c.csv")["id"]) == ["Al-fcc"]
    rej = pd.read_csv(tmp_path / "r.csv").set_index("id")["reason"]
    assert "200 atoms per cell > candidates.max_atoms = 18" in rej["big"]
    assert "atoms 0.100 Å apart (< candidates.min_distance_A = 0.5 Å)" in rej["close"]
    assert all(str(tmp_path / "in") in r for r in rej)
    # min_distance_A 0 turns the distance check off; no max_atoms, no cap
    res = select_candidates(tmp_path / "out2", tmp_path / "c2.csv", tmp_path / "r2.csv", cif_dir=tmp_path / "in",
                            max_atoms=None, min_distance_A=0)
    assert res["accepted"] == 3


def test_checkpoint_logs_each_rejection_on_the_console(tmp_path):
    """Each rejection is a line in the checkpoint's log and a line on the console."""
    from types import SimpleNamespace as NS

    from tcflow.screen.candidates import run_checkpoint

    _bad_user_structures(tmp_path / "in")
    out = NS(dir=str(tmp_path / "cands"), table=str(tmp_path / "c.csv"), rejected=str(tmp_path / "r.csv"))
    params = NS(source="cif_dir", path=str(tmp_path / "in"), max=None, max_atoms=50, min_distance_A=0.5)
    lines: list[str] = []
    res = run_checkpoint(params, NS(), out, str(tmp_path / "log"), warn=lines.append)
    assert res["rejected"] == 2
    assert [ln.split(":")[1].strip() for ln in lines[:2]] == ["big rejected", "close rejected"]
    assert lines[2] == f"candidates: 1 accepted, 2 rejected (listed in {out.rejected})"
    log = (tmp_path / "log").read_text()
    assert "candidate big rejected: " in log and "candidate close rejected: " in log


def test_rejections_reach_the_snakemake_console(tmp_path):
    """Through the real CLI: the checkpoint's rejections appear in Snakemake's output, not only in
    results/screen/rejected.csv."""
    from workflow_helpers import SHARED, run_snakemake

    _bad_user_structures(tmp_path / "in")
    cfg = {"data": {"mirror": str(SHARED)}, "candidates": {"source": "cif_dir", "path": str(tmp_path / "in")}}
    proc = run_snakemake(tmp_path, cfg, "--cores", "1", "results/screen/rejected.csv")
    out = proc.stdout + proc.stderr
    assert "candidates: big rejected: " in out and "> candidates.max_atoms = 50" in out
    assert "candidates: close rejected: " in out
    assert sorted(p.name for p in (tmp_path / "results" / "candidates").glob("*.cif")) == ["Al-fcc.cif"]
