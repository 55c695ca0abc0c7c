"""QE el-ph protocols (``protocols.yaml``): pick a variant, apply per-run overrides, and derive the
grids (k for vc-relax, dense la2F scf, coarse scf; q for ph.x) and plane-wave cutoffs of one structure.

Units follow the key names: ``_ry`` Rydberg, ``_A`` angstrom, ``_eV``, ``_THz``, ``_cm1``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

PROTOCOLS_FILE = Path(__file__).with_name("protocols.yaml")
#: type and range of every protocol key (JSON Schema draft 2020-12)
PROTOCOL_SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema" / "protocol.schema.json"
QGRID_RULES = ("smallest_factor", "divisor")
#: broadening rules that need a second dense la2F grid (second_dense_kgrid_factor)
SECOND_GRID_RULES = ("two_grids", "dos_rescaled")
#: smallest prime treated as "awkward" by bump_prime_kgrid (2 divides everything already)
SMALLEST_BUMPED_PRIME = 3


class ProtocolError(ValueError):
    """Unknown protocol name, unknown override key or inconsistent value (one line)."""


def load_protocols(path: str | Path = PROTOCOLS_FILE) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def protocol_names() -> list[str]:
    return sorted(load_protocols()["variants"])


def get_protocol(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full key set of protocol ``name`` with ``overrides`` applied.

    Raises :class:`ProtocolError` naming the protocol or the offending override key.
    """
    data = load_protocols()
    if name not in data["variants"]:
        raise ProtocolError(f"dft.protocol: unknown protocol {name!r} (known: {', '.join(sorted(data['variants']))})")
    proto = dict(data["defaults"])
    variant = dict(data["variants"][name] or {})
    base = variant.pop("base", None)  # a variant may start from another (one level)
    if base is not None:
        if base not in data["variants"] or "base" in (data["variants"][base] or {}):
            raise ProtocolError(f"{PROTOCOLS_FILE.name}: variants.{name}.base: {base!r} is not a variant without a base")
        proto.update(data["variants"][base] or {})
    proto.update(variant)
    for key, value in (overrides or {}).items():
        if key not in proto:
            raise ProtocolError(f"dft.overrides.{key}: not a protocol key")
        proto[key] = value
    check_protocol(proto, name, overrides or {})
    rule = proto["broadening_rule"]
    if rule in SECOND_GRID_RULES and proto["second_dense_kgrid_factor"] is None:
        key = "broadening_rule" if "broadening_rule" in (overrides or {}) else "second_dense_kgrid_factor"
        where = f"dft.overrides.{key}" if key in (overrides or {}) else f"{PROTOCOLS_FILE.name}: variants.{name}.{key}"
        raise ProtocolError(f"{where}: broadening_rule {rule} needs a second dense grid "
                            "(second_dense_kgrid_factor, e.g. 1.5)")
    if rule in SECOND_GRID_RULES and proto["tc_source"] != "matdyn":
        raise ProtocolError(f"dft.protocol {name}: broadening_rule {rule} works on matdyn's lambda(sigma) "
                            f"and alpha2F; tc_source must be matdyn, not {proto['tc_source']!r}")
    proto["name"] = name
    return proto


def check_protocol(proto: Mapping[str, Any], name: str, overrides: Mapping[str, Any]) -> None:
    """Check the merged protocol against :data:`PROTOCOL_SCHEMA`; raise :class:`ProtocolError`
    with one line naming the first wrong key: ``dft.overrides.<key>`` when the value came from
    the config, else the variant's key in protocols.yaml."""
    import json

    import jsonschema

    with open(PROTOCOL_SCHEMA, encoding="utf-8") as fh:
        schema = json.load(fh)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(dict(proto)))
    if not errors:
        return
    order = list(schema["properties"])

    def key_of(err) -> str:
        return str(err.absolute_path[0]) if err.absolute_path else ""

    err = min(errors, key=lambda e: order.index(key_of(e)) if key_of(e) in order else -1)
    key = key_of(err)
    where = f"dft.overrides.{key}" if key in overrides else f"{PROTOCOLS_FILE.name}: variants.{name}.{key}"
    raise ProtocolError(f"{where}: {err.message.splitlines()[0]}")


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(math.isqrt(n)) + 1))


def smallest_factor(n: int) -> int:
    """Smallest divisor > 1 of ``n`` (1 for n = 1)."""
    if n <= 1:
        return 1
    return next(d for d in range(2, n + 1) if n % d == 0)


def kgrid_from_length(lattice_lengths_A: Sequence[float], length_A: float) -> list[int]:
    """k-grid from a JARVIS-style k-point length: n_i = max(1, round(L / |a_i|))."""
    return [max(1, int(round(length_A / a))) for a in lattice_lengths_A]


def has_second_grid(proto: Mapping[str, Any]) -> bool:
    """Whether the protocol has a second la2F grid (the scf_fit2 step)."""
    return proto.get("second_dense_kgrid_factor") is not None


def needs_elph2(proto: Mapping[str, Any]) -> bool:
    """Whether the el-ph coefficients are recomputed on the second grid (elph2 -> q2r2 -> matdyn2,
    and ph keeps its dvscf for them): every second-grid protocol but ``dos_rescaled``, which needs
    only that grid's band energies."""
    return has_second_grid(proto) and proto.get("broadening_rule") != "dos_rescaled"


def qgrid_from_length(proto: Mapping[str, Any], lattice_lengths_A: Sequence[float], n_atoms: int) -> list[int]:
    """q-grid from a q-point length: q_i = max(1, round(L / |a_i|)), raised to ``qgrid_min`` in
    each direction for cells of at most ``qgrid_min_max_atoms`` atoms."""
    q = kgrid_from_length(lattice_lengths_A, float(proto["qpoint_length_A"]))
    if n_atoms <= int(proto["qgrid_min_max_atoms"]):
        q = [max(n, int(proto["qgrid_min"])) for n in q]
    return q


def derive_grids(proto: Mapping[str, Any], lattice_lengths_A: Sequence[float], n_atoms: int = 1) -> dict[str, list[int]]:
    """k- and q-grids for a cell of ``n_atoms`` atoms with the given lattice vector lengths (Å).

    Returns ``{"k_dense", "k_scf", "k_relax", "q"}``, plus ``"k_dense2"`` when the protocol has a
    second la2F grid (``second_dense_kgrid_factor``): ``k_dense`` (la2F scf) is a multiple of
    ``k_scf`` (scf_kgrid_divisor), ``k_scf`` and ``k_dense2`` multiples of ``q``.

    With ``qpoint_length_A`` set the q-grid comes first (:func:`qgrid_from_length`) and
    ``k_scf = scf_k_per_q x q``; otherwise the dense grid comes from ``kgrid`` /
    ``kpoint_length_A`` and q from ``qgrid`` / ``qgrid_rule``.
    """
    div = int(proto["scf_kgrid_divisor"])
    if div < 1:
        raise ProtocolError(f"dft.overrides.scf_kgrid_divisor: must be >= 1, got {div}")
    if proto["qpoint_length_A"] is not None:
        q = ([int(n) for n in proto["qgrid"]] if proto["qgrid"] is not None
             else qgrid_from_length(proto, lattice_lengths_A, n_atoms))
        coarse = [n * int(proto["scf_k_per_q"]) for n in q]
    else:
        if proto["kgrid"] is not None:
            dense = [int(n) for n in proto["kgrid"]]
        else:
            dense = kgrid_from_length(lattice_lengths_A, float(proto["kpoint_length_A"]))
        if proto["bump_prime_kgrid"]:
            dense = [n + 1 if n >= SMALLEST_BUMPED_PRIME and _is_prime(n) else n for n in dense]
        coarse = [max(1, math.ceil(n / div)) for n in dense]
        if proto["qgrid"] is not None:
            q = [int(n) for n in proto["qgrid"]]
        elif proto["qgrid_rule"] == "smallest_factor":
            q = [smallest_factor(n) for n in coarse]
        else:
            q = [max(1, int(round(n / int(proto["qgrid_divisor"])))) for n in coarse]
        coarse = [math.ceil(c / qi) * qi for c, qi in zip(coarse, q)]  # commensurate with q
    dense = [c * div for c in coarse]
    rdiv = int(proto["relax_kgrid_divisor"])
    relax = [max(1, math.ceil(n / rdiv)) for n in dense]
    grids = {"k_dense": dense, "k_scf": coarse, "k_relax": relax, "q": q}
    factor = proto["second_dense_kgrid_factor"]
    if factor is not None:  # ph.x's el-ph interpolation needs every q-point on the dense grid
        # rounded up (past float noise: 1.3333 x 24 / 4 -> 8) to a multiple of q; factor > 1: denser
        grids["k_dense2"] = [math.ceil(round(float(factor) * d / qi, 6)) * qi for d, qi in zip(dense, q)]
    return grids


def derive_cutoffs(proto: Mapping[str, Any], elements: Sequence[str],
                   family: Mapping[str, Mapping[str, Any]] | None) -> dict[str, float]:
    """Plane-wave cutoffs (Ry): the protocol's, or the max over ``elements`` of the family JSON's
    recommended ``ecutwfc_ry`` / ``ecutrho_ry``."""
    wfc, rho = proto["ecutwfc_ry"], proto["ecutrho_ry"]
    if wfc is None or rho is None:
        if wfc is None and not family:
            raise ProtocolError("dft: ecutwfc_ry is null and the pseudopotential directory has no family JSON with cutoffs")
        fam_wfc = max(float(family[e]["ecutwfc_ry"]) for e in elements) if family else None
        fam_rho = max(float(family[e]["ecutrho_ry"]) for e in elements) if family else None
        if wfc is None:
            wfc = fam_wfc
            rho = rho if rho is not None else fam_rho
        elif rho is None:
            rho = fam_rho if fam_rho is not None and proto["ecutwfc_ry"] is None else 4.0 * float(wfc)
    return {"ecutwfc_ry": float(wfc), "ecutrho_ry": float(rho)}
