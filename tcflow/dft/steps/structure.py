"""The structure step: read, standardise (spglib) and check a candidate; resolve the protocol,
pseudopotentials, cutoffs and grids every later step uses."""

from __future__ import annotations

from pathlib import Path

from tcflow.dft.cell import element_masses
from tcflow.dft.protocol import derive_cutoffs, derive_grids, get_protocol
from tcflow.dft.pseudos import MissingPseudopotential, load_family, resolve_pseudos
from tcflow.dft.stage import OK, StepContext
from tcflow.dft.symmetry import standardise
from tcflow.io import atomic_write_text


def save_structure(structure, json_path: Path) -> None:
    """Keep the exact lattice matrix (JSON), not only a CIF: QE finds symmetry operations only
    in spglib's standard orientation, which a CIF (lengths and angles) does not preserve."""
    atomic_write_text(json_path, structure.to_json())
    atomic_write_text(json_path.with_suffix(".cif"), structure.to(fmt="cif"))


def _read(cif: Path):
    from tcflow.structures import StructureError, read_structure

    try:
        return read_structure(cif), None
    except StructureError as exc:
        return None, str(exc)


def structure(ctx: StepContext) -> dict:
    """Record of the standardised candidate, or ``error: ...`` for a structure that cannot be used."""
    out, cfg = ctx.out, ctx.cfg
    cif = Path(ctx.inputs["cif"])
    proto = get_protocol(cfg["protocol"], cfg.get("overrides"))  # a config error fails loudly
    s, why = _read(cif)
    if s is None:
        return {"status": f"error: malformed CIF {why}"}
    atomic_write_text(out / "input.cif", cif.read_text())
    try:
        sym_in = standardise(s, proto["symprec_A"], proto["angle_tolerance_deg"])
    except Exception as exc:  # spglib raises several types on degenerate cells
        return {"status": f"error: symmetry analysis failed for {cif}: {exc}"}
    std = sym_in.structure
    elements = sorted({site.specie.symbol for site in std})
    pseudo_dir = ctx.pseudo_dir
    try:
        pseudos = resolve_pseudos(elements, pseudo_dir, cfg.get("pseudo_map"))
    except MissingPseudopotential as exc:
        return {"status": f"error: no pseudopotential for {exc.element}", "detail": str(exc),
                "symmetry_input": sym_in.record()}
    cutoffs = derive_cutoffs(proto, elements, load_family(pseudo_dir))
    grids = derive_grids(proto, std.lattice.abc, len(std))
    save_structure(std, out / "standard.json")
    return {
        "status": OK, "protocol": proto, "pseudo_dir": str(Path(pseudo_dir).resolve()), "pseudos": pseudos,
        "cutoffs": cutoffs, "grids": grids, "elements": elements, "masses_amu": element_masses(elements),
        "symmetry_input": {**sym_in.record(), "natoms_input": len(s)},
    }
