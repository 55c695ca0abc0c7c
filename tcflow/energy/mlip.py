"""The MLIP column of the hull (``results/energy/mlip.csv``): MLIP energies placed on a hull of
the Materials Project entries that pymatgen ships (:func:`tcflow.energy.hull.mlip_hull`). That is
a different method from the DFT hull (MP GGA/GGA+U with MP2020 corrections, learned by CHGNet),
kept in columns of its own and never mixed with it; against a subset of MP its E_hull is a lower
bound.

Where the energy comes from (config ``energy.mlip``):

- ``chgnet``: the screen's MLIP energy of the relaxed structure (``e_final_eV_atom`` of
  ``results/screen/predictions.csv``, from the potential its ``mlip`` column names: CHGNet or
  SevenNet) where it has one, else a CHGNet relaxation of the candidate
  here (positions and cell; :func:`tcflow.screen.mlip.relax`, 0.1 eV/Å, 300 steps);
- ``screen``: the screen's energies only;
- ``none``: no MLIP column (the rule does not run).

CHGNet's energies already include MP2020's corrections (it was trained on them), so none is added;
SevenNet's (7net-0, trained on uncorrected energies) get them (:func:`tcflow.energy.hull.mlip_hull`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)
MLIP_CSV_COLUMNS = ("id", "formula", "mlip_source", "mlip_energy_eV", "mlip_natoms", "mlip_e_form_eV_atom",
                    "mlip_e_hull_eV_atom", "mlip_label", "mlip_status")
RELAX_FMAX_EV_A = 0.1
RELAX_STEPS = 300


def screen_energies(predictions_csv: str | Path | None) -> dict[str, tuple[float, int, str]]:
    """id -> (MLIP energy per atom of the relaxed structure in eV/atom as the potential gives it,
    natoms, potential: ``chgnet`` | ``sevenn``, chgnet where the file predates the column) from
    the screen."""
    import pandas as pd

    if not predictions_csv or not Path(predictions_csv).is_file():
        return {}
    df = pd.read_csv(predictions_csv, dtype={"id": str})
    if "e_final_eV_atom" not in df.columns:
        return {}
    models = df["mlip"] if "mlip" in df.columns else pd.Series("chgnet", index=df.index)
    return {r.id: (float(r.e_final_eV_atom), int(r.natoms), str(m)) for r, m in zip(df.itertuples(index=False), models)
            if isinstance(r.e_final_eV_atom, float) and math.isfinite(r.e_final_eV_atom)}


def mlip_rows(candidates: Sequence[tuple[str, Path]], mode: str, predictions_csv=None) -> list[dict]:
    """One row per candidate (columns :data:`MLIP_CSV_COLUMNS`); ``mode``: chgnet | screen."""
    from tcflow.energy.hull import mlip_hull
    from tcflow.screen.mlip import MODELS, label
    from tcflow.structures import read_structure

    screened = screen_energies(predictions_csv)
    rows = []
    for cid, cif in candidates:
        s = read_structure(cif)
        row = {"id": cid, "formula": s.composition.reduced_formula, "mlip_status": "ok"}
        model = "chgnet"
        if cid in screened:
            e_atom, n, model = screened[cid]
            if model not in MODELS:
                rows.append({**row, "mlip_status": f"the screen's MLIP {model!r} is not one of {', '.join(MODELS)}"})
                continue
            energy, source = e_atom * n, f"screen ({label(model)}, relaxed there)"
            comp = s.composition * (n / len(s))
        elif mode == "chgnet":
            from tcflow.screen.mlip import relax

            res = relax(s, fmax=RELAX_FMAX_EV_A, steps=RELAX_STEPS)
            if res.error:
                rows.append({**row, "mlip_status": f"CHGNet relaxation: {res.error}"})
                continue
            energy, source, comp, n = res.energy_final_eV, "CHGNet relaxation here", s.composition, len(s)
        else:
            rows.append({**row, "mlip_status": "the screen has no MLIP energy (energy.mlip: screen)"})
            continue
        try:
            res_h = mlip_hull({cid: (comp, energy)}, label(model), corrected=MODELS[model])[cid]
        except ValueError as exc:
            rows.append({**row, "mlip_status": str(exc).splitlines()[0]})
            continue
        rows.append({**row, "mlip_source": source, "mlip_energy_eV": energy, "mlip_natoms": n,
                     "mlip_e_form_eV_atom": res_h["e_form_eV_atom"], "mlip_e_hull_eV_atom": res_h["e_hull_eV_atom"],
                     "mlip_label": res_h["label"]})
        log.info("%s: MLIP E_form %.4f eV/atom, E_hull %.4f eV/atom (%s)", cid, res_h["e_form_eV_atom"],
                 res_h["e_hull_eV_atom"], source)
    return rows


def write_mlip(rows: list[dict], path) -> None:
    import pandas as pd

    from tcflow.io import atomic_path

    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=list(MLIP_CSV_COLUMNS)).to_csv(tmp, index=False)
