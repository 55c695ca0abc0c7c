"""The report's figures (matplotlib, Agg backend), each written as PNG and SVG.

- :func:`fig_periodic_table` (the paper's Fig. 1b): per element, the fraction of generated
  samples containing it whose predicted Tc exceeds a threshold (K).
- :func:`fig_structures` (Fig. 2): formula types (number of distinct elements), density
  (g/cm³) and packing fraction, generated vs training.
- :func:`fig_tc` (Fig. 3): Tc distribution of the training set (DFT, K) vs the samples'
  predicted Tc; λ vs ω_log (K) and λ vs Tc (K) of the DFT candidates.
- :func:`fig_funnel`: counts per stage and per failure reason.
- :func:`fig_candidate`: α²F(ω) with the cumulative λ(ω) = 2∫α²F(ω')/ω' dω', the phonon DOS
  (frequencies in meV) and λ(σ) (σ in Ry) with the chosen broadening marked.
- :func:`fig_dispersion`: phonon branches from a matdyn ``flfrq`` file, in the file's q order,
  along the labelled high-symmetry path of rule ``dft_dispersion`` when its record is given.

Every function returns the numbers it plotted (read back from the drawn artists), so tests can
compare them with the inputs.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tcflow.io import atomic_path  # noqa: E402

MEV_PER_RY = 13605.693123
MEV_PER_CM1 = 0.12398419843
DPI = 110


def save(fig, out_prefix: str | Path) -> list[Path]:
    """Write ``<out_prefix>.png`` and ``.svg`` atomically; close the figure."""
    out = []
    for ext in ("png", "svg"):
        path = Path(f"{out_prefix}.{ext}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI, bbox_inches="tight")
        out.append(path)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------- Fig. 1b
def _table_position(z: int) -> tuple[int, int]:
    """(row, column) of element ``z`` in the 18-column table; lanthanides/actinides in rows 8/9."""
    from pymatgen.core import Element

    if 57 <= z <= 71:
        return 8, z - 57 + 3
    if 89 <= z <= 103:
        return 9, z - 89 + 3
    el = Element.from_Z(z)
    return el.row, el.group


def element_probabilities(formulas, pred_tc_K, threshold_K: float) -> dict[str, tuple[int, float]]:
    """Element -> (samples containing it, fraction of those with predicted Tc > threshold)."""
    from pymatgen.core import Composition

    counts: dict[str, list[int]] = {}
    for formula, tc in zip(formulas, pred_tc_K):
        for el in Composition(formula).elements:
            c = counts.setdefault(str(el), [0, 0])
            c[0] += 1
            c[1] += int(float(tc) > threshold_K)
    return {el: (n, k / n) for el, (n, k) in sorted(counts.items())}


def fig_periodic_table(formulas, pred_tc_K, threshold_K: float, out_prefix) -> dict[str, tuple[int, float]]:
    """Heat map of :func:`element_probabilities` on the periodic table; returns it as plotted."""
    from pymatgen.core import Element

    formulas, pred_tc_K = list(formulas), list(pred_tc_K)
    probs = element_probabilities(formulas, pred_tc_K, threshold_K)
    grid = np.full((9, 18), np.nan)
    for el, (_, p) in probs.items():
        r, c = _table_position(Element(el).Z)
        grid[r - 1, c - 1] = p
    fig, ax = plt.subplots(figsize=(11, 5.6))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1)
    for z in range(1, 104):
        r, c = _table_position(z)
        sym = Element.from_Z(z).symbol
        ax.text(c - 1, r - 1.15, sym, ha="center", va="center", fontsize=7,
                color="white" if sym in probs and probs[sym][1] < 0.6 else "black")
        if sym in probs:
            ax.text(c - 1, r - 0.75, str(probs[sym][0]), ha="center", va="center", fontsize=5, color="0.9")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Fraction of samples containing the element with predicted Tc > {threshold_K:g} K "
                 f"(small number: samples with it; {len(formulas)} in all)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.025, label=f"P(predicted Tc > {threshold_K:g} K)")
    plotted = im.get_array()
    out = {}
    for el in probs:
        r, c = _table_position(Element(el).Z)
        out[el] = (probs[el][0], float(plotted[r - 1, c - 1]))
    save(fig, out_prefix)
    return out


# ----------------------------------------------------------------------------- Fig. 2
def structure_stats(structure) -> tuple[int, float, float]:
    """(distinct elements, density in g/cm³, packing fraction = sum of 4/3 π r³ over the atoms,
    r = pymatgen's empirical atomic radius in Å, divided by the cell volume in Å³)."""
    vol_atoms = 0.0
    for site in structure:
        r = site.specie.atomic_radius
        vol_atoms += 4.0 / 3.0 * math.pi * float(r if r is not None else site.specie.atomic_radius_calculated) ** 3
    return len(structure.composition.elements), float(structure.density), vol_atoms / structure.volume


def stats_from_cifs(cifs) -> np.ndarray:
    """Rows of :func:`structure_stats` for CIF texts or paths (unreadable ones are skipped)."""
    from pymatgen.core import Structure

    rows = []
    for cif in cifs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                text = str(cif)
                s = (Structure.from_file(text) if "\n" not in text and Path(text).is_file()
                     else Structure.from_str(text, fmt="cif"))
        except Exception:  # a sample whose CIF does not read back counts as invalid elsewhere
            continue
        rows.append(structure_stats(s))
    return np.array(rows, dtype=float).reshape(-1, 3)


FORMULA_TYPES = ("unary", "binary", "ternary", "quaternary", "5+")


def formula_type_fractions(n_elements) -> np.ndarray:
    n = np.asarray(n_elements, dtype=int)
    counts = np.array([(n == k).sum() for k in (1, 2, 3, 4)] + [(n >= 5).sum()], dtype=float)
    return counts / max(len(n), 1)


def fig_structures(generated: np.ndarray, training: np.ndarray, out_prefix) -> dict:
    """Three panels from :func:`stats_from_cifs` rows: formula types, densities, packing fractions."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    x = np.arange(len(FORMULA_TYPES))
    fg, ft = formula_type_fractions(generated[:, 0]), formula_type_fractions(training[:, 0])
    bars_g = axes[0].bar(x - 0.2, fg, 0.4, label=f"generated ({len(generated)})")
    bars_t = axes[0].bar(x + 0.2, ft, 0.4, label=f"training ({len(training)})")
    axes[0].set_xticks(x, FORMULA_TYPES, fontsize=8, rotation=20)
    axes[0].set_ylabel("fraction of structures")
    axes[0].legend(fontsize=8)
    for ax, col, label in ((axes[1], 1, "density (g/cm³)"), (axes[2], 2, "packing fraction")):
        both = np.concatenate([generated[:, col], training[:, col]])
        lo, hi = (both.min(), both.max()) if len(both) else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)  # one value only: a unit-wide range
        ax.hist(training[:, col], bins=bins, density=True, alpha=0.55, label="training", color="C1")
        ax.hist(generated[:, col], bins=bins, density=True, alpha=0.55, label="generated", color="C0")
        ax.set_xlabel(label)
        ax.set_ylabel("probability density")
        ax.legend(fontsize=8)
    out = {"formula_types_generated": [b.get_height() for b in bars_g],
           "formula_types_training": [b.get_height() for b in bars_t]}
    save(fig, out_prefix)
    return out


# ----------------------------------------------------------------------------- Fig. 3
def fig_tc(train_tc_K, sample_tc_K, dft, out_prefix) -> dict:
    """Tc histograms (training, DFT; samples, predicted) and the DFT candidates' λ vs ω_log and
    λ vs Tc; ``dft``: rows with lambda, omega_log_K, tc_K (status ok only are drawn);
    ``sample_tc_K`` None or empty: no samples histogram (user CIFs, nothing generated)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    train_tc_K = np.asarray(train_tc_K, float)
    sample_tc_K = np.asarray(sample_tc_K if sample_tc_K is not None else [], float)
    top = max(train_tc_K.max(initial=1.0), sample_tc_K.max(initial=1.0))
    bins = np.linspace(0, top, 31)
    axes[0].hist(train_tc_K, bins=bins, density=True, alpha=0.55, color="C1", label=f"training, DFT ({len(train_tc_K)})")
    if sample_tc_K is not None and len(sample_tc_K):  # none: the candidates are the user's CIFs
        axes[0].hist(sample_tc_K, bins=bins, density=True, alpha=0.55, color="C0",
                     label=f"samples, predicted ({len(sample_tc_K)})")
    axes[0].set_xlabel("Tc (K)")
    axes[0].set_ylabel("probability density")
    axes[0].legend(fontsize=8)
    ok = [r for r in dft if r.get("status") == "ok" and r.get("lambda") is not None]
    lam = [float(r["lambda"]) for r in ok]
    wlog = [float(r["omega_log_K"]) for r in ok]
    tc = [float(r["tc_K"]) for r in ok]
    s1 = axes[1].scatter(wlog, lam, color="C3")
    s2 = axes[2].scatter(lam, tc, color="C3")
    for r, x1, y1, x2, y2 in zip(ok, wlog, lam, lam, tc):
        axes[1].annotate(str(r["id"]), (x1, y1), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axes[2].annotate(str(r["id"]), (x2, y2), fontsize=7, xytext=(3, 3), textcoords="offset points")
    axes[1].set_xlabel("ω_log (K)")
    axes[1].set_ylabel("λ")
    axes[2].set_xlabel("λ")
    axes[2].set_ylabel("Tc (K)")
    title = f"{len(ok)} DFT candidate(s) with status ok"
    axes[1].set_title(title, fontsize=9)
    axes[2].set_title(title, fontsize=9)
    out = {"lambda_vs_omega_log": s1.get_offsets().tolist(), "tc_vs_lambda": s2.get_offsets().tolist()}
    save(fig, out_prefix)
    return out


# ----------------------------------------------------------------------------- funnel
def fig_funnel(stages: list[dict], reasons: list[tuple[str, int]], out_prefix) -> dict:
    """Bars: count per stage (top to bottom in order) and count per failure reason."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * max(len(stages), len(reasons), 3) + 1.2), layout="constrained")
    names = [s["stage"] for s in stages][::-1]
    counts = [s["count"] for s in stages][::-1]
    b1 = axes[0].barh(names, counts, color="C0")
    axes[0].bar_label(b1, fontsize=8)
    axes[0].set_xlabel("structures")
    axes[0].set_title("per stage", fontsize=9)
    rn = [r for r, _ in reasons][::-1] or ["(none)"]
    rc = [n for _, n in reasons][::-1] or [0]
    b2 = axes[1].barh(rn, rc, color="C3")
    axes[1].bar_label(b2, fontsize=8)
    axes[1].set_xlabel("structures")
    axes[1].set_title("why they stopped", fontsize=9)
    for ax in axes:  # counts of structures: whole numbers on the axis
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    out = {"stages": [b.get_width() for b in b1][::-1], "reasons": [b.get_width() for b in b2][::-1] if reasons else []}
    save(fig, out_prefix)
    return out


# ----------------------------------------------------------------------------- per candidate
def read_a2f(path: str | Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    """matdyn's ``a2F.dos<i>``: (ω in Ry, total α²F, the λ it prints at the end or None), read by
    :func:`tcflow.dft.outputs.parse_a2f_dos`."""
    from tcflow.dft.outputs import parse_a2f_dos

    a2f = parse_a2f_dos(path)
    return np.asarray(a2f["omega_ry"], float), np.asarray(a2f["a2f"], float), a2f["lambda"]


def cumulative_lambda(omega, a2f) -> np.ndarray:
    """λ(ω) = 2 ∫_0^ω α²F(ω')/ω' dω' (trapezoid rule, starting from 0 at the first point)."""
    omega, a2f = np.asarray(omega, float), np.asarray(a2f, float)
    y = np.where(omega > 0, a2f / np.where(omega > 0, omega, 1.0), 0.0)
    steps = 0.5 * (y[1:] + y[:-1]) * np.diff(omega)
    return 2.0 * np.concatenate([[0.0], np.cumsum(steps)])


def read_phonon_dos(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """matdyn's ``fldos``: (frequency in cm⁻¹, total DOS in states/cm⁻¹)."""
    a = np.loadtxt(path, comments="#", ndmin=2)
    return a[:, 0], a[:, 1]


def fig_candidate(cid: str, tc: dict, matdyn_dir: str | Path, out_prefix) -> dict:
    """α²F(ω) + cumulative λ(ω) at the chosen broadening, the phonon DOS, and λ(σ) from
    ``tc["table"]`` (matdyn's and lambda.x's) with the chosen σ marked."""
    md = Path(matdyn_dir)
    i = tc.get("broadening_index")
    if i is None or not tc.get("table"):
        raise ValueError(f"{cid}: tc.json has no broadening table (status {tc.get('status')})")
    w, a2f, lam_file = read_a2f(md / f"a2F.dos{i + 1}")
    lam_w = cumulative_lambda(w, a2f)
    fw, dos = read_phonon_dos(md / "phonon.dos")
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw={"wspace": 0.5})
    ax = axes[0]
    la, = ax.plot(w * MEV_PER_RY, a2f, color="C0")
    ax.set_xlabel("ω (meV)")
    ax.set_ylabel("α²F(ω)", color="C0")
    ax2 = ax.twinx()
    ll, = ax2.plot(w * MEV_PER_RY, lam_w, color="C3")
    ax2.set_ylabel("λ(ω)", color="C3")
    ax.set_title(f"{cid}: σ = {tc['table'][i]['sigma_ry']:g} Ry, λ(∞) = {lam_w[-1]:.3f}", fontsize=9)
    ld, = axes[1].plot(fw * MEV_PER_CM1, dos, color="C2")
    axes[1].set_xlabel("ω (meV)")
    axes[1].set_ylabel("phonon DOS (states/cm⁻¹)")
    axes[1].set_title("phonon DOS (matdyn)", fontsize=9)
    sig = [r["sigma_ry"] for r in tc["table"]]
    lm, = axes[2].plot(sig, [r["matdyn"]["lambda"] for r in tc["table"]], "o-", ms=3, label="matdyn")
    lx, = axes[2].plot(sig, [r["lambda_x"]["lambda"] for r in tc["table"]], "s--", ms=3, label="lambda.x")
    axes[2].axvline(sig[i], color="0.4", ls=":", label=f"chosen σ = {sig[i]:g} Ry ({tc.get('tc_source')})")
    axes[2].set_xlabel("σ (Ry)")
    axes[2].set_ylabel("λ")
    axes[2].legend(fontsize=7)
    out = {"a2f_omega_meV": la.get_xdata().tolist(), "a2f": la.get_ydata().tolist(),
           "lambda_cumulative": ll.get_ydata().tolist(), "lambda_file": lam_file,
           "dos_meV": ld.get_xdata().tolist(), "dos": ld.get_ydata().tolist(),
           "sigma_ry": lm.get_xdata().tolist(), "lambda_matdyn": lm.get_ydata().tolist(),
           "lambda_lambda_x": lx.get_ydata().tolist(), "chosen_sigma_ry": sig[i]}
    save(fig, out_prefix)
    return out


def read_flfrq(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """matdyn's ``flfrq`` (``&plot nbnd=.., nks=.. /`` then per q: 3 coordinates in 2π/a, then
    nbnd frequencies in cm⁻¹): (q-points (nks, 3), frequencies (nks, nbnd))."""
    text = Path(path).read_text()
    m = re.search(r"nbnd\s*=\s*(\d+)\s*,\s*nks\s*=\s*(\d+)", text)
    if not m:
        raise ValueError(f"{path}: no '&plot nbnd=..., nks=...' header")
    nbnd, nks = int(m.group(1)), int(m.group(2))
    nums = np.array(text[text.index("/", m.end()) + 1:].split(), dtype=float)
    if len(nums) != nks * (3 + nbnd):
        raise ValueError(f"{path}: {len(nums)} numbers, expected {nks} q-points x (3 + {nbnd})")
    block = nums.reshape(nks, 3 + nbnd)
    return block[:, :3], block[:, 3:]


def fig_dispersion(path: str | Path, out_prefix, title: str = "", path_info: dict | None = None) -> dict:
    """Branches in meV along the q-points of matdyn's ``flfrq``. With ``path_info`` (the record of
    :mod:`tcflow.dft.steps.dispersion`: ``x_per_A``, labelled ``ticks``, segment ``starts``) the
    x axis is the distance along the high-symmetry path (1/Å) with its labels, and no line crosses
    a jump between segments; without it, the distance between consecutive q-points (2π/a)."""
    q, f = read_flfrq(path)
    if path_info is not None:
        x = np.asarray(path_info["x_per_A"], float)
        if len(x) != len(q):
            raise ValueError(f"{path}: {len(q)} q-points, the path record has {len(x)}")
        starts = list(path_info["starts"]) + [len(q)]
    else:
        x = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(q, axis=0), axis=1))])
        starts = [0, len(q)]
    fig, ax = plt.subplots(figsize=(6.5 if path_info else 5, 3.8))
    mev = f * MEV_PER_CM1
    drawn = [ax.plot(x[a:b], mev[a:b], color="C0", lw=1) for a, b in zip(starts[:-1], starts[1:])]
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylabel("ω (meV)")
    ax.set_title(title, fontsize=9)
    labels = []
    if path_info is not None:
        ticks = path_info["ticks"]
        for tx, _ in ticks:
            ax.axvline(tx, color="0.6", lw=0.5)
        ax.set_xticks([tx for tx, _ in ticks], [lab for _, lab in ticks])
        ax.set_xlabel("wave vector (high-symmetry path)")
        labels = [t.get_text() for t in ax.get_xticklabels()]
    else:
        ax.set_xlabel("distance along the q-points (2π/a)")
    branches = [np.concatenate([seg[k].get_ydata() for seg in drawn]).tolist() for k in range(f.shape[1])]
    out = {"x": np.concatenate([seg[0].get_xdata() for seg in drawn]).tolist(), "branches_meV": branches,
           "tick_labels": labels, "segments": len(drawn)}
    save(fig, out_prefix)
    return out
