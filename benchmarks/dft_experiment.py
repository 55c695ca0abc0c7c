"""Benchmark: DFT Tc of conventional superconductors against experiment, `jarvis` vs `converged`.

Each material (structure from the JARVIS-SC mirror, SSSP PBEsol pseudopotentials) goes through
the DFT stage once per protocol, one Snakemake run per (material, protocol) in
``<workdir>/<protocol>/`` (an interrupted run resumes where it stopped). Every finished pair
becomes a row of ``benchmarks/results/dft_experiment.csv`` (upserted: the table grows run by
run, and a finished pair is not run again unless ``--rerun``): status, the three Tc formulas,
λ, ω_log, the chosen broadening and whether it converged, the grids, core-hours (each step's
wall time from its Snakemake benchmark times the cores it used), the k-point pools QE ran with
(``--pools``; rows before that column ran without) and the mean load average during the run
(above ``--cores``: the machine was shared and the core-hours overstate the cost). The summary
gives, per protocol, the MAE against experiment of each Tc formula over the materials both
protocols finished, and the cost ratio; compare costs only between rows with the same pools.

Experimental Tc (K): elements from B. T. Matthias, T. H. Geballe & V. B. Compton, Rev. Mod.
Phys. 35, 1 (1963); NbC, NbN, TaC, ZrN, HfN, VN, TiN from L. E. Toth, *Transition Metal
Carbides and Nitrides* (Academic Press, 1971); MgB2 from J. Nagamatsu et al., Nature 410, 63
(2001). Literature λ of fcc Al for the converged check: 0.44 (S. Y. Savrasov & D. Y. Savrasov,
Phys. Rev. B 54, 16487 (1996), full-potential LMTO linear response with converged BZ sums).

Usage: .venv/bin/python benchmarks/dft_experiment.py [--materials Al,Nb] [--protocols jarvis,converged]
       [--cores 2] [--workdir /tmp/tcflow_dft_experiment] [--budget-min 120] [--rerun] [--summary] [--markdown] [--readme] [--refresh]
       [--overrides qgrid_min=6,scf_kgrid_divisor=2] [--pools 1|N|auto]
Hours on 2 cores for the full set; ``--budget-min`` starts no new run after that many minutes.
``--overrides`` (``dft.overrides`` keys, YAML values) makes a study variant: its rows are labelled
``<protocol>+key=value+...`` and run in their own work directory, beside the protocol's own rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RESULTS = REPO / "benchmarks" / "results" / "dft_experiment.csv"
#: key -> (JARVIS-SC id, experimental Tc in K); the first eight are the benchmark set, cheapest first
MATERIALS = {
    "Al": ("JVASP-816", 1.18), "Pb": ("JVASP-961", 7.19), "Ta": ("JVASP-1014", 4.47),
    "Nb": ("JVASP-934", 9.25), "V": ("JVASP-14837", 5.38), "NbC": ("JVASP-19889", 11.1),
    "NbN": ("JVASP-19767", 16.0), "MgB2": ("JVASP-1151", 39.0),
    "TaC": ("JVASP-20073", 10.35), "ZrN": ("JVASP-19679", 10.0), "HfN": ("JVASP-15075", 8.83),
    "VN": ("JVASP-19896", 8.2), "TiN": ("JVASP-14741", 5.6),
}
LITERATURE_LAMBDA_AL = 0.44
#: issue 13's goals for the converged protocol against `jarvis`, on the benchmark set (MATERIALS' first 8)
GOAL_MATERIALS, GOAL_MAE_K, GOAL_COST_RATIO = 8, 3.38, 5.0
FORMULAS = ("tc_mcmillan_allen_dynes_K", "tc_allen_dynes_f1f2_K", "tc_eliashberg_K")
COLUMNS = ("material", "jid", "protocol", "status", "exp_tc_K", "tc_K", "tc_formula", *FORMULAS, "lambda",
           "omega_log_K", "sigma_ry", "converged", "k_dense", "k_dense2", "q", "n_irr_q", "core_hours",
           "pipeline_wall_s", "pools", "load_avg", "finished_utc", "commit")
TERMINAL = ("ok", "dynamically_unstable", "insulator")


def mirror_cif(jid: str) -> str:
    csv.field_size_limit(sys.maxsize)
    for split in ("train", "val", "test"):
        with open(SHARED / "data" / "jarvis_supercon" / f"{split}.csv", newline="") as fh:
            row = next((r for r in csv.DictReader(fh) if r["material_id"] == jid), None)
        if row:
            return row["cif"]
    sys.exit(f"{jid}: not in {SHARED}/data/jarvis_supercon")


def read_rows(path: Path = RESULTS) -> dict[tuple[str, str], dict]:
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {(r["material"], r["protocol"]): r for r in csv.DictReader(fh)}


def write_rows(rows: dict[tuple[str, str], dict], path: Path = RESULTS) -> None:
    order = list(MATERIALS)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for key in sorted(rows, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[1])):
            w.writerow({c: rows[key].get(c, "") for c in COLUMNS})
    os.replace(tmp, path)


def run_core_hours(wd: Path, key: str, cores: int) -> float:
    """Σ over the candidate's jobs of wall time (Snakemake benchmark ``s``) x cores used (MPI
    steps: ``cores``; the others one), in hours. A resumed ph.x job's benchmark covers only its
    last segment, so ph.x counts at least the wall time of every ph.x run in its work directories
    (each segment's outputs are kept, ``run<n>/ph.<i>.out``; a run stopped mid-q-point counts up to
    its last timing line)."""
    from tcflow.dft.chain import BY_RULE
    from tcflow.dft.outputs import wall_seconds

    mpi = {s.name for s in BY_RULE.values() if s.mpi}
    total, ph_tsv = 0.0, 0.0
    for tsv in (wd / "logs" / "benchmarks" / "dft" / key).rglob("*.tsv"):
        lines = tsv.read_text().splitlines()
        if len(lines) < 2:
            continue
        step = tsv.parent.name if tsv.parent.name == "ph_q" else tsv.stem
        sec = float(lines[-1].split("\t")[0])
        if step in ("ph", "ph_q", "ph_init"):
            ph_tsv += sec
        else:
            total += sec * (cores if step in mpi else 1)
    cand = wd / "results" / "dft" / key
    outs = [*cand.glob("ph.work/run*/ph.*.out"), *cand.glob("ph_q/*.work/run*/ph.*.out")]
    ph_qe = sum(wall_seconds(p.read_text(errors="replace")) or 0.0 for p in outs)
    return (total + max(ph_tsv, ph_qe) * cores) / 3600.0


class LoadSampler:
    """Mean of the 1-minute load average (``/proc/loadavg``) over a run, sampled every
    ``interval`` s: core-hours are wall time x cores, so a row measured beside other work (load
    above the run's own ``cores``) overstates its cost, and this column says by how much."""

    def __init__(self, interval: float = 30.0):
        import threading

        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.samples.append(float(Path("/proc/loadavg").read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                return

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 2) if self.samples else None


def variant_label(protocol: str, overrides: dict) -> str:
    """``converged`` with ``{"qgrid_min": 6}`` -> ``converged+qgrid_min=6`` (row key and work directory)."""
    return "+".join([protocol, *(f"{k}={v}" for k, v in overrides.items())])


def parse_overrides(text: str) -> dict:
    import yaml

    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        if "=" not in item:
            sys.exit(f"--overrides: {item!r} is not key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def run_one(key: str, protocol: str, args, refresh: dict | None = None) -> dict:
    """Run (or resume) one pair through Snakemake and read its row. ``refresh``: the pair's
    existing row; only ``tc.json`` is rebuilt from the step records (``--forcerun dft_tc``, after
    a change to how tc.json is assembled), keeping the row's measured times."""
    jid, exp = MATERIALS[key]
    label = variant_label(protocol, args.overrides)
    wd = Path(args.workdir).resolve() / label  # absolute: the config names paths inside it
    (wd / "cifs").mkdir(parents=True, exist_ok=True)
    cif = wd / "cifs" / f"{key}.cif"
    if not cif.is_file():
        cif.write_text(mirror_cif(jid))
    pseudo = SHARED / "pseudo" / "sssp_pbesol_efficiency_1.3.0"
    (wd / "config.yaml").write_text(
        f"data: {{mirror: {SHARED}}}\n"
        f"candidates: {{source: cif_dir, path: {wd / 'cifs'}}}\n"
        f"dft: {{protocol: {protocol}, pseudo_dir: {pseudo}, overrides: {json.dumps(args.overrides)}, "
        f"pools: {args.pools}}}\n")
    base = [str(REPO / ".venv" / "bin" / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(wd),
            "--configfile", str(wd / "config.yaml")]
    # a run killed with its session (SIGKILL) leaves Snakemake's lock and incomplete markers: lift
    # the lock (one benchmark at a time per work directory) and let the killed jobs rerun; the
    # DFT steps resume from their work directories (ph.x at its first unfinished q-point)
    subprocess.run([*base, "--unlock"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cmd = [*base, "--cores", str(args.cores), "--rerun-incomplete",
           *(["--forcerun", "dft_tc"] if refresh else []), "--", f"results/dft/{key}/tc.json"]
    t0 = time.time()
    with open(wd / f"snakemake_{key}.log", "a") as log, LoadSampler() as load:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - t0
    tc_path = wd / "results" / "dft" / key / "tc.json"
    if proc.returncode != 0 or not tc_path.is_file():
        print(f"  {key} / {protocol}: Snakemake exit {proc.returncode}; see {wd}/snakemake_{key}.log", flush=True)
        return {}
    tc = json.loads(tc_path.read_text())
    grids = tc.get("grids") or {}
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"material": key, "jid": jid, "protocol": label, "status": tc["status"], "exp_tc_K": exp,
            "tc_K": tc.get("tc_K"), "tc_formula": tc.get("tc_formula"), **{f: tc.get(f) for f in FORMULAS},
            "lambda": tc.get("lambda"), "omega_log_K": tc.get("omega_log_K"), "sigma_ry": tc.get("sigma_ry"),
            "converged": tc.get("converged", tc.get("broadening_converged")),
            "k_dense": "x".join(map(str, grids.get("k_dense", []))),
            "k_dense2": "x".join(map(str, grids.get("k_dense2", []))), "q": "x".join(map(str, grids.get("q", []))),
            "n_irr_q": tc.get("n_irr_q"), "core_hours": round(run_core_hours(wd, key, args.cores), 4),
            "pipeline_wall_s": round(wall, 1), "pools": _pools(wd, key), "load_avg": load.mean, "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "commit": commit,
            **({k: refresh.get(k, "") for k in ("core_hours", "pipeline_wall_s", "pools", "load_avg", "finished_utc")}
               if refresh else {})}


def _pools(wd: Path, key: str) -> int | None:
    """k-point pools QE reported in the candidate's scf_fit (1: none; None: no record)."""
    rec = wd / "results" / "dft" / key / "scf_fit" / "scf_fit.json"
    return json.loads(rec.read_text()).get("pools", 1) if rec.is_file() else None


def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def abs_errors(rows: dict[tuple[str, str], dict], protocol: str, materials: list[str], formula: str) -> list[float]:
    """|Tc - experiment| (K) of ``formula`` for each of ``materials`` whose row has a value."""
    return [abs(_num(rows[(m, protocol)][formula]) - float(rows[(m, protocol)]["exp_tc_K"])) for m in materials
            if _num(rows[(m, protocol)][formula]) is not None]


def finished(rows: dict[tuple[str, str], dict], material: str, protocol: str) -> bool:
    """Whether the pair has a Tc row (ok, or dynamically unstable with its λ and Tc)."""
    return rows.get((material, protocol), {}).get("status") in ("ok", "dynamically_unstable")


def core_hours(rows: dict[tuple[str, str], dict], protocol: str, materials: list[str]) -> float:
    """Core-hours of ``protocol`` summed over ``materials``."""
    return sum(float(rows[(m, protocol)]["core_hours"] or 0) for m in materials)


def summary(rows: dict[tuple[str, str], dict], protocols: list[str]) -> None:
    """Per-row table, then MAE per protocol and formula over the materials every protocol finished ok."""
    w = max([10, *(len(p) for _, p in rows)])
    print(f"{'material':8} {'protocol':{w}} {'status':20} {'exp':>6} {'MAD':>7} {'f1f2':>7} {'ME':>7} "
          f"{'lambda':>7} {'sigma':>6} {'conv':>5} {'core-h':>7} {'pools':>5} {'load':>5}")
    for (m, p), r in sorted(rows.items(), key=lambda kv: (list(MATERIALS).index(kv[0][0]), kv[0][1])):
        vals = [_num(r[f]) for f in FORMULAS]
        fmt = ["-" if v is None else f"{v:.2f}" for v in vals]
        lam = _num(r["lambda"])
        print(f"{m:8} {p:{w}} {r['status'][:20]:20} {float(r['exp_tc_K']):6.2f} {fmt[0]:>7} {fmt[1]:>7} {fmt[2]:>7} "
              f"{'-' if lam is None else f'{lam:.3f}':>7} {r['sigma_ry'] or '-':>6} {str(r['converged'])[:5]:>5} "
              f"{float(r['core_hours'] or 0):7.3f} {r.get('pools') or '-':>5} {r.get('load_avg') or '-':>5}")
    both = [m for m in MATERIALS if all(finished(rows, m, p) for p in protocols)]
    print(f"\nmaterials finished with every protocol ({', '.join(protocols)}): {', '.join(both) or 'none'}")
    if not both:
        return
    cost = {}
    for p in protocols:
        maes = []
        for f in FORMULAS:
            errs = abs_errors(rows, p, both, f)
            maes.append(f"{f[3:-2]} {sum(errs) / len(errs):.2f} K (n={len(errs)})" if errs else f"{f[3:-2]} -")
        cost[p] = core_hours(rows, p, both)
        print(f"  {p:10} MAE vs experiment: {'; '.join(maes)}; core-hours {cost[p]:.2f}")
    if len(protocols) == 2 and cost[protocols[0]] > 0:
        print(f"  cost {protocols[1]} / {protocols[0]}: {cost[protocols[1]] / cost[protocols[0]]:.2f}x")
    for p in protocols[1:]:
        print(f"  {goal_check(rows, protocols[0], p)}")
    for (m, p), al in sorted(rows.items()):
        lam = _num(al["lambda"])
        if m == "Al" and p.startswith("converged") and lam is not None:
            print(f"  fcc Al, {p}: lambda {lam:.3f} vs {LITERATURE_LAMBDA_AL} (Savrasov & Savrasov 1996): "
                  f"{100 * (lam / LITERATURE_LAMBDA_AL - 1):+.1f} %")


def markdown(rows: dict[tuple[str, str], dict], protocols: list[str]) -> str:
    """The table as Markdown (for the README): one line per (material, protocol) of ``protocols``,
    then per protocol the MAE of each formula and the core-hours over the materials it and the first
    protocol both finished, with the cost ratio to the first."""
    def f(v, nd=2):
        x = _num(v)
        return "–" if x is None else f"{x:.{nd}f}"

    out = ["| material | protocol | exp. Tc (K) | Tc McMillan–Allen–Dynes (K) | Tc f1 f2 (K) | Tc Eliashberg (K) "
           "| λ | ω_log (K) | σ (Ry) | q | core-h | pools | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in MATERIALS:
        for p in protocols:
            r = rows.get((m, p))
            if not r:
                continue
            out.append(f"| {m} ({r['jid']}) | {p} | {f(r['exp_tc_K'])} | {f(r['tc_mcmillan_allen_dynes_K'])} "
                       f"| {f(r['tc_allen_dynes_f1f2_K'])} | {f(r['tc_eliashberg_K'])} | {f(r['lambda'], 3)} "
                       f"| {f(r['omega_log_K'], 0)} | {r['sigma_ry'] or '–'} | {r['q'] or '–'} "
                       f"| {f(r['core_hours'], 3)} | {r.get('pools') or '–'} | {r.get('load_avg') or '–'} |")
    base = protocols[0]
    out.append("")
    out.append(f"MAE against experiment, each protocol next to `{base}` on the materials both finished:")
    for p in protocols:
        both = [m for m in MATERIALS if finished(rows, m, base) and finished(rows, m, p)]
        parts = []
        for fm in FORMULAS:
            errs = abs_errors(rows, p, both, fm)
            parts.append(f"{fm[3:-2].replace('_', ' ')} {sum(errs) / len(errs):.2f} K (n = {len(errs)})" if errs
                         else f"{fm[3:-2].replace('_', ' ')} –")
        cost, ref = core_hours(rows, p, both), core_hours(rows, base, both)
        ratio = f", {cost / ref:.1f}x `{base}`'s" if p != base and ref > 0 else ""
        b_err = abs_errors(rows, base, both, FORMULAS[0])
        same = (f" (`{base}` on the same materials: {sum(b_err) / len(b_err):.2f} K)"
                if p != base and b_err else "")
        out.append(f"- `{p}` ({', '.join(both) or 'none'}): {'; '.join(parts)}{same}; {cost:.2f} core-hours{ratio}")
    out.append("")
    out.append("Issue 13's goals (McMillan–Allen–Dynes, the benchmark's first eight materials):")
    out.extend(f"- {goal_check(rows, base, p)}" for p in protocols if p != base)
    return "\n".join(out)


def goal_check(rows: dict[tuple[str, str], dict], base: str, protocol: str) -> str:
    """Issue 13's goals for ``protocol`` against ``base`` in one line: the benchmark materials both
    finished (of GOAL_MATERIALS), its McMillan-Allen-Dynes MAE below GOAL_MAE_K and below the base's
    on them, its cost at most GOAL_COST_RATIO x the base's; each says met / not met."""
    both = [m for m in list(MATERIALS)[:GOAL_MATERIALS] if finished(rows, m, base) and finished(rows, m, protocol)]
    if not both:
        return f"goals, `{protocol}` against `{base}`: no material finished by both"
    errs, b_errs = (abs_errors(rows, p, both, FORMULAS[0]) for p in (protocol, base))
    mae, b_mae = sum(errs) / len(errs), sum(b_errs) / len(b_errs)
    cost, ref = core_hours(rows, protocol, both), core_hours(rows, base, both)
    yes = lambda ok: "met" if ok else "not met"  # noqa: E731
    return (f"goals, `{protocol}` against `{base}`: {len(both)} of {GOAL_MATERIALS} materials "
            f"({yes(len(both) >= GOAL_MATERIALS)}); MAE {mae:.2f} K < {GOAL_MAE_K} K ({yes(mae < GOAL_MAE_K)}) and "
            f"< `{base}`'s {b_mae:.2f} K ({yes(mae < b_mae)}); cost {cost / ref:.1f}x <= {GOAL_COST_RATIO:g}x "
            f"({yes(ref > 0 and cost / ref <= GOAL_COST_RATIO)})")


README = REPO / "README.md"
MARKERS = ("<!-- dft_experiment:begin -->", "<!-- dft_experiment:end -->")


def write_readme_table(table: str, path: Path = README) -> None:
    """Replace what stands between the README's two markers with ``table`` (atomically)."""
    text = path.read_text()
    try:
        head, rest = text.split(MARKERS[0], 1)
        _, tail = rest.split(MARKERS[1], 1)
    except ValueError:
        sys.exit(f"{path}: no {MARKERS[0]} ... {MARKERS[1]} block to write the table into")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(f"{head}{MARKERS[0]}\n{table}\n{MARKERS[1]}{tail}")
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--materials", default=",".join(list(MATERIALS)[:8]))
    ap.add_argument("--protocols", default="jarvis,converged")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/tcflow_dft_experiment")
    ap.add_argument("--budget-min", type=float, default=None, help="start no new run after this many minutes")
    ap.add_argument("--rerun", action="store_true", help="run pairs that already have a row again")
    ap.add_argument("--summary", action="store_true", help="only print the table of the CSV")
    ap.add_argument("--markdown", action="store_true",
                    help="only print the table of the CSV as Markdown, for --protocols (README)")
    ap.add_argument("--readme", action="store_true",
                    help="as --markdown, and write it into README.md between its dft_experiment markers")
    ap.add_argument("--refresh", action="store_true",
                    help="rebuild tc.json of the finished pairs from their step records and update their rows "
                         "(times kept); no QE runs")
    ap.add_argument("--overrides", default="", help="a study variant: dft.overrides as key=value,...")
    ap.add_argument("--pools", default="1",
                    help="dft.pools (k-point pools of pw.x/ph.x): 1 (default: none, as every row of the table so "
                         "far, so that costs compare), a number, or auto")
    args = ap.parse_args()
    args.overrides = parse_overrides(args.overrides)
    sys.path.insert(0, str(REPO))
    materials = [m.strip() for m in args.materials.split(",") if m.strip()]
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = [m for m in materials if m not in MATERIALS]
    if unknown:
        sys.exit(f"--materials: unknown {unknown} (known: {', '.join(MATERIALS)})")
    rows = read_rows()
    if args.markdown or args.readme:  # a protocol given as a full row label (with "+") is taken as it is
        table = markdown(rows, [p if "+" in p else variant_label(p, args.overrides) for p in protocols])
        print(table)
        if args.readme:
            write_readme_table(table)
        return
    t0 = time.time()
    if args.refresh:
        labels = {variant_label(p, args.overrides): p for p in protocols}
        for key in [k for k in rows if k[0] in materials and k[1] in labels]:
            row = run_one(key[0], labels[key[1]], args, refresh=rows[key])
            if row:
                rows[key] = row
                write_rows(rows)
    elif not args.summary:
        for m in materials:
            for p in protocols:
                done = rows.get((m, variant_label(p, args.overrides)), {}).get("status", "")
                if done in TERMINAL and not args.rerun:
                    continue
                if args.budget_min is not None and (time.time() - t0) / 60 > args.budget_min:
                    print(f"budget of {args.budget_min:g} min spent: stopping before {m} / {p}", flush=True)
                    break
                print(f"{m} / {p}: running ({datetime.now(timezone.utc):%H:%M} UTC)", flush=True)
                row = run_one(m, p, args)
                if row:
                    rows[(m, row["protocol"])] = row
                    write_rows(rows)
                    print(f"  {m} / {row['protocol']}: {row['status']}, Tc {row['tc_K']} K (exp {row['exp_tc_K']}), "
                          f"lambda {row['lambda']}, {row['core_hours']} core-h", flush=True)
    summary(rows, [variant_label(p, args.overrides) for p in protocols])


if __name__ == "__main__":
    main()
