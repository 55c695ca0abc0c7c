"""What to do when a QE run fails in a recoverable way: one table, error code -> action.

Each action turns the current settings of a run into safer ones; its factors come from the
protocol (``retry_*`` keys of ``protocols.yaml``), the number of retries from ``scf_retries`` /
``ph_retries``. The error codes are those of :func:`tcflow.dft.outputs.classify` (numbered in
:data:`tcflow.dft.outputs.ERROR_NUMBERS`). A code with no entry is not retried.

Settings of a pw.x run: ``mixing_beta``, ``electron_maxstep``, optionally ``diagonalization``;
of a ph.x run: ``alpha_mix``, optionally ``search_sym``.
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


PW_ACTIONS: dict[str, Action] = {
    "scf_not_converged": Action("mixing_beta x retry_mixing_factor, electron_maxstep x retry_maxstep_factor",
                                _less_mixing),
    "diagonalization": Action("diagonalization -> cg", lambda s, p: dict(s, diagonalization="cg")),
}
PH_ACTIONS: dict[str, Action] = {
    "ph_not_converged": Action("alpha_mix x retry_mixing_factor, restart at the unfinished q-point",
                               _less_ph_mixing),
    "symmetry": Action("search_sym -> .false.", lambda s, p: dict(s, search_sym=False)),
}


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
