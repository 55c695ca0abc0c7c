"""``tc.json``: the candidate's result from every step's record, and ``metadata.json``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

from tcflow.dft.chain import BY_NAME_RECORD
from tcflow.dft.eliashberg import allen_dynes_f1f2, choose_broadening, choose_broadening_two_grids, tc_table
from tcflow.dft.stage import OK
from tcflow.io import atomic_write_json, read_json

#: formulas ``tc_K`` can name (protocol key ``tc_formula``) -> the tc.json key holding their value
TC_FORMULAS = {"mcmillan_allen_dynes": "tc_mcmillan_allen_dynes_K", "allen_dynes_f1f2": "tc_allen_dynes_f1f2_K",
               "eliashberg": "tc_eliashberg_K"}
DEFAULT_TC_FORMULA = "mcmillan_allen_dynes"  # the paper's; records written before tc_formula existed


def a2f_tcs(matdyn_dir: Path, index: int, lam: float | None, omega_log_K: float | None, tc_mad_K: float | None,
            mustar: float, scale: float = 1.0) -> dict[str, Any]:
    """Beyond McMillan for broadening ``index`` (0-based), from matdyn's ``a2F.dos<index+1>``
    (times ``scale``: ``dos_rescaled``'s N(E_F) ratio):
    the α²F moments (``a2f``: λ, ω_log, ω̄2 in K), the Allen-Dynes f1 f2 Tc (K) — the
    McMillan-Allen-Dynes ``tc_mad_K`` of (λ, ω_log) times f1(λ) f2(λ, ω̄2/ω_log of α²F) — and the
    isotropic Migdal-Eliashberg Tc (K) of that α²F. Unusable input gives None values and ``a2f_error``."""
    from tcflow.dft import outputs as qo
    from tcflow.dft.migdal import RY_TO_K, SpectrumError, eliashberg_tc, moments

    path = Path(matdyn_dir) / f"a2F.dos{index + 1}"
    out: dict[str, Any] = {"a2f": None, "allen_dynes_f1": None, "allen_dynes_f2": None,
                           "tc_allen_dynes_f1f2_K": None, "tc_eliashberg_K": None}
    try:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (matdyn.x writes one a2F.dos<i> per broadening)")
        a2f = qo.parse_a2f_dos(path)
        # bins at ω <= 0 hold the small imaginary acoustic frequencies near Γ that the stability
        # gate tolerates (fcc Pb, converged: -6 cm^-1): not phonons, left out of every integral
        pairs = [(x * RY_TO_K, f) for x, f in zip(a2f["omega_ry"], a2f["a2f"]) if x > 0]
        w, f = [p[0] for p in pairs], [p[1] * scale for p in pairs]
        mom = moments(w, f)
        out["a2f"] = {"file": f"{path.parent.name}/{path.name}", **mom,
                      "nonpositive_bins_dropped": len(a2f["omega_ry"]) - len(pairs),
                      **({"scale": scale} if scale != 1.0 else {})}
        if mom["omega_log_K"] is None or mom["omega2_K"] is None:
            raise SpectrumError(f"{path}: lambda of alpha2F is {mom['lambda']:.4g} (<= 0)")
        if lam is not None and omega_log_K is not None and tc_mad_K is not None:
            f1, f2 = allen_dynes_f1f2(lam, mom["omega_log_K"], mom["omega2_K"], mustar)
            out.update(allen_dynes_f1=f1, allen_dynes_f2=f2, tc_allen_dynes_f1f2_K=f1 * f2 * tc_mad_K)
        me = eliashberg_tc(w, f, mustar, t_guess_K=out["tc_allen_dynes_f1f2_K"] or None)
        out["tc_eliashberg_K"] = me["tc_K"]
        out["eliashberg"] = {k: me[k] for k in ("below_K", "n_matsubara", "cutoff_K", "mustar_cutoff")}
    except (OSError, ValueError, ArithmeticError) as exc:   # SpectrumError is a ValueError
        out["a2f_error"] = (exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)).splitlines()[0]
    return out


def dense2_dos(d: Path, sigmas: list[float]) -> list[float]:
    """N(E_F) (states/spin/Ry/cell) of the second dense grid at each el-ph broadening, from
    ``scf_fit2``'s a2Fsave as ph.x's elphsum computes it (:mod:`tcflow.dft.dos`)."""
    from tcflow.dft import outputs as qo
    from tcflow.dft.dos import dos_at_fermi

    rec = read_json(d / "scf_fit2" / BY_NAME_RECORD["scf_fit2"])
    nel = rec.get("n_electrons")
    if nel is None:  # records written before pw records kept it
        nel = qo.n_electrons((d / "scf_fit2" / "scf_fit2.out").read_text())
    if nel is None:
        raise ValueError(f"{d / 'scf_fit2'}: no electron count in the record or scf_fit2.out")
    a2f = qo.parse_a2fsave(d / "scf_fit2" / rec["a2fsave"])
    return [dos_at_fermi(a2f["eig_ry"], a2f["weights"], nel, s)[1] for s in sigmas]


def _pick_broadening(proto: Mapping[str, Any], grids: Mapping[str, Any], d: Path, md, lx, md2, rescaled):
    """The protocol's broadening choice: (rule, the rows reported, their index, converged, the
    rows' source, the α²F directory, the rule in words, the choice's record or None); None when
    the rule needs the second grid and it has no table."""
    rule = proto.get("broadening_rule", "successive")
    tol = float(proto["lambda_conv_tol"])
    text = f"first broadening whose lambda differs from the next by <= {tol} (relative); else the last"
    if rule == "dos_rescaled":
        if rescaled is None:
            return None
        i, converged = choose_broadening([r["lambda"] for r in rescaled], tol)
        text = (f"alpha2F of k-grid {grids['k_dense']} times N(E_F) of k-grid {grids['k_dense2']} over its own; "
                + text)
        return (rule, rescaled, i, converged, "matdyn_dos_rescaled", d / "matdyn", text,
                {"kgrids": [grids["k_dense"], grids["k_dense2"]], "scale": [r["scale"] for r in rescaled]})
    if rule != "two_grids":
        src = proto["tc_source"]
        rows = md if src == "matdyn" else lx
        i, converged = choose_broadening([r["lambda"] for r in rows], tol)
        return rule, rows, i, converged, src, d / "matdyn", text, None
    if md2 is None:
        return None
    choice = choose_broadening_two_grids([r["sigma_ry"] for r in md], [r["lambda"] for r in md],
                                         [r["lambda"] for r in md2], tol, nef_coarse=[r.get("n_ef") for r in md],
                                         nef_dense=[r.get("n_ef") for r in md2])
    converged = choice["converged"]
    i = choice["index"] if converged else choice["closest_index"]
    i = len(md2) - 1 if i is None else i
    text = (f"two dense k-grids {grids['k_dense']} and {grids['k_dense2']}: {choice['reason']}; the values are "
            "the denser grid's" + ("" if converged else " at the closest agreement (not converged)"))
    return (rule, md2, i, converged, "matdyn_dense2", d / "matdyn2", text,
            {**choice, "kgrids": [grids["k_dense"], grids["k_dense2"]]})


def _rescaled_table(matdyn_rows: list[dict], n_dense: list[float], mustar: float) -> list[dict]:
    """matdyn's λ(σ) times N_dense(σ)/N(σ) (ω_log unchanged), with its McMillan-Allen-Dynes Tc."""
    rows = []
    for r, n2 in zip(matdyn_rows, n_dense):
        scale = n2 / r["n_ef"] if r.get("n_ef") and r.get("lambda") is not None else None
        rows.append({**r, "lambda": None if scale is None else r["lambda"] * scale, "n_ef": n2, "scale": scale})
    return tc_table(rows, mustar)


def step_tc(cid: str, cand_dir, out_json, mustar_override: float | None = None) -> dict:
    """Combine the step records into ``tc.json``: status, chosen lambda / omega_log / Tc, the
    per-broadening table (matdyn a2F and lambda.x), N(E_F), min frequency, symmetry, wall times."""
    d = Path(cand_dir)
    recs = {k: read_json(d / k / v) for k, v in BY_NAME_RECORD.items() if k != "ph_q" and (d / k / v).is_file()}
    status = next((r["status"] for r in recs.values() if r["status"] != OK), OK)
    st = recs["structure"]
    out: dict[str, Any] = {
        "cid": cid, "status": status, "lambda": None, "omega_log_K": None, "tc_K": None, "n_ef": None,
        "sigma_ry": None, "min_freq_cm1": None, "table": [],
        "wall_s": {k: r.get("wall_s") for k, r in recs.items() if r.get("wall_s") is not None},
    }
    out["wall_s_total"] = sum(out["wall_s"].values())
    if "symmetry_input" in st:
        out["spacegroup_input"] = st["symmetry_input"]
    if "symmetry_relaxed" in recs["relax"]:
        out["spacegroup"] = recs["relax"]["symmetry_relaxed"]
    for key in ("gap_eV", "n_crossing_bands", "fermi_energy_eV"):
        if key in recs["scf_fit"]:
            out[key] = recs["scf_fit"][key]
    if st["status"] == OK:
        out.update(protocol=st["protocol"]["name"], grids=st["grids"], cutoffs=st["cutoffs"], pseudos=st["pseudos"])
    n_irr_q = recs["ph"].get("n_irr_q") or recs.get("ph_init", {}).get("n_irr_q")
    if n_irr_q:
        out["n_irr_q"] = n_irr_q
        out["ph_jobs"] = recs["ph"].get("n_jobs")
    if status == OK and not recs["matdyn"]["dynamically_stable"]:
        out["status"] = status = "dynamically_unstable"
    if recs["matdyn"]["status"] == OK and recs["lambda"]["status"] == OK:
        proto = st["protocol"]
        mustar = float(proto["mustar"] if mustar_override is None else mustar_override)
        md = tc_table(recs["matdyn"]["lambda_table"], mustar)
        lx = tc_table(recs["lambda"]["lambda_table"], mustar)
        md2 = (tc_table(recs["matdyn2"]["lambda_table"], mustar)
               if recs.get("matdyn2", {}).get("status") == OK else None)
        rescaled = (_rescaled_table(recs["matdyn"]["lambda_table"],
                                    dense2_dos(d, [r["sigma_ry"] for r in recs["matdyn"]["lambda_table"]]), mustar)
                    if proto.get("broadening_rule") == "dos_rescaled" and recs.get("scf_fit2", {}).get("status") == OK
                    else None)
        out["table"] = [{"sigma_ry": a["sigma_ry"],
                         "matdyn": {k: a[k] for k in ("lambda", "omega_log_K", "n_ef", "tc_K")},
                         "lambda_x": {k: b[k] for k in ("lambda", "omega_log_K", "n_ef", "tc_K", "tc_K_lambda_x")}}
                        for a, b in zip(md, lx)]
        if md2 is not None:
            for row, c in zip(out["table"], md2):
                row["matdyn_dense2"] = {k: c[k] for k in ("lambda", "omega_log_K", "n_ef", "tc_K")}
        if rescaled is not None:
            for row, c in zip(out["table"], rescaled):
                row["matdyn_dos_rescaled"] = {k: c[k] for k in ("lambda", "omega_log_K", "n_ef", "tc_K", "scale")}
        pick = _pick_broadening(proto, st["grids"], d, md, lx, md2, rescaled)
        if pick is None:  # the second grid failed: its status is already the candidate's
            atomic_write_json(out_json, out)
            return out
        rule, rows, i, converged, src, a2f_dir, rule_text, choice = pick
        if choice is not None:
            out["broadening_choice"] = choice
        out.update({"lambda": rows[i]["lambda"], "omega_log_K": rows[i]["omega_log_K"],
                    "n_ef": rows[i]["n_ef"], "sigma_ry": rows[i]["sigma_ry"], "broadening_index": i,
                    "broadening_converged": converged, "converged": converged, "broadening_rule": rule,
                    "tc_source": src, "mustar": mustar, "selection_rule": rule_text,
                    "min_freq_cm1": recs["matdyn"]["min_freq_cm1"],
                    "tc_mcmillan_allen_dynes_K": rows[i]["tc_K"]})
        out.update(a2f_tcs(a2f_dir, i, rows[i]["lambda"], rows[i]["omega_log_K"], rows[i]["tc_K"], mustar,
                           scale=rows[i].get("scale") or 1.0))
        formula = proto.get("tc_formula", DEFAULT_TC_FORMULA)
        out.update(tc_formula=formula, tc_K=out[TC_FORMULAS[formula]])
    atomic_write_json(out_json, out)
    return out


def finish_candidate(cid: str, cand_dir, tc_json, meta_json, cfg: Mapping[str, Any], seed: int | None = None,
                     inputs=()) -> dict:
    """Write ``tc.json`` and ``metadata.json``; then, if ``dft.cleanup`` asks for it, remove the
    ph.x work directories (wavefunction copies and restart data) and the saved dvscf of a
    two-grid protocol, never before tc.json."""
    from tcflow.provenance import run_metadata

    d = Path(cand_dir)
    tc = step_tc(cid, d, tc_json)
    qe = next((r.get("qe_version") for r in (read_json(p) for p in sorted(d.glob("*/*.json")))
               if isinstance(r, dict) and r.get("qe_version")), None)
    settings = {k: cfg[k] for k in ("protocol", "overrides", "pseudo_map") if k in cfg}
    atomic_write_json(meta_json, run_metadata("dft", settings, seed, [p for p in inputs if Path(p).exists()],
                                              candidate=cid, quantum_espresso=qe, status=tc["status"]))
    if cfg.get("cleanup"):  # (ph/dvscf: elph2's input, gigabytes for large cells; a rerun of elph2 then needs ph again)
        for work in [*sorted((d / "ph_q").glob("*.work")), *sorted((d / "ph_q").glob("*/dvscf")), d / "ph.work",
                     d / "ph" / "dvscf"]:
            shutil.rmtree(work, ignore_errors=True)
    return tc
