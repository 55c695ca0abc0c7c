"""What to do when a QE run fails in a recoverable way: one table, error code -> action.

Each action turns the current settings of a run into safer ones; its factors come from the
protocol (``retry_*`` keys of ``protocols.yaml``), the number of retries from ``scf_retries`` /
``ph_retries``. The error codes are those of :func:`tcflow.dft.outputs.classify` (numbered in
:data:`tcflow.dft.outputs.ERROR_NUMBERS`). A code with no entry is not retried.

Settings of a pw.x run: ``mixing_beta``, ``electron_maxstep``, optionally ``diagonalization``,
``trust_radius_ini`` (bohr) and ``from_last_geometry`` (a vc-relax retried from the last geometry
of the failed attempt, with a fresh BFGS history); of a ph.x run: ``alpha_mix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Action:
    """``describe``: one line for the record; ``apply(settings, protocol) -> new settings``."""

    describe: str
    apply: Callable[[Mapping[str, Any], Mapping[str, Any]], dict]


def _less_mixing(s, p):
    return dict(s, mixing_beta=s["mixing_beta"] * float(p["retry_mixing_factor"]),
                electron_maxstep=int(s["electron_maxstep"] * int(p["retry_maxstep_factor"])))


def _less_ph_mixing(s, p):
    return dict(s, alpha_mix=s["alpha_mix"] * float(p["retry_mixing_factor"]))


#: QE's default initial BFGS trust radius (bohr), &ions trust_radius_ini
TRUST_RADIUS_INI_BOHR = 0.5


def _fresh_bfgs(s, p):
    return dict(s, from_last_geometry=True,
                trust_radius_ini=s.get("trust_radius_ini", TRUST_RADIUS_INI_BOHR) * float(p["retry_mixing_factor"]))


PW_ACTIONS: dict[str, Action] = {
    "scf_not_converged": Action("mixing_beta x retry_mixing_factor, electron_maxstep x retry_maxstep_factor",
                                _less_mixing),
    "diagonalization": Action("diagonalization -> cg", lambda s, p: dict(s, diagonalization="cg")),
    "relax_failed": Action("vc-relax restarted from its last geometry with a fresh BFGS history, "
                           "trust_radius_ini x retry_mixing_factor", _fresh_bfgs),
}
PH_ACTIONS: dict[str, Action] = {
    "ph_not_converged": Action("alpha_mix x retry_mixing_factor, restart at the unfinished q-point",
                               _less_ph_mixing),
}
#: Not retried, on measurement: ``symmetry`` (a real ph.x "scale_sym_ops: incompatible FFT grid",
#: tests/dft/fixtures/symmetry/, fails the same with search_sym = .false.; its cause is the scf's
#: symmetry set, which tcflow's inputs leave to QE), ``relax_not_converged`` (the same geometry
#: again would not help), ``qe_error``.


@dataclass(frozen=True)
class Handlers:
    """The actions for one code, with the protocol that supplies their factors."""

    actions: Mapping[str, Action]
    protocol: Mapping[str, Any]


def pw_handlers(protocol: Mapping[str, Any]) -> Handlers:
    return Handlers(PW_ACTIONS, protocol)


def ph_handlers(protocol: Mapping[str, Any]) -> Handlers:
    return Handlers(PH_ACTIONS, protocol)


def pw_settings(protocol: Mapping[str, Any]) -> dict:
    """The first attempt's pw.x settings: the protocol's own."""
    return {"mixing_beta": float(protocol["mixing_beta"]), "electron_maxstep": int(protocol["electron_maxstep"])}


def ph_settings(protocol: Mapping[str, Any]) -> dict:
    """The first attempt's ph.x settings: the protocol's own."""
    return {"alpha_mix": float(protocol["alpha_mix_ph"])}


def apply_handler(handlers: Handlers, code: str, settings: Mapping[str, Any]) -> tuple[dict, str] | None:
    """(new settings, one-line description of what changed), or None when ``code`` has no action."""
    action = handlers.actions.get(code)
    if action is None:
        return None
    new = action.apply(settings, handlers.protocol)
    changed = ", ".join(f"{k} {settings.get(k)!r} -> {v!r}" for k, v in new.items() if settings.get(k) != v)
    return new, f"{code}: {changed}"
