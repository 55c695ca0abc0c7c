"""The phonon dispersion along a standard high-symmetry path: one extra matdyn.x run from the
candidate's q2r force constants, for the report (rule ``dft_dispersion``, not part of the chain:
``tc.json`` does not wait for it, and its failure is recorded, never raised).

Runs for a candidate whose ``tc.json`` has status ``ok`` or ``dynamically_unstable`` (force
constants exist; the imaginary branches are what a user wants to see), else it records that
status, ``skipped``. The record ``dispersion.json`` holds the path (``x`` in 1/Å, 2π included; the
labelled ``ticks``; the segment ``starts``) next to matdyn's ``matdyn.freq`` in the directory.
"""

from __future__ import annotations

from tcflow.dft import inputs as qi
from tcflow.dft import outputs as qo
from tcflow.dft.runner import run_qe
from tcflow.dft.stage import OK, StepContext, copy_files, failed
from tcflow.io import read_json

#: tc.json statuses of a candidate whose q2r force constants exist
WITH_FORCE_CONSTANTS = (OK, "dynamically_unstable")


def dispersion(ctx: StepContext) -> dict:
    """matdyn.x along the path of :func:`tcflow.dft.kpath.high_symmetry_path` (crystal
    coordinates of the relaxed cell's reciprocal lattice); frequencies in cm⁻¹."""
    from pymatgen.core import Structure

    tc = read_json(ctx.cand / "tc.json")
    if tc["status"] not in WITH_FORCE_CONSTANTS:
        return {"status": tc["status"], "skipped": True,
                "reason": f"DFT status {tc['status']!r} (results/dft/{ctx.cid}/tc.json): no dispersion"}
    from tcflow.dft.kpath import LINE_DENSITY, high_symmetry_path

    structure = Structure.from_dict(read_json(ctx.dir("relax") / "relaxed.json"))
    try:
        path = high_symmetry_path(structure)
    except ValueError as exc:  # no mapping onto the standard primitive cell: recorded, not raised
        return {"status": f"failed: path: {exc}"}
    copy_files([ctx.dir("q2r") / qi.FLFRC], ctx.out)
    text = qi.matdyn_path_input(structure, ctx.proto, path["frac"].tolist(), masses=ctx.st.get("masses_amu"))
    res = run_qe("matdyn.x", text, ctx.out, "matdyn", ctx.launch)
    if not res.ok:
        return {"status": failed(res, "matdyn.x"), "wall_s": res.wall_s}
    qpts, freqs = qo.parse_matdyn_freq(ctx.out / qi.FLFRQ)
    if len(qpts) != len(path["x"]):
        return {"status": f"failed: matdyn.x: {len(qpts)} q-points in {qi.FLFRQ}, {len(path['x'])} asked for",
                "wall_s": res.wall_s}
    (ctx.out / qi.FLFRC).unlink()  # a copy of q2r's; the force constants stay there
    return {"status": OK, "wall_s": res.wall_s, "flfrq": qi.FLFRQ, "n_q": len(qpts),
            "line_density_per_A": LINE_DENSITY, "path_type": "setyawan_curtarolo (pymatgen HighSymmKpath)",
            "x_per_A": path["x"].tolist(), "ticks": path["ticks"], "starts": path["starts"],
            "min_freq_cm1": min(min(f) for f in freqs), "max_freq_cm1": max(max(f) for f in freqs)}
