"""Parsers of Quantum ESPRESSO outputs, and classification of a run from its text.

A run is never judged by its exit code alone: :func:`classify` reads the output and returns
``(code, message)`` where ``code`` is ``"ok"`` (``JOB DONE`` and no error) or one of
:data:`ERROR_CODES`. Energies: eV unless named; frequencies: THz / cm^-1 as named.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tcflow.dft.cell import Cell

HARTREE_EV = 27.211386245988
THZ_TO_CM1 = 33.35640951981521
#: text pattern -> error code, checked in this order (the first match names the failure)
ERROR_PATTERNS = (
    (r"Maximum CPU time exceeded|Program stopped by user request", "walltime"),
    (r"convergence NOT achieved", "scf_not_converged"),
    (r"No convergence has been achieved", "ph_not_converged"),
    (r"The maximum number of steps has been reached", "relax_not_converged"),
    (r"history already reset at previous step: stopping", "relax_failed"),
)
#: error-block message pattern -> code (these words also occur in normal output, e.g. timing lines)
BLOCK_PATTERNS = (
    (r"FFT grid|fractional translation|wrong representation|symmetr|sym_rho_init|lone vector", "symmetry"),
    (r"cholesky|not positive definite|diaghg|eigenvectors failed", "diagonalization"),
)
ERROR_CODES = tuple(c for _, c in ERROR_PATTERNS + BLOCK_PATTERNS) + ("qe_error", "interrupted")
#: a number per outcome (recorded with each attempt; 0 = success). 3xx: the calculation did not
#: converge (a handler may retry it), 4xx: stopped from outside (the next attempt resumes it),
#: 5xx: QE refused the input or crashed.
ERROR_NUMBERS = {
    "ok": 0,
    "scf_not_converged": 310, "ph_not_converged": 311, "relax_not_converged": 312, "relax_failed": 313,
    "diagonalization": 320, "symmetry": 330,
    "walltime": 410, "interrupted": 420,
    "qe_error": 500,
}


def error_block(text: str) -> str | None:
    """The message of QE's ``%%%%`` error block (``Error in routine X (n): message``), if any."""
    m = re.search(r"%{10,}\s*\n\s*Error in routine\s+(\S+)\s*\((-?\d+)\):\s*\n\s*(.*?)\s*\n\s*%{10,}", text, re.S)
    if not m:
        return None
    return f"{m.group(1)}: {' '.join(m.group(3).split())}"


def classify(text: str) -> tuple[str, str]:
    """``("ok", "")`` for a finished, error-free run, else ``(code, one-line reason)``."""
    block = error_block(text)
    for pattern, code in ERROR_PATTERNS:
        m = re.search(pattern, text)
        if m:
            return code, block or m.group(0)
    if block:
        for pattern, code in BLOCK_PATTERNS:
            if re.search(pattern, block, re.I):
                return code, block
        return "qe_error", block
    if "JOB DONE" in text:
        return "ok", ""
    return "interrupted", "no JOB DONE (killed or crashed)"


def wall_seconds(text: str) -> float | None:
    """Total wall time (s) from the last ``PWSCF/PHONON/... : ... WALL`` summary line."""
    hits = re.findall(r"^\s*[A-Z2]+\s*:\s*(.*?)\s+CPU\s+(.*?)\s+WALL\s*$", text, re.M)
    if not hits:
        return None
    return _qe_time(hits[-1][1])


def _qe_time(s: str) -> float:
    # QE prints "1.61s", "1m23.45s" or "1h 2m"
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)\s*([hms])", s):
        total += float(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def qe_version(text: str) -> str | None:
    m = re.search(r"Program \S+ v\.(\S+)", text)
    return m.group(1) if m else None


def parse_pw(text: str) -> dict[str, Any]:
    """Scalars of a pw.x output: energy (Ry), Fermi energy (eV), symmetry count, scf steps, wall (s),
    electrons in the cell, k-point pools."""
    out: dict[str, Any] = {"qe_version": qe_version(text), "qe_wall_s": wall_seconds(text),
                           "n_electrons": n_electrons(text)}
    e = re.findall(r"^!\s+total energy\s+=\s+(-?[\d.]+) Ry", text, re.M)
    out["total_energy_ry"] = float(e[-1]) if e else None
    f = re.findall(r"the Fermi energy is\s+(-?[\d.]+) ev", text)
    out["fermi_energy_eV"] = float(f[-1]) if f else None
    s = re.search(r"(\d+) Sym\. Ops\.", text) or re.search(r"No symmetry found", text)
    out["n_sym_ops"] = int(s.group(1)) if s and s.groups() else (1 if s else None)
    it = re.findall(r"convergence has been achieved in\s+(\d+) iterations", text)
    out["scf_iterations"] = int(it[-1]) if it else None
    out["pools"] = pools(text)
    return out


def pools(text: str) -> int:
    """k-point pools of a pw.x / ph.x run ("K-points division: npool = n"; 1 when absent)."""
    m = re.search(r"K-points division:\s+npool\s+=\s+(\d+)", text)
    return int(m.group(1)) if m else 1


def band_gap_from_xml(xml_path: str | Path) -> dict[str, Any]:
    """Band-resolved metallicity from pw.x's ``<prefix>.xml``: a band crossing E_F makes a metal.

    Returns ``{"fermi_energy_eV", "gap_eV", "n_crossing_bands"}``; ``gap_eV`` is 0 when any band
    crosses E_F, else (lowest band minimum above E_F) - (highest band maximum below E_F).
    """
    import xml.etree.ElementTree as ET

    root = ET.parse(xml_path).getroot()
    bs = root.find(".//output/band_structure")
    ef_node = bs.find("fermi_energy")
    if ef_node is None:
        ef_node = bs.find("highestOccupiedLevel")
    ef = float(ef_node.text) * HARTREE_EV
    bands: list[list[float]] = []
    for ks in bs.findall("ks_energies"):
        ev = [float(x) * HARTREE_EV for x in ks.find("eigenvalues").text.split()]
        bands.append(ev)
    nb = min(len(b) for b in bands)
    crossing, below, above = 0, -math.inf, math.inf
    for ib in range(nb):
        lo, hi = min(b[ib] for b in bands), max(b[ib] for b in bands)
        if lo < ef < hi:
            crossing += 1
        elif hi <= ef:
            below = max(below, hi)
        else:
            above = min(above, lo)
    gap = 0.0 if crossing else (above - below if math.isfinite(above) and math.isfinite(below) else 0.0)
    return {"fermi_energy_eV": ef, "gap_eV": gap, "n_crossing_bands": crossing}


def parse_dyn0(path: str | Path) -> dict[str, Any]:
    """``<fildyn>0``: q-grid, number of irreducible q and their coordinates (2π/alat, Cartesian)."""
    lines = Path(path).read_text().split("\n")
    grid = [int(x) for x in lines[0].split()]
    nq = int(lines[1].split()[0])
    qs = [[float(x) for x in lines[2 + i].split()[:3]] for i in range(nq)]
    return {"qgrid": grid, "n_irr_q": nq, "qpoints": qs}


def dyn_star_size(path: str | Path) -> int:
    """Number of q-points in the star written to one dynamical-matrix file."""
    return len(re.findall(r"Dynamical\s+Matrix in cartesian axes", Path(path).read_text()))


def dyn_frequencies_cm1(path: str | Path) -> list[float]:
    """Mode frequencies (cm^-1) of the diagonalised block of one dynamical-matrix file."""
    pat = r"freq \(\s*\d+\) =\s*(-?[\d.]+) \[THz\] =\s*(-?[\d.]+) \[cm-1\]"
    return [float(cm) for _, cm in re.findall(pat, Path(path).read_text())]


def parse_matdyn_freq(path: str | Path) -> tuple[list[list[float]], list[list[float]]]:
    """matdyn.x ``flfrq``: (q-points in 2π/alat, frequencies in cm^-1 per q)."""
    text = Path(path).read_text()
    m = re.search(r"nbnd=\s*(\d+),\s*nks=\s*(\d+)", text)
    nbnd, nks = int(m.group(1)), int(m.group(2))
    nums = [float(x) for x in text[m.end():].split("/", 1)[1].split()]
    qs, freqs, step = [], [], 3 + nbnd
    for i in range(nks):
        block = nums[i * step:(i + 1) * step]
        qs.append(block[:3])
        freqs.append(block[3:])
    return qs, freqs


def parse_matdyn_lambda(path: str | Path) -> list[dict[str, float]]:
    """matdyn.x ``lambda`` file: per broadening (Ry) lambda, N(E_F) (states/spin/Ry/cell), omega_ln (K)."""
    rows = re.findall(r"Broadening\s+([\d.]+)\s+lambda\s+([\d.Ee+-]+)\s+dos\(Ef\)\s+([\d.Ee+-]+)\s+"
                      r"omega_ln \[K\]\s+([\d.Ee+-]+|NaN)", Path(path).read_text())
    return [{"sigma_ry": float(s), "lambda": float(l), "n_ef": float(n), "omega_log_K": float(w)}
            for s, l, n, w in rows]


def _num(x: str) -> float | None:
    """A number QE printed; None for NaN (lambda.x prints NaN when a Γ acoustic mode is not > 0)
    and for a Fortran field overflow (``*********``: lambda.x's T_c when λ is below μ*)."""
    if x and set(x) == {"*"}:
        return None
    v = float(x)
    return None if math.isnan(v) else v


def parse_lambda_x(text: str) -> list[dict[str, float | None]]:
    """lambda.x stdout: per broadening lambda, omega_log (K), N(E_F), and its Allen-Dynes T_c (K).
    Values lambda.x printed as NaN become None."""
    num = r"([-\d.Ee+]+|NaN)"
    rows = re.findall(rf"lambda\s*=\s*{num}\s*\(\s*{num}\s*\)\s*<log w>=\s*{num}\s*K\s*N\(Ef\)=\s*"
                      rf"{num}\s*at degauss=\s*([\d.]+)", text)
    tail = text.split("T_c", 1)[1].split("\n")[1:] if "T_c" in text else []
    tcs = [_num(line.split()[2]) for line in tail if len(line.split()) == 3]
    out = []
    for i, (lam, lam2, wlog, nef, sig) in enumerate(rows):
        out.append({"sigma_ry": float(sig), "lambda": _num(lam), "lambda_alt": _num(lam2),
                    "omega_log_K": _num(wlog), "n_ef": _num(nef),
                    "tc_K_lambda_x": tcs[i] if i < len(tcs) else None})
    return out


def parse_a2f_dos(path: str | Path) -> dict[str, Any]:
    """matdyn.x ``a2F.dos<i>`` (one file per el-ph broadening): ``{"omega_ry", "a2f", "a2f_modes",
    "lambda", "delta_ry"}`` — frequencies (Ry, bin centres), the total α²F (dimensionless) and its
    per-mode columns, and the λ and bin width Δ (Ry) printed on the last line (None if absent).
    Raises ``ValueError`` naming the file when it holds no table."""
    rows, lam, delta = [], None, None
    for line in Path(path).read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"lambda\s*=\s*([-+\d.EeDd]+)\s+Delta\s*=\s*([-+\d.EeDd]+)", s)
        if m:
            lam, delta = (float(x.replace("D", "E").replace("d", "e")) for x in m.groups())
            continue
        try:
            rows.append([float(x) for x in s.split()])
        except ValueError:
            raise ValueError(f"{path}: not an a2F.dos line: {s[:60]!r}") from None
    if not rows or len(rows[0]) < 2 or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: no a2F table (frequency, total, modes...)")
    return {"omega_ry": [r[0] for r in rows], "a2f": [r[1] for r in rows], "a2f_modes": [r[2:] for r in rows],
            "lambda": lam, "delta_ry": delta}


def parse_a2fsave(path: str | Path) -> dict[str, Any]:
    """pw.x's la2F file ``<prefix>.a2Fsave``: ``{"eig_ry", "weights", "kgrid"}`` — band energies
    (Ry, one list of ``nbnd`` per irreducible k-point), the k-point weights (summing to 2 without
    spin polarisation, QE's convention) and the dense grid. The k-points and the symmetry data that
    follow are not read. Raises ``ValueError`` naming the file when it is short or not numeric."""
    tokens = Path(path).read_text().split()
    try:
        nbnd, nks = int(tokens[0]), int(tokens[1])
        p = 2
        flat = [float(x) for x in tokens[p:p + nbnd * nks]]
        p += nbnd * nks + 3 * nks                      # the k-points (crystal coordinates) are skipped
        weights = [float(x) for x in tokens[p:p + nks]]
        kgrid = [int(x) for x in tokens[p + nks:p + nks + 3]]
    except (IndexError, ValueError):
        raise ValueError(f"{path}: not a complete a2Fsave file") from None
    if len(flat) != nbnd * nks or len(weights) != nks or len(kgrid) != 3:
        raise ValueError(f"{path}: not a complete a2Fsave file ({len(tokens)} numbers)")
    return {"eig_ry": [flat[i * nbnd:(i + 1) * nbnd] for i in range(nks)], "weights": weights, "kgrid": kgrid}


def n_electrons(text: str) -> float | None:
    """pw.x's ``number of electrons`` (None when absent)."""
    m = re.search(r"number of electrons\s*=\s*([-+\d.Ee]+)", text)
    return float(m.group(1)) if m else None


#: Å per bohr (QE 6.7's BOHR_RADIUS_ANGS)
BOHR_A = 0.52917720859
_LAST_ENERGY = re.compile(r"^!\s+total energy", re.M)
_CARD = re.compile(r"(CELL_PARAMETERS|ATOMIC_POSITIONS)\s*[({]?\s*([a-z]+)\s*(?:=\s*([\d.Ee+-]+))?\s*[)}]?\s*$")


def _card_rows(lines: list[str], i: int, width: int) -> list[list[str]]:
    """The rows of the card whose header is ``lines[i]``: the following lines of ``width``
    fields (the last three numbers), up to the first that is not."""
    rows = []
    for line in lines[i + 1:]:
        parts = line.split()
        try:
            [float(x) for x in parts[width - 3:width]]
        except ValueError:
            break
        if len(parts) < width:
            break
        rows.append(parts[:width])
    return rows


def relax_geometry(text: str, start: "Cell") -> "Cell | None":
    """The geometry of the last completed scf of a pw.x ``relax`` / ``vc-relax`` output (a
    :class:`~tcflow.dft.cell.Cell`); None when no scf has finished.

    The geometry an scf ran on is the last ``ATOMIC_POSITIONS`` card (and ``CELL_PARAMETERS``,
    vc-relax only) printed before its ``!    total energy`` line; before the first ionic step
    there is none and the run's input geometry ``start`` is returned. Units as pw.x prints them:
    cell in angstrom, bohr or ``alat=`` (bohr); positions crystal, angstrom, bohr or alat (the
    run's ``lattice parameter (alat)``)."""
    from tcflow.dft.cell import Cell

    ends = [m.start() for m in _LAST_ENERGY.finditer(text)]
    if not ends:
        return None
    head = text[:ends[-1]]
    alat_m = re.search(r"lattice parameter \(alat\)\s*=\s*([\d.]+)\s*a\.u\.", head)
    alat_A = float(alat_m.group(1)) * BOHR_A if alat_m else None
    lattice, species, frac, cart = start.lattice, start.species, start.frac_coords, None
    lines = head.splitlines()
    for i, line in enumerate(lines):
        m = _CARD.match(line) if line.startswith(("CELL_PARAMETERS", "ATOMIC_POSITIONS")) else None
        if m is None:
            continue
        card, unit, value = m.groups()
        if card == "CELL_PARAMETERS":
            rows = _card_rows(lines, i, 3)
            scale = (float(value) * BOHR_A if value else alat_A) if unit == "alat" else \
                {"angstrom": 1.0, "bohr": BOHR_A}.get(unit)
            if len(rows) != 3 or scale is None:
                raise ValueError(f"unreadable CELL_PARAMETERS ({unit}) in a pw.x output")
            lattice = tuple(tuple(float(x) * scale for x in r) for r in rows)
            continue
        rows = _card_rows(lines, i, 4)
        if not rows:
            raise ValueError(f"empty ATOMIC_POSITIONS ({unit}) in a pw.x output")
        species = tuple(r[0] for r in rows)
        xyz = [tuple(float(x) for x in r[1:4]) for r in rows]
        if unit == "crystal":
            frac, cart = tuple(xyz), None
            continue
        scale = {"angstrom": 1.0, "bohr": BOHR_A, "alat": alat_A}.get(unit)
        if scale is None:
            raise ValueError(f"ATOMIC_POSITIONS ({unit}) in a pw.x output: units unknown")
        cart = [tuple(x * scale for x in p) for p in xyz]
    if cart is not None:  # Cartesian (Å) -> fractional in the cell they were printed with
        frac = tuple(tuple(_solve_frac(lattice, p)) for p in cart)
    return Cell(lattice=tuple(lattice), species=tuple(species), frac_coords=tuple(frac))


def _solve_frac(cell, cart) -> list[float]:
    """f with f · cell = cart (cell rows a1 a2 a3), by Cramer's rule."""
    (a, b, c) = cell

    def det(u, v, w):
        return (u[0] * (v[1] * w[2] - v[2] * w[1]) - u[1] * (v[0] * w[2] - v[2] * w[0])
                + u[2] * (v[0] * w[1] - v[1] * w[0]))

    d = det(a, b, c)
    return [det(cart, b, c) / d, det(a, cart, c) / d, det(a, b, cart) / d]
