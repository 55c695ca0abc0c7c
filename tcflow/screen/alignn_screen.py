"""The paper's screen (``screen.method: alignn``), one shard: every sample of the shard gets a
row of predictions and a verdict per criterion.

Per sample, in order (cheap first; a sample failing a step is not sent through the later ones):

1. read the CIF; an unreadable file, an element without CGCNN features or overlapping atoms is a
   reason, not a crash
2. structural/compositional validity (``require_valid``) and ``max_atoms``
3. ALIGNN Tc (K) on the structure as generated (batched over the shard)
4. MLIP relaxation (``screen.mlip``: CHGNet or SevenNet; ``relax.enabled``): energy drop (eV/atom),
   final max force (eV/Å), steps, converged; an exploded or unconverged relaxation is a reason.
   Then ALIGNN Tc on the relaxed structure (batched) and the MLIP formation energy (eV/atom, on
   MP2020's corrected scale, :mod:`tcflow.screen.mlip`)
5. band gap (eV) from a gap model when one is configured; without one the criterion is deferred
   to the DFT stage's metallicity gate, and ``gap_status`` says so
6. criteria: Tc score = mean - ``tc_spread_k`` x ensemble std > ``tc_min_K`` (or >= the threshold
   calibrated on the validation split, ``tc_recall_target``: :mod:`tcflow.screen.calibrate`); E_form <
   ``eform_max_eV_atom``; gap < ``gap_max_eV`` (when predicted)
7. phonon pre-check (``phonon.enabled``) on samples passing everything else: lowest frequency
   (THz) on a q-mesh >= ``phonon.min_freq_THz``

Output: ``<shard dir>/predictions.csv`` and the relaxed structures ``<shard dir>/relaxed/<id>.cif``.
The merge (:mod:`tcflow.screen.merge`) de-duplicates, ranks and caps the survivors.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from tcflow.io import atomic_path, atomic_write_text
from tcflow.screen.graphs import GraphError, build_graph

GAP_DEFERRED = "deferred: no band-gap model configured (none works offline); the DFT stage's metallicity gate decides"
CRITERIA = ("valid", "natoms", "tc", "eform", "gap", "phonon")


def shard_rows(samples_csv, shard: int, num_shards: int):
    """The samples of one shard (row i goes to shard i mod num_shards), as a DataFrame."""
    import pandas as pd

    df = pd.read_csv(samples_csv, dtype={"id": str, "cif": str}, float_precision="round_trip")
    for col in ("id", "cif"):
        if col not in df.columns:
            raise ValueError(f"{samples_csv}: missing column {col}")
    return df.iloc[shard::num_shards].reset_index(drop=True)


def _read(path: str):
    from pymatgen.core import Element, Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Structure.from_file(path)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"unreadable structure {path} ({first})") from None
    if len(s) == 0 or not s.is_ordered or not all(isinstance(e, Element) for e in s.composition.elements):
        raise GraphError(f"unusable structure {path} (empty, disordered or unknown species)")
    return s


def _predict(ens, rows: list[dict], structs: dict, key: str, batch_size: int) -> None:
    """rows[i][key] (and key_std) = ensemble mean (std) for every i in ``structs``; graph errors
    go to rows[i][key + '_error']."""
    idx, pairs = [], []
    for i, s in structs.items():
        try:
            pairs.append(build_graph(s, ens.graph))
            idx.append(i)
        except GraphError as exc:
            rows[i][f"{key}_error"] = str(exc)
    if pairs:
        mean, std = ens.predict(pairs, batch_size=batch_size)
        for i, m, sd in zip(idx, mean, std):
            rows[i][key] = float(m)
            rows[i][f"{key}_std"] = float(sd)


def _first_error(row: dict, keys: tuple) -> str:
    for k in keys:
        if row.get(k):
            return row[k]
    return ""


def screen_shard(samples_csv, shard: int, num_shards: int, outdir, cfg: dict, tc_model_dir,
                 gap_model_dir=None, log: Callable = print, publish_dir=None,
                 calibration: dict | None = None) -> "object":
    """Screen one shard into ``outdir`` (see module docstring); returns the predictions table.
    ``publish_dir``: where ``outdir`` will finally be (paths in the table point there);
    ``calibration``: the record of the calibrated Tc cut (rule calibrate_tc), None for the fixed cut."""
    import pandas as pd
    from pymatgen.io.cif import CifWriter

    from tcflow.screen import mlip
    from tcflow.screen.model import Ensemble

    outdir = Path(outdir)
    (outdir / "relaxed").mkdir(parents=True, exist_ok=True)
    df = shard_rows(samples_csv, shard, num_shards)
    tc_ens = Ensemble.load(tc_model_dir)
    gap_ens = Ensemble.load(gap_model_dir) if gap_model_dir else None
    log(f"shard {shard}/{num_shards}: {len(df)} samples; Tc model {tc_model_dir} ({len(tc_ens.models)} member(s))")
    if gap_ens is None:
        log(f"band gap: {GAP_DEFERRED}")
    log(f"Tc cut: score > {cfg['tc_min_K']} K" if calibration is None else
        f"Tc cut: score >= {calibration['threshold_K']:.3f} K, calibrated for recall {calibration['recall_target']:g} "
        f"of Tc > {cfg['tc_min_K']} K on the validation split")
    relax_cfg, ph_cfg, bs = cfg["relax"], cfg["phonon"], cfg["batch_size"]
    model = cfg["mlip"]
    log(f"MLIP: {mlip.label(model)}")
    rows, structs = [], {}
    for i, rec in enumerate(df.to_dict("records")):
        row = {"id": rec["id"], "source_cif": rec["cif"], "cdvae_tc_K": rec.get("pred_tc_K", math.nan), "mlip": model}
        rows.append(row)
        try:
            s = _read(rec["cif"])
        except GraphError as exc:
            row["read_error"] = str(exc)
            continue
        row.update(formula=s.composition.reduced_formula, natoms=len(s))
        sv, cv = bool(rec.get("struct_valid", True)), bool(rec.get("comp_valid", True))
        row["pass_valid"] = (sv and cv) or not cfg["require_valid"]
        row["pass_natoms"] = len(s) <= cfg["max_atoms"]
        if not row["pass_valid"]:
            row["skip"] = "structurally invalid" if not sv else "compositionally invalid"
        elif not row["pass_natoms"]:
            row["skip"] = f"natoms {len(s)} > {cfg['max_atoms']}"
        else:
            structs[i] = s
    _predict(tc_ens, rows, structs, "tc_unrelaxed_K", bs)
    relaxed = {}
    for i, s in structs.items():
        row = rows[i]
        if row.get("tc_unrelaxed_K_error"):
            continue
        if not relax_cfg["enabled"]:
            relaxed[i] = s
            try:
                row["eform_eV_atom"] = mlip.formation_energy_per_atom(mlip.energy(s, model), s.composition, model)
            except Exception as exc:
                row["relax_error"] = f"MLIP energy failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            continue
        log(f"{row['id']}: relaxing {row['formula']} ({len(s)} atoms, {s.volume / len(s):.1f} A^3/atom)")
        try:
            res = mlip.relax(s, fmax=relax_cfg["fmax_eV_A"], steps=relax_cfg["max_steps"],
                             relax_cell=relax_cfg["relax_cell"], model=model)
        except Exception as exc:
            row["relax_error"] = f"relaxation failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            continue
        n = len(s)
        log(f"{row['id']}: {res.steps} steps, max force {res.max_force_eV_A:.3f} eV/A, "
            f"volume x{res.structure.volume / s.volume:.2f}{'; ' + res.error if res.error else ''}")
        row.update(e_initial_eV_atom=res.energy_initial_eV / n, e_final_eV_atom=res.energy_final_eV / n,
                   energy_drop_eV_atom=(res.energy_initial_eV - res.energy_final_eV) / n,
                   max_force_eV_A=res.max_force_eV_A, relax_steps=res.steps, relax_converged=res.converged,
                   volume_ratio=res.structure.volume / s.volume)
        if res.error:
            row["relax_error"] = res.error
            continue
        try:
            row["eform_eV_atom"] = mlip.formation_energy_per_atom(res.energy_final_eV, s.composition, model)
        except (KeyError, ValueError) as exc:
            row["relax_error"] = str(exc.args[0])
            continue
        cif = outdir / "relaxed" / f"{rec_id(row)}.cif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atomic_write_text(cif, str(CifWriter(res.structure)))
        row["relaxed_cif"] = str(Path(publish_dir or outdir) / "relaxed" / cif.name)
        relaxed[i] = res.structure
    if relax_cfg["enabled"]:
        _predict(tc_ens, rows, relaxed, "tc_relaxed_K", bs)
    if gap_ens is not None:
        _predict(gap_ens, rows, relaxed, "gap_eV", bs)
    for row in rows:
        _criteria(row, cfg, relax_cfg["enabled"], gap_ens is not None, calibration)
    for i, row in enumerate(rows):
        if ph_cfg["enabled"] and row["reason"] == "":
            log(f"{row['id']}: phonon pre-check")
            try:
                from tcflow.screen.phonons import lowest_frequency_THz

                ph = lowest_frequency_THz(relaxed[i], ph_cfg["supercell_min_length_A"], tuple(ph_cfg["q_mesh"]),
                                          ph_cfg["displacement_A"], model)
                row.update(min_freq_THz=ph["min_freq_THz"], phonon_supercell=ph["supercell"])
                row["pass_phonon"] = ph["min_freq_THz"] >= ph_cfg["min_freq_THz"]
                if not row["pass_phonon"]:
                    row["reason"] = (f"dynamically unstable (lowest frequency {ph['min_freq_THz']:.2f} THz "
                                     f"< {ph_cfg['min_freq_THz']} THz)")
            except Exception as exc:
                row["pass_phonon"] = False
                row["reason"] = f"phonon pre-check failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        row["passed"] = row["reason"] == ""
    out = pd.DataFrame.from_records(rows)
    for col in COLUMNS:
        if col not in out.columns:
            out[col] = np.nan
    out = out[list(COLUMNS)]
    with atomic_path(outdir / "predictions.csv") as tmp:
        out.to_csv(tmp, index=False)
    log(f"shard {shard}: {int(out['passed'].sum())} of {len(out)} samples pass")
    return out


def rec_id(row: dict) -> str:
    return str(row["id"])


def _criteria(row: dict, cfg: dict, relaxed: bool, have_gap: bool, calibration: dict | None = None) -> None:
    """Fill tc_K, tc_score_K, pass_* and the first failing ``reason`` ('' when all pass so far);
    the Tc cut is ``score > tc_min_K``, or ``score >= calibration['threshold_K']``."""
    row["gap_status"] = "predicted" if have_gap else GAP_DEFERRED
    tc_key = "tc_relaxed_K" if relaxed else "tc_unrelaxed_K"
    err = _first_error(row, ("read_error", "skip", "tc_unrelaxed_K_error", "relax_error", f"{tc_key}_error"))
    if err:
        row["reason"] = err
        return
    tc, sd = row.get(tc_key, math.nan), row.get(f"{tc_key}_std", 0.0)
    row["tc_K"], row["tc_std_K"] = tc, sd
    row["tc_score_K"] = tc - cfg["tc_spread_k"] * sd
    if not math.isfinite(row["tc_score_K"]):
        row["reason"] = "Tc prediction is NaN"
        return
    if calibration is None:
        row["pass_tc"] = row["tc_score_K"] > cfg["tc_min_K"]
        tc_reason = f"predicted Tc {row['tc_score_K']:.2f} K <= {cfg['tc_min_K']} K"
    else:
        row["pass_tc"] = row["tc_score_K"] >= calibration["threshold_K"]
        tc_reason = (f"predicted Tc {row['tc_score_K']:.2f} K < {calibration['threshold_K']:.2f} K (the cut "
                     f"calibrated for recall {calibration['recall_target']:g} of Tc > {cfg['tc_min_K']} K)")
    ef = row.get("eform_eV_atom", math.nan)
    row["pass_eform"] = bool(math.isfinite(ef) and ef < cfg["eform_max_eV_atom"])
    if have_gap:
        gap = row.get("gap_eV", math.nan)
        row["pass_gap"] = bool(math.isfinite(gap) and gap < cfg["gap_max_eV"])
    reasons = []
    if not row["pass_tc"]:
        reasons.append(tc_reason)
    if not row["pass_eform"]:
        reasons.append(f"formation energy {ef:.3f} eV/atom >= {cfg['eform_max_eV_atom']} eV/atom"
                       if math.isfinite(ef) else "formation energy is NaN")
    if have_gap and not row["pass_gap"]:
        reasons.append(f"band gap {row.get('gap_eV', math.nan):.3f} eV >= {cfg['gap_max_eV']} eV")
    row["reason"] = reasons[0] if reasons else ""


#: Columns of a shard's (and the merged) predictions.csv.
COLUMNS = ("id", "formula", "natoms", "source_cif", "relaxed_cif", "cdvae_tc_K",
           "tc_unrelaxed_K", "tc_unrelaxed_K_std", "tc_relaxed_K", "tc_relaxed_K_std",
           "tc_K", "tc_std_K", "tc_score_K", "mlip", "e_initial_eV_atom", "e_final_eV_atom", "energy_drop_eV_atom",
           "max_force_eV_A", "relax_steps", "relax_converged", "volume_ratio", "eform_eV_atom",
           "gap_eV", "gap_status", "min_freq_THz", "phonon_supercell",
           "pass_valid", "pass_natoms", "pass_tc", "pass_eform", "pass_gap", "pass_phonon", "passed", "reason")
