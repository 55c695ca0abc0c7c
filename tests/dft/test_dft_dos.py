"""``broadening_rule: dos_rescaled`` (protocol ``converged_dos``): N(E_F) of a la2F grid from
pw.x's a2Fsave as ph.x computes it, and tc.json's α²F rescaled by the second grid's N(E_F), on a
real fcc-Al run (fixtures/al_converged: q 6³, la2F 24³ and 36³, with elph2 on 36³ to compare)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from tcflow.dft.chain import chain
from tcflow.dft.dos import dos_at_fermi
from tcflow.dft.outputs import parse_a2fsave
from tcflow.dft.protocol import ProtocolError, get_protocol, has_second_grid, needs_elph2
from tcflow.dft.steps import tc as tc_step

FIX = Path(__file__).parent / "fixtures" / "al_converged"
SIGMAS = [0.005 * i for i in range(1, 11)]
N_ELECTRONS = 3.0


def _a2fsave(tmp_path, step: str) -> Path:
    out = tmp_path / f"{step}.a2Fsave"
    out.write_bytes(gzip.decompress((FIX / step / "tcflow.a2Fsave.gz").read_bytes()))
    return out


@pytest.mark.parametrize("step, record", [("scf_fit", "matdyn/matdyn.json"), ("scf_fit2", "matdyn2/matdyn2.json")])
def test_fermi_dos_equals_ph_x(tmp_path, step, record):
    """N(E_F) per broadening from the a2Fsave equals what ph.x's elphsum printed for that grid
    (24³ in ph, 36³ in elph2; QE prints 4 decimals)."""
    a2f = parse_a2fsave(_a2fsave(tmp_path, step))
    qe = [r["n_ef"] for r in json.loads((FIX / record).read_text())["lambda_table"]]
    ours = [dos_at_fermi(a2f["eig_ry"], a2f["weights"], N_ELECTRONS, s)[1] for s in SIGMAS]
    assert sum(a2f["weights"]) == pytest.approx(2.0)
    assert ours == pytest.approx(qe, abs=6e-5)


def test_truncated_a2fsave_is_refused(tmp_path):
    path = _a2fsave(tmp_path, "scf_fit")
    path.write_text(" ".join(path.read_text().split()[:500]))
    with pytest.raises(ValueError, match=rf"{path}: not a complete a2Fsave file"):
        parse_a2fsave(path)


@pytest.fixture
def cand(tmp_path):
    d = tmp_path / "al"
    shutil.copytree(FIX, d)
    for step in ("scf_fit", "scf_fit2"):
        gz = d / step / "tcflow.a2Fsave.gz"
        (d / step / "tcflow.a2Fsave").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    return d


def test_two_grid_record_is_reproduced(cand):
    before = json.loads((cand / "tc_before.json").read_text())
    tc = tc_step.step_tc("al", cand, cand / "tc.json")
    for key in ("lambda", "sigma_ry", "tc_K", "converged", "tc_source"):
        assert tc[key] == before[key], key


def test_dos_rescaled_tc(cand):
    """The converged_dos chain (no elph2, q2r2, matdyn2): λ(σ) of the 24³ grid times
    N_36(σ)/N_24(σ), the successive rule on it; within 0.1 % of the two-grid λ here."""
    two_grid = json.loads((cand / "tc_before.json").read_text())
    for step in ("elph2", "q2r2", "matdyn2"):
        shutil.rmtree(cand / step)
    rec = json.loads((cand / "structure/structure.json").read_text())
    rec["protocol"]["broadening_rule"] = "dos_rescaled"
    (cand / "structure/structure.json").write_text(json.dumps(rec))
    tc = tc_step.step_tc("al", cand, cand / "tc.json")

    n36 = [r["n_ef"] for r in json.loads((FIX / "matdyn2/matdyn2.json").read_text())["lambda_table"]]
    for row, n2 in zip(tc["table"], n36):
        m, r = row["matdyn"], row["matdyn_dos_rescaled"]
        assert r["n_ef"] == pytest.approx(n2, abs=6e-5)
        assert r["scale"] == pytest.approx(r["n_ef"] / m["n_ef"], rel=1e-12)
        assert r["lambda"] == pytest.approx(m["lambda"] * r["scale"], rel=1e-12)
        assert r["omega_log_K"] == m["omega_log_K"]
    lam = [row["matdyn_dos_rescaled"]["lambda"] for row in tc["table"]]
    first = next(i for i in range(9) if abs(lam[i + 1] - lam[i]) <= 0.05 * lam[i])
    assert tc["broadening_index"] == first == 2 and tc["converged"] is True
    assert tc["tc_source"] == "matdyn_dos_rescaled" and tc["broadening_rule"] == "dos_rescaled"
    assert tc["lambda"] == lam[first] == pytest.approx(two_grid["lambda"], rel=1e-3)
    assert tc["a2f"]["scale"] == tc["table"][first]["matdyn_dos_rescaled"]["scale"] < 1
    assert "a2f_error" not in tc and tc["tc_eliashberg_K"] > 0
    assert "[24, 24, 24]" in tc["selection_rule"] and "[36, 36, 36]" in tc["selection_rule"]


def test_dos_rescaled_protocol_runs_no_second_el_ph():
    proto = get_protocol("converged_dos")
    assert has_second_grid(proto) and not needs_elph2(proto)
    converged = get_protocol("converged")
    assert {k for k in proto if proto[k] != converged[k]} == {"broadening_rule", "name"}
    assert needs_elph2(get_protocol("converged"))
    names = [s.name for s in chain(1, second_grid=True, elph2=False)]
    assert "scf_fit2" in names and not {"elph2", "q2r2", "matdyn2"} & set(names)
    with pytest.raises(ProtocolError, match="dft.overrides.broadening_rule: broadening_rule dos_rescaled needs a "
                                            "second dense grid"):
        get_protocol("jarvis", {"broadening_rule": "dos_rescaled"})
    with pytest.raises(ProtocolError, match="tc_source must be matdyn"):
        get_protocol("converged_dos", {"tc_source": "lambda_x"})
