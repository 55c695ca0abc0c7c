"""QE error handling: the handler table, and the retry loop on frozen real failing outputs.

A stand-in ``pw.x`` / ``ph.x`` replays frozen real QE outputs (one fixture folder per failure)
in order, so the retry loop, the recorded actions and the retried input are checked without
running QE.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tcflow.dft import outputs as qo
from tcflow.dft.handlers import apply_handler, ph_handlers, ph_settings, pw_handlers, pw_settings
from tcflow.dft.protocol import get_protocol
from tcflow.dft.runner import Launch, run_with_retries

FIX = Path(__file__).parent / "fixtures"


def _replaying_exe(tmp_path: Path, exe: str, outputs: list[Path]) -> Launch:
    """A fake ``exe`` that prints ``outputs[i]`` on its i-th call (and keeps each input it got)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / exe
    lines = ["#!/bin/sh", f'n=$(ls {tmp_path}/calls 2>/dev/null | wc -l)', f"mkdir -p {tmp_path}/calls",
             f'cp "$2" {tmp_path}/calls/input.$n']
    for i, out in enumerate(outputs):
        lines.append(f'[ "$n" = {i} ] && cat {out} && exit 0')
    lines.append("exit 3")
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return Launch(mpi="", bin_dir=str(bindir))


def test_ph_retry_uses_the_protocols_mixing_not_a_constant():
    """The 0.7 bug: a protocol with alpha_mix_ph 0.3 retries at 0.3 x retry_mixing_factor."""
    proto = get_protocol("fast", {"alpha_mix_ph": 0.3})
    new, action = apply_handler(ph_handlers(proto), "ph_not_converged", ph_settings(proto))
    assert new["alpha_mix"] == pytest.approx(0.3 * proto["retry_mixing_factor"]) == pytest.approx(0.15)
    assert "alpha_mix 0.3 -> 0.15" in action


def test_pw_actions_take_their_factors_from_the_protocol():
    proto = get_protocol("fast", {"mixing_beta": 0.4, "retry_mixing_factor": 0.25, "retry_maxstep_factor": 3})
    new, _ = apply_handler(pw_handlers(proto), "scf_not_converged", pw_settings(proto))
    assert new == {"mixing_beta": pytest.approx(0.1), "electron_maxstep": 3 * proto["electron_maxstep"]}
    assert apply_handler(pw_handlers(proto), "diagonalization", new)[0]["diagonalization"] == "cg"
    for code in ("walltime", "interrupted", "qe_error", "relax_not_converged"):
        assert apply_handler(pw_handlers(proto), code, new) is None, code


def test_every_code_is_numbered_and_every_handled_code_is_classified():
    assert set(qo.ERROR_CODES) | {"ok"} == set(qo.ERROR_NUMBERS)
    assert len(set(qo.ERROR_NUMBERS.values())) == len(qo.ERROR_NUMBERS)
    proto = get_protocol("fast", {})
    for handlers in (pw_handlers(proto), ph_handlers(proto)):
        assert set(handlers.actions) <= set(qo.ERROR_CODES)


def test_scf_not_converged_is_retried_with_less_mixing(tmp_path):
    proto = get_protocol("fast", {})
    launch = _replaying_exe(tmp_path, "pw.x", [FIX / "scf_not_converged/pw_scf_not_converged.out",
                                               FIX / "ok/pw_ok.out"])

    def make(settings):
        return f"mixing_beta = {settings['mixing_beta']}\nelectron_maxstep = {settings['electron_maxstep']}\n"

    res = run_with_retries("pw.x", make, tmp_path / "run", "scf", launch, pw_settings(proto), pw_handlers(proto), 2)
    assert res.ok and [a["code"] for a in res.attempts] == ["scf_not_converged", "ok"]
    assert res.attempts[0]["action"].startswith("scf_not_converged: mixing_beta 0.7 -> 0.35")
    second = (tmp_path / "calls/input.1").read_text()
    assert "mixing_beta = 0.35" in second and f"electron_maxstep = {2 * proto['electron_maxstep']}" in second
    assert (tmp_path / "run/scf.attempt0.out").read_text().count("convergence NOT achieved") >= 1


def test_retries_are_bounded_and_unhandled_codes_stop(tmp_path):
    proto = get_protocol("fast", {})
    bad = FIX / "scf_not_converged/pw_scf_not_converged.out"
    launch = _replaying_exe(tmp_path, "pw.x", [bad, bad, bad, FIX / "ok/pw_ok.out"])
    res = run_with_retries("pw.x", lambda s: "x\n", tmp_path / "run", "scf", launch, pw_settings(proto),
                           pw_handlers(proto), 2)
    assert not res.ok and len(res.attempts) == 3
    launch = _replaying_exe(tmp_path / "b", "pw.x", [FIX / "qe_error/pw_qe_error.out", FIX / "ok/pw_ok.out"])
    res = run_with_retries("pw.x", lambda s: "x\n", tmp_path / "b/run", "scf", launch, pw_settings(proto),
                           pw_handlers(proto), 2)
    assert res.code == "qe_error" and len(res.attempts) == 1 and "action" not in res.attempts[0]


#: frozen real failures in fixtures/ (no real diagonalisation failure could be produced: its
#: `cg` action is covered by the table tests above only)
@pytest.mark.parametrize("folder, exe, code", [
    ("ph_not_converged", "ph.x", "ph_not_converged"),
    ("scf_not_converged", "pw.x", "scf_not_converged"),
    ("relax_not_converged", "pw.x", "relax_not_converged"),
    ("relax_failed", "pw.x", "relax_failed"),
])
def test_handler_on_frozen_real_failure(tmp_path, folder, exe, code):
    outs = sorted((FIX / folder).glob(f"{'ph' if exe == 'ph.x' else 'pw'}*.out"))
    assert outs, f"no frozen {exe} output in fixtures/{folder}"
    got, reason = qo.classify(outs[0].read_text())
    assert got == code, reason
    proto = get_protocol("fast", {})
    handlers = ph_handlers(proto) if exe == "ph.x" else pw_handlers(proto)
    settings = ph_settings(proto) if exe == "ph.x" else pw_settings(proto)
    fix = apply_handler(handlers, code, settings)
    if code == "relax_not_converged":
        assert fix is None  # reported as failed, not retried with the same geometry
        return
    if code == "relax_failed":  # QE printed "bfgs converged" after the BFGS stop: the stop decides
        assert "bfgs converged" in outs[0].read_text() and "JOB DONE" in outs[0].read_text()
    assert fix is not None and fix[0] != settings
    ok = FIX / ("ok/ph_ok.out" if exe == "ph.x" else "ok/pw_ok.out")
    launch = _replaying_exe(tmp_path, exe, [outs[0], ok])
    res = run_with_retries(exe, lambda s: repr(sorted(s.items())) + "\n", tmp_path / "run", "x", launch, settings,
                           handlers, 1)
    assert res.ok and res.attempts[0]["code"] == code and res.attempts[0]["action"].startswith(code)
    assert re.search(r"\S", (tmp_path / "calls/input.1").read_text())


def test_bfgs_failure_restarts_from_its_last_geometry_with_a_smaller_trust_radius():
    from tcflow.dft import inputs as qi
    from tcflow.dft.cell import Cell
    from tcflow.dft.steps.pw import last_geometry

    proto = get_protocol("fast", {})
    new, action = apply_handler(pw_handlers(proto), "relax_failed", pw_settings(proto))
    assert new["from_last_geometry"] is True and new["trust_radius_ini"] == pytest.approx(0.25)
    again, _ = apply_handler(pw_handlers(proto), "relax_failed", new)
    assert again["trust_radius_ini"] == pytest.approx(0.125)
    assert "trust_radius_ini 0.5" not in action and "trust_radius_ini None -> 0.25" in action
    # the geometry the retry starts from: the failed run's last one, not the input's
    start = Cell(lattice=((-2.715, 0.0, 2.715), (0.0, 2.715, 2.715), (-2.715, 2.715, 0.0)), species=("Si", "Si"),
                 frac_coords=((0.0, 0.0, 0.0), (0.27, 0.25, 0.24)))
    last = last_geometry(FIX / "relax_failed/pw_relax_failed.out", start)
    assert last.frac_coords != start.frac_coords
    text = qi.pw_input(last, calculation="vc-relax", proto=proto, cutoffs={"ecutwfc_ry": 20, "ecutrho_ry": 160},
                       kgrid=(2, 2, 2), pseudo_dir="p", pseudos={"Si": "Si.UPF"},
                       extra_ions={"trust_radius_ini": new["trust_radius_ini"]})
    assert re.search(r"trust_radius_ini = 0\.25", text)


@pytest.mark.parametrize("name", ["ph_symmetry.out", "ph_symmetry_search_sym_false.out", "pw_lone_vector.out"])
def test_real_symmetry_failures_are_classified_and_not_retried(name):
    code, reason = qo.classify((FIX / "symmetry" / name).read_text())
    assert code == "symmetry", reason
    assert ("incompatible FFT grid" in reason) or ("lone vector" in reason)
    proto = get_protocol("fast", {})
    assert apply_handler(ph_handlers(proto), code, ph_settings(proto)) is None
    assert apply_handler(pw_handlers(proto), code, pw_settings(proto)) is None
