"""Preflight of a SLURM run: ``python -m tcflow.doctor --profile profiles/slurm [--configfile F ...]``
(``make doctor``), on the login node, in the directory the workflow runs in. Standard library + yaml.

One line per finding (``ok``, ``warn``, ``FAIL`` with what to fix); exit 1 on a failing one, 2 when
no SLURM answers here (one line). Checks: sbatch/squeue reach the controller, SLURM version; sacct's
database and so the safe ``slurm-status-command`` (MinJobAge); the profile's ``$VARIABLES`` set and
valid; each rule's request accepted by ``sbatch --test-only`` (nothing is submitted) and its last
retry's walltime within MaxTime; throttling against the cluster's limits; the QE programs and the
MPI launcher; a pseudopotential for every element of the candidates (once there are candidates).
"""

from __future__ import annotations

import argparse
import ast
import getpass
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QE_CODES = ("pw.x", "ph.x", "q2r.x", "matdyn.x", "lambda.x")
#: the plugin's defaults: first status check after this many seconds; squeue is trusted only when
#: MinJobAge >= SQUEUE_AGE_FACTOR times that delay (else it switches to sacct where sacct exists)
PLUGIN_INIT_STATUS_S = 40
SQUEUE_AGE_FACTOR = 3
#: RPCs one job costs slurmctld at least: its sbatch and the srun step its command runs in
RPC_PER_JOB = 2
#: slurmctld's rate limiter defaults (slurm.conf SlurmctldParameters rl_*): tokens, s, tokens/period
RL_DEFAULTS = {"rl_bucket_size": 30, "rl_refill_period": 1, "rl_refill_rate": 2}
TIMEOUT_S = 30
ENV_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
SPAN_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SAFE_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load,
              ast.operator, ast.unaryop)


@dataclass
class Finding:
    level: str  # ok | warn | FAIL
    topic: str
    text: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.level:<4} {self.topic}: {self.text}" + (f" -> fix: {self.fix}" if self.fix else "")


class NoSlurm(RuntimeError):
    """No SLURM controller answers from this machine."""


def sh(*cmd: str) -> tuple[int, str, str]:
    """Run a command: (exit status, stdout, last stderr line); 127 when it is not on PATH."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        return 127, "", f"{cmd[0]}: " + ("not found" if isinstance(exc, OSError) else f"no answer in {TIMEOUT_S} s")
    err = [line for line in p.stderr.splitlines() if line.strip()]
    return p.returncode, p.stdout, err[-1].strip() if err else ""


def eval_resource(value, attempt: int = 1):
    """A profile resource at ``attempt``: a number, or an arithmetic expression of ``attempt``
    (``"360 * attempt"``, ``"min(2000 * attempt, 8000)"``), as Snakemake evaluates it. Anything
    else (a string such as ``"2h"``) is returned as it is."""
    names = {"attempt": attempt, "min": min, "max": max}
    try:
        tree = ast.parse(value, mode="eval") if isinstance(value, str) else None
    except SyntaxError:
        return value
    if tree is None or not all(isinstance(n, SAFE_NODES) and (not isinstance(n, ast.Name) or n.id in names)
                               for n in ast.walk(tree)):
        return value
    return eval(compile(tree, "<resource>", "eval"), {"__builtins__": {}}, names)


def load_profile(path: str) -> dict:
    """The profile's config.yaml (``path``: the profile directory or the file itself)."""
    import yaml

    f = Path(path) / "config.yaml" if Path(path).is_dir() else Path(path)
    data = yaml.safe_load(f.read_text()) if f.is_file() else None
    if not isinstance(data, dict):
        raise SystemExit(f"doctor: profile {f}: not found or not a YAML mapping")
    return data


def load_config(configfiles: list[str]) -> dict:
    """The workflow config as Snakemake builds it: config/config.yaml, each --configfile merged in
    (mappings recursively), schema defaults filled."""
    from tcflow.config import ConfigError, _load_schema, fill_defaults, read_config_file

    def merge(base: dict, new: dict) -> dict:
        for k, v in new.items():
            base[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return base

    schema = REPO / "config" / "schema" / "config.schema.json"
    try:
        config = read_config_file(REPO / "config" / "config.yaml")
        for f in configfiles:
            merge(config, read_config_file(f))
    except ConfigError as exc:
        raise SystemExit(f"doctor: {exc}") from None
    fill_defaults(config, _load_schema(schema), schema.parent)
    return config


def requests(profile: dict) -> dict[str, dict]:
    """Resources the profile gives each rule of set-resources (over default-resources), by rule;
    ``"default-resources"`` for the rules it does not name."""
    default = dict(profile.get("default-resources") or {})
    rules = {rule: {**default, **(res or {})} for rule, res in (profile.get("set-resources") or {}).items()}
    return {"default-resources": default, **rules}


def slurm_config() -> dict[str, str]:
    """``scontrol show config`` as a dict; :class:`NoSlurm` when SLURM is absent or unreachable."""
    if not (shutil.which("sbatch") or shutil.which("squeue")):
        raise NoSlurm("no SLURM on this machine (sbatch and squeue are not on PATH): run make doctor "
                      "on the cluster's login node, after `module load slurm` where the site needs it")
    rc, out, err = sh("scontrol", "show", "config")
    if rc != 0:
        raise NoSlurm(f"SLURM does not answer here (scontrol show config: {err}): run make doctor on "
                      "the cluster's login node, or point SLURM_CONF at the cluster's slurm.conf")
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines()) if _}


def check_slurm(conf: dict) -> list[Finding]:
    where = f"SLURM {conf.get('SLURM_VERSION', '?')}, cluster {conf.get('ClusterName', '?')}"
    rc, _, err = sh("squeue", "--noheader", "--user", getpass.getuser(), "--format=%i")
    if not shutil.which("sbatch") or rc != 0:
        return [Finding("FAIL", "slurm", f"{'squeue: ' + err if rc else 'sbatch not on PATH'} ({where})",
                        "put SLURM's client commands on PATH (module load slurm)")]
    return [Finding("ok", "slurm", f"sbatch and squeue reach the controller ({where})")]


def check_status(conf: dict, profile: dict) -> list[Finding]:
    """Which status command the plugin will use, and whether it can see jobs finish."""
    storage = conf.get("AccountingStorageType", "?")
    has_sacct = shutil.which("sacct") is not None
    rc, _, err = sh("sacct", "-X", "--noheader", "--starttime", "now-1hours", "--format=JobID")
    db = rc == 0
    m = re.match(r"(\d+)\s*(h?)", conf.get("MinJobAge", ""))
    age = int(m.group(1)) * (3600 if m.group(2) else 1) if m else None
    init = int(profile.get("slurm-init-seconds-before-status-checks", PLUGIN_INIT_STATUS_S))
    need = SQUEUE_AGE_FACTOR * init
    found = [Finding("ok", "accounting", (f"sacct answers ({storage})" if db else f"sacct has no database "
                     f"here ({storage}: {err})") + f"; MinJobAge {age} s (squeue shows a finished job that long)")]
    chosen = profile.get("slurm-status-command") or ("sacct" if has_sacct else "squeue")
    used = "sacct" if has_sacct and (chosen == "sacct" or age is None or age < need) else "squeue"
    text = f"slurm-status-command {chosen!r} -> the plugin queries {used}"
    if used == "sacct" and not db:
        fix = ("set slurm-status-command: squeue in the profile" if chosen == "sacct" else
               f"MinJobAge {age} s < {SQUEUE_AGE_FACTOR} x slurm-init-seconds-before-status-checks "
               f"({init} s), so the plugin falls back to sacct: lower that setting to <= "
               f"{(age or 0) // SQUEUE_AGE_FACTOR} or ask the admins for MinJobAge >= {need}")
        found.append(Finding("FAIL", "status", text + ", which has no database: finished jobs would "
                             "never be seen", fix))
    elif used == "squeue" and (age is None or age < need):
        found.append(Finding("warn", "status", text + f", but MinJobAge {age} s < {need} s: a job "
                             "may vanish before its first check", "ask the admins for a longer MinJobAge"))
    else:
        found.append(Finding("ok", "status", text + (" (accounting database)" if used == "sacct"
                                                      else f" (MinJobAge >= {need} s)")))
    return found


def env_vars(profile: dict) -> dict[str, set[str]]:
    """``$VARIABLE`` -> the resource keys whose profile values name it."""
    out: dict[str, set[str]] = {}
    for key, value in ((k, v) for res in requests(profile).values() for k, v in res.items()):
        for var in ENV_REF.findall(str(value)):
            out.setdefault(var, set()).add(key)
    return out


def valid_accounts() -> tuple[set[str] | None, str]:
    """The user's accounts as the plugin finds them (sacctmgr, else sshare); None when neither works."""
    rc, out, err = sh("sacctmgr", "-n", "-s", "list", "user", getpass.getuser(), "format=account%256")
    if rc != 0 or not out.strip():
        rc2, out, err2 = sh("sshare", "-U", "--format", "Account%256", "--noheader")
        if rc2 != 0:
            return None, f"sacctmgr: {err or 'no accounts'}; sshare: {err2}"
    return {a.strip().lower() for a in out.splitlines() if a.strip()}, ""


def check_variables(profile: dict) -> list[Finding]:
    found = []
    for var, keys in sorted(env_vars(profile).items()):
        value, what = os.environ.get(var), "/".join(sorted(keys))
        if value is None:
            found.append(Finding("FAIL", var, f"unset: sbatch would get {what} '${var}' literally",
                                 f"export {var}=<value> (empty: none, the cluster's default)"))
        elif not value:
            found.append(Finding("ok", var, f"empty: no {what} (the cluster's default)"))
        elif "slurm_partition" in keys and sh("scontrol", "show", "partition", value)[0] != 0:
            _, parts, _ = sh("sinfo", "--noheader", "--format=%P")
            found.append(Finding("FAIL", var, f"partition {value!r} does not exist",
                                 f"one of: {', '.join(parts.replace('*', '').split()) or '(sinfo lists none)'}"))
        elif "slurm_account" in keys:
            accounts, err = valid_accounts()
            found.append(Finding("FAIL", var, f"account {value!r} cannot be checked ({err}): the plugin "
                                 "refuses to submit", f"export {var}= (no account)") if accounts is None else
                         Finding("FAIL", var, f"account {value!r} is not yours", "one of: " +
                                 ", ".join(sorted(accounts))) if accounts and value.lower() not in accounts
                         else Finding("ok", var, f"account {value!r}" + ("" if accounts else
                                      " (no accounts listed here: taken as it is)")))
        else:
            found.append(Finding("ok", var, f"{what} {value!r}"))
    return found


def sbatch_args(res: dict, attempt: int = 1) -> list[str] | str:
    """sbatch options for a resource dict (as the plugin maps them), or why they cannot be built."""
    r = {k: eval_resource(os.path.expandvars(v) if isinstance(v, str) else v, attempt)
         for k, v in res.items()}
    if any("$" in str(v) for v in r.values()):
        return "an unset variable"
    args = [f"--ntasks={r.get('tasks', 1)}", f"--cpus-per-task={r.get('cpus_per_task', 1)}"]
    for key, opt in (("slurm_partition", "-p"), ("slurm_account", "-A"), ("nodes", "--nodes"),
                     ("constraint", "-C"), ("gres", "--gres"), ("runtime", "-t")):
        if r.get(key) not in (None, ""):
            args += [opt, str(r[key])]
    mem = ("--mem-per-cpu", r["mem_mb_per_cpu"]) if r.get("mem_mb_per_cpu") else ("--mem", r.get("mem_mb"))
    args += [mem[0], str(mem[1])] if mem[1] else []
    if r.get("gpu"):
        args.append(f"--gpus={r['gpu_model']}:{r['gpu']}" if r.get("gpu_model") else f"--gpus={r['gpu']}")
    return args + shlex.split(str(r.get("slurm_extra") or ""))


def max_time_min(partition: str) -> int | None:
    """The partition's MaxTime in minutes (None: unlimited or unknown)."""
    rc, out, _ = sh("scontrol", "show", "partition", "--oneliner", partition)
    m = re.search(r"MaxTime=(?:(\d+)-)?(\d+):(\d+):(\d+)", out) if rc == 0 else None
    return int(m[1] or 0) * 1440 + int(m[2]) * 60 + int(m[3]) if m else None


def check_requests(profile: dict) -> list[Finding]:
    """Every rule's request of attempt 1 through ``sbatch --test-only`` (one finding per distinct
    refusal); the last retry's walltime against the partition's MaxTime."""
    last = int(profile.get("retries", 0)) + 1
    parts = sh("sinfo", "--noheader", "--format=%P")[1].split()
    default_part = next((p.rstrip("*") for p in parts if p.endswith("*")), "")
    found, accepted, refused = [], [], {}
    for rule, res in requests(profile).items():
        args = sbatch_args(res)
        if isinstance(args, str):
            continue  # the unset variable is its own finding
        rc, _, err = sh("sbatch", "--test-only", "--output=/dev/null", *args, "--wrap", "true")
        if rc != 0:
            refused.setdefault(err, []).append((rule, args))
            continue
        accepted.append(rule)
        part = os.path.expandvars(str(res.get("slurm_partition") or "")) or default_part
        limit, runtime = max_time_min(part), eval_resource(res.get("runtime"), last)
        if limit is not None and isinstance(runtime, (int, float)) and runtime > limit:
            found.append(Finding("warn", rule, f"runtime at attempt {last} is {runtime} min, over "
                                 f"partition {part}'s MaxTime {limit} min: that retry would wait forever",
                                 f"cap it, e.g. runtime: \"min(<expr>, {limit})\""))
    for err, rules in refused.items():
        found.append(Finding("FAIL", "requests", f"sbatch --test-only refuses {', '.join(r for r, _ in rules)}"
                             f" ({' '.join(rules[0][1])}): {err}", "fit these entries of the profile "
                             "(set-resources, default-resources) to the cluster's partitions"))
    if accepted:
        found.insert(0, Finding("ok", "requests", f"sbatch --test-only accepts {', '.join(accepted)}"))
    return found


def check_throttle(profile: dict, conf: dict) -> list[Finding]:
    jobs = profile.get("jobs")
    span = str(profile.get("max-jobs-per-timespan") or "")
    m = re.fullmatch(r"\s*([\d.]+)\s*/\s*(\d*)\s*([smhd])\s*", span)
    if not m:
        return [Finding("warn", "throttle", "no max-jobs-per-timespan: Snakemake submits up to 100 "
                        "jobs a second", "add max-jobs-per-timespan: 20/1m to the profile")]
    per_min = float(m.group(1)) * 60 / (int(m.group(2) or 1) * SPAN_S[m.group(3)])
    found = [Finding("ok", "throttle", f"at most {jobs} jobs queued, {span} submissions")]
    params = dict(p.partition("=")[::2] for p in conf.get("SlurmctldParameters", "").split(","))
    if "rl_enable" in params:
        rl = {k: float(params.get(k) or v) for k, v in RL_DEFAULTS.items()}
        rl_min = rl["rl_refill_rate"] * 60 / rl["rl_refill_period"]
        if RPC_PER_JOB * per_min > rl_min or float(m.group(1)) * RPC_PER_JOB > rl["rl_bucket_size"]:
            found.append(Finding("warn", "throttle", f"slurmctld limits RPCs to {rl_min:g}/min per user "
                                 f"(bucket {rl['rl_bucket_size']:g}); {span} submissions cost about "
                                 f"{RPC_PER_JOB * per_min:g}/min", "lower max-jobs-per-timespan"))
    rc, out, _ = sh("sacctmgr", "-n", "-P", "show", "assoc", f"user={getpass.getuser()}", "format=MaxSubmit")
    caps = [int(x) for x in out.split() if x.isdigit()] if rc == 0 else []
    if caps and isinstance(jobs, int) and jobs > min(caps):
        found.append(Finding("warn", "throttle", f"jobs: {jobs} but your association allows "
                             f"{min(caps)} submitted jobs", f"set jobs: {min(caps)} in the profile"))
    return found


def check_programs(profile: dict, config: dict) -> list[Finding]:
    """The QE programs (PATH or dft.qe_bin_dir) and every MPI launcher the profile names."""
    bin_dir = config["dft"].get("qe_bin_dir") or ""
    where = {c: shutil.which(os.path.join(bin_dir, c) if bin_dir else c) for c in QE_CODES}
    missing = [c for c, p in where.items() if not p]
    found = [Finding("FAIL", "QE", f"{', '.join(missing)} not in " + (f"dft.qe_bin_dir {bin_dir}" if bin_dir
                     else "PATH (jobs inherit it)"), "module load quantum-espresso, or set dft.qe_bin_dir")
             if missing else Finding("ok", "QE", f"{', '.join(QE_CODES)} in {os.path.dirname(where['pw.x'])}")]
    launchers = sorted({str(r["mpi"]) for r in requests(profile).values() if r.get("mpi")}) or ["mpirun"]
    for launch in launchers:
        exe = shlex.split(launch)[0]
        found.append(Finding("ok", "MPI", f"launcher {launch!r} is {shutil.which(exe)}") if shutil.which(exe)
                     else Finding("FAIL", "MPI", f"launcher {launch!r}: {exe} not on PATH",
                                  "load the site's MPI module, or set mpi: in the profile"))
    return found


def cif_elements(text: str) -> set[str]:
    """Element symbols of a CIF's atom sites (column ``_atom_site_type_symbol``, else
    ``_atom_site_label``); empty when the file has no such loop."""
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        tags = [t.split()[0].lower() for t in itertools.takewhile(lambda t: t.startswith("_"), lines[i + 1:])]
        col = next((tags.index(t) for t in ("_atom_site_type_symbol", "_atom_site_label") if t in tags), None)
        if line.lower() != "loop_" or col is None:
            continue
        rows = itertools.takewhile(lambda r: r and not r.startswith(("_", "loop_", "data_", "#")),
                                   lines[i + 1 + len(tags):])
        quoted = lambda r: r.count("'") % 2 == r.count('"') % 2 == 0  # noqa: E731 (else shlex fails)
        values = [v for row in rows for v in (shlex.split(row) if quoted(row) else row.split())]
        return {m.group(0) for v in values[col::len(tags)] if (m := re.match(r"[A-Z][a-z]?", v))}
    return set()


def check_pseudos(config: dict) -> list[Finding]:
    """Every element of the candidates (results/candidates/, else a cif_dir) has a pseudopotential."""
    from tcflow.dft.pseudos import MissingPseudopotential, resolve_pseudos

    cand, dft, data = config["candidates"], config["dft"], config["data"]
    cifs = sorted(Path("results/candidates").glob("*.cif"))
    if not cifs and cand["source"] == "cif_dir" and cand.get("path"):
        cifs = sorted(Path(cand["path"]).glob("*.cif"))
    cifs = [c for c in cifs if not cand.get("only") or c.stem in cand["only"]]
    if not cifs:
        return [Finding("ok", "pseudopotentials", "no candidates yet (results/candidates/ is written by "
                        "the screen): run make doctor again then")]
    pseudo_dir = Path(dft["pseudo_dir"] or f"resources/pseudo/{data['pseudo_family']}")
    note = ""
    if not dft["pseudo_dir"] and not pseudo_dir.is_dir():
        mirror = Path(data["mirror"]) / "pseudo" / data["pseudo_family"]
        if not mirror.is_dir():
            return [Finding("warn", "pseudopotentials", f"{pseudo_dir} not fetched yet and no mirror "
                            f"{mirror}: not checked", "run the workflow's fetch_pseudos first")]
        pseudo_dir, note = mirror, " (the mirror fetch_pseudos copies from)"
    users: dict[str, list[str]] = {}
    for cif in cifs:
        for el in cif_elements(cif.read_text(errors="replace")) or {"?"}:
            users.setdefault(el, []).append(cif.stem)
    found = [Finding("warn", "pseudopotentials", f"no atom sites read from {', '.join(users.pop('?'))}")
             ] if "?" in users else []
    for el, ids in sorted(users.items()):
        try:
            resolve_pseudos([el], pseudo_dir, dft.get("pseudo_map"))
        except MissingPseudopotential as exc:
            found.append(Finding("FAIL", "pseudopotentials", f"{exc}; needed by {len(ids)} candidate(s): "
                                 f"{', '.join(sorted(ids)[:5])}{' ...' if len(ids) > 5 else ''}",
                                 f"add dft.pseudo_map: {{{el}: <file>}} with the file in {pseudo_dir}, "
                                 "or leave them out with candidates.only"))
    missing = sum(f.level == "FAIL" for f in found)
    return [Finding("ok", "pseudopotentials", f"{len(users) - missing}/{len(users)} elements of "
                    f"{len(cifs)} candidates have a file in {pseudo_dir}{note}")] + found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tcflow.doctor", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="profiles/slurm", help="profile directory (its config.yaml)")
    ap.add_argument("--configfile", nargs="+", action="extend", default=[], help="workflow config file(s)")
    args = ap.parse_args(argv)
    profile, config = load_profile(args.profile), load_config(args.configfile)
    try:
        conf = slurm_config()
    except NoSlurm as exc:
        print(f"doctor: {exc}")
        return 2
    found = (check_slurm(conf) + check_status(conf, profile) + check_variables(profile) + check_requests(profile)
             + check_throttle(profile, conf) + check_programs(profile, config) + check_pseudos(config))
    for f in found:
        print(f.line())
    failing = sum(f.level == "FAIL" for f in found)
    print(f"doctor: {failing} failing, {sum(f.level == 'warn' for f in found)} warning(s), {len(found)} findings")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
