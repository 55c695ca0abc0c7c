"""Quantum ESPRESSO input writers (text only: no running, no parsing).

File names that the pipeline depends on are fixed here, not user keys: :data:`PREFIX`,
:data:`OUTDIR`, :data:`FILDYN`, :data:`FLFRC`, :data:`FLFRQ`, :data:`FLDOS`, :data:`FILDVSCF`.
Cell in Å (``CELL_PARAMETERS angstrom``, ``ibrav = 0``), positions in crystal coordinates,
energies in Ry, frequencies in THz (lambda.x).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tcflow.dft.cell import Cell, as_cell, element_masses

PREFIX = "tcflow"
OUTDIR = "out"
FILDYN = "dyn"
FILDVSCF = "dvscf"
FLFRC = "ifc.fc"
FLFRQ = "matdyn.freq"
FLDOS = "phonon.dos"
ELPH_DIR = "elph_dir"
#: pw.x smearing names accepted in protocols
SMEARINGS = {"mv": "mv", "mp": "mp", "gaussian": "gaussian", "fd": "fd"}


def fortran_value(v: Any) -> str:
    if isinstance(v, bool):
        return ".true." if v else ".false."
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v).replace("e", "d") if "e" in repr(v) else repr(v)
    return "'" + str(v) + "'"


def namelist(name: str, params: Mapping[str, Any]) -> str:
    """One Fortran namelist block; ``None`` values are left out."""
    lines = [f" &{name}"]
    lines += [f"    {k} = {fortran_value(v)}" for k, v in params.items() if v is not None]
    lines.append(" /")
    return "\n".join(lines) + "\n"


def _masses(cell: Cell, masses: Mapping[str, float] | None) -> dict[str, float]:
    """Element -> mass (amu) in QE's species order; pymatgen's values when ``masses`` is None."""
    if masses is None:
        masses = element_masses(cell.kinds)
    missing = [el for el in cell.kinds if el not in masses]
    if missing:
        raise KeyError(f"no atomic mass for {', '.join(missing)}")
    return {el: float(masses[el]) for el in cell.kinds}


def pw_input(structure, *, calculation: str, proto: Mapping[str, Any], cutoffs: Mapping[str, float],
             kgrid: Sequence[int], pseudo_dir: str, pseudos: Mapping[str, str], la2f: bool = False,
             max_seconds: float | None = None, extra_electrons: Mapping[str, Any] | None = None,
             extra_ions: Mapping[str, Any] | None = None, masses: Mapping[str, float] | None = None) -> str:
    """pw.x input for ``calculation`` in {'scf', 'vc-relax', 'relax'} on ``structure`` (a :class:`Cell` or a
    pymatgen Structure); ``masses``: element -> amu (default pymatgen's); ``extra_ions``: more
    ``&ions`` keys of a (vc-)relax (e.g. ``trust_radius_ini``, bohr). ``relax`` moves the ions in a
    fixed cell (a molecule in its box)."""
    cell = as_cell(structure)
    species = cell.kinds
    control = {
        "calculation": calculation, "prefix": PREFIX, "outdir": OUTDIR, "pseudo_dir": str(pseudo_dir),
        "tstress": True, "tprnfor": True, "max_seconds": max_seconds,
    }
    if calculation in ("vc-relax", "relax"):
        control.update(nstep=int(proto["relax_nstep"]), etot_conv_thr=float(proto["etot_conv_thr_ry"]),
                       forc_conv_thr=float(proto["forc_conv_thr_ry_bohr"]))
    system = {
        "ibrav": 0, "nat": len(cell), "ntyp": len(species),
        "ecutwfc": float(cutoffs["ecutwfc_ry"]), "ecutrho": float(cutoffs["ecutrho_ry"]),
        "occupations": proto["occupations"], "smearing": SMEARINGS[proto["smearing"]],
        "degauss": float(proto["degauss_ry"]), "la2F": True if la2f else None,
    }
    electrons = {"conv_thr": float(proto["conv_thr_ry"]), "mixing_beta": float(proto["mixing_beta"]),
                 "mixing_mode": proto["mixing_mode"], "electron_maxstep": int(proto["electron_maxstep"])}
    electrons.update(extra_electrons or {})
    text = namelist("control", control) + namelist("system", system) + namelist("electrons", electrons)
    if calculation in ("vc-relax", "relax"):
        text += namelist("ions", {"ion_dynamics": "bfgs", **(extra_ions or {})})
    if calculation == "vc-relax":
        text += namelist("cell", {"cell_dynamics": "bfgs", "press_conv_thr": float(proto["press_conv_thr_kbar"])})
    m = _masses(cell, masses)
    text += "ATOMIC_SPECIES\n" + "".join(f" {el} {m[el]:.6f} {pseudos[el]}\n" for el in species)
    text += "CELL_PARAMETERS angstrom\n" + "".join(
        " " + " ".join(f"{x:16.10f}" for x in row) + "\n" for row in cell.lattice)
    text += "ATOMIC_POSITIONS crystal\n" + "".join(
        f" {el} " + " ".join(f"{x:16.10f}" for x in xyz) + "\n" for el, xyz in zip(cell.species, cell.frac_coords))
    text += "K_POINTS automatic\n " + " ".join(str(int(n)) for n in kgrid) + " 0 0 0\n"
    return text


def ph_input(structure, *, proto: Mapping[str, Any], qgrid: Sequence[int], start_q: int | None = None,
             last_q: int | None = None, patterns_only: bool = False,
             max_seconds: float | None = None, masses: Mapping[str, float] | None = None, trans: bool = True) -> str:
    """ph.x input: ``ldisp`` on ``qgrid`` with interpolated el-ph, q-points start_q..last_q
    (1-based); ``patterns_only`` computes only the q-list and displacement patterns (GRID init);
    ``trans=False`` recomputes only the el-ph coefficients from the saved dvscf and dyn files."""
    params: dict[str, Any] = {
        "prefix": PREFIX, "outdir": OUTDIR, "fildyn": FILDYN, "fildvscf": FILDVSCF,
        "tr2_ph": float(proto["tr2_ph"]), "alpha_mix(1)": float(proto["alpha_mix_ph"]),
        "electron_phonon": "interpolated", "el_ph_sigma": float(proto["el_ph_sigma_ry"]),
        "el_ph_nsigma": int(proto["el_ph_nsigma"]), "trans": bool(trans), "ldisp": True,
        "nq1": int(qgrid[0]), "nq2": int(qgrid[1]), "nq3": int(qgrid[2]),
        "start_q": start_q, "last_q": last_q, "max_seconds": max_seconds,
    }
    if patterns_only:
        params.update(start_irr=0, last_irr=0)
    params.update(_amass(structure, masses))
    return "el-ph\n" + namelist("inputph", params)


def q2r_input(proto: Mapping[str, Any]) -> str:
    return namelist("input", {"zasr": proto["q2r_zasr"], "fildyn": FILDYN, "flfrc": FLFRC, "la2F": True})


def matdyn_input(structure, proto: Mapping[str, Any], masses: Mapping[str, float] | None = None) -> str:
    """matdyn.x: phonon DOS and a2F (``la2F``) on ``matdyn_nk``, with the acoustic sum rule."""
    nk = proto["matdyn_nk"]
    params: dict[str, Any] = {"asr": proto["matdyn_asr"], "flfrc": FLFRC, "flfrq": FLFRQ, "la2F": True,
                              "dos": True, "fldos": FLDOS, "nk1": int(nk[0]), "nk2": int(nk[1]),
                              "nk3": int(nk[2]), "ndos": int(proto["matdyn_ndos"])}
    return namelist("input", {**params, **_amass(structure, masses)})


def _amass(structure, masses: Mapping[str, float] | None) -> dict[str, float]:
    """``amass(i)`` of q2r/matdyn/ph inputs, in QE's species order."""
    return {f"amass({i})": m for i, m in enumerate(_masses(as_cell(structure), masses).values(), start=1)}


def matdyn_path_input(structure, proto: Mapping[str, Any], qpoints_crystal: Sequence[Sequence[float]],
                      masses: Mapping[str, float] | None = None) -> str:
    """matdyn.x: frequencies (``flfrq``) at explicit q-points, in crystal coordinates of the
    cell's reciprocal lattice (``q_in_cryst_coord``), with the chain's acoustic sum rule."""
    params = {"asr": proto["matdyn_asr"], "flfrc": FLFRC, "flfrq": FLFRQ, "q_in_cryst_coord": True,
              **_amass(structure, masses)}
    rows = "".join(" " + " ".join(f"{x:14.9f}" for x in q) + "\n" for q in qpoints_crystal)
    return namelist("input", params) + f"{len(qpoints_crystal)}\n" + rows


def lambda_input(qpoints: Sequence[Sequence[float]], weights: Sequence[int], *, emax_THz: float,
                 degauss_THz: float, mustar: float) -> str:
    """lambda.x input: q-points (2π/alat Cartesian) with star sizes, elph files in order."""
    lines = [f"{emax_THz:.4f} {degauss_THz:.4f} 1", f"{len(qpoints)}"]
    lines += [" ".join(f"{x:14.9f}" for x in q) + f" {float(w):8.2f}" for q, w in zip(qpoints, weights)]
    lines += [f"{ELPH_DIR}/elph.inp_lambda.{i}" for i in range(1, len(qpoints) + 1)]
    lines.append(f"{mustar:.4f}")
    return "\n".join(lines) + "\n"
