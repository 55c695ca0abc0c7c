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
        params = NS(source=source, path=str(tmp_path), max=None)
        res = run_checkpoint(params, inp, out, str(tmp_path / source / "log"))
        assert res["accepted"] == 1, source
        assert (tmp_path / source / "cands" / "s0.cif").is_file()
        assert "1 candidates accepted" in (tmp_path / source / "log").read_text()
