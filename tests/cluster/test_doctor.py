"""`make doctor` / python -m tcflow.doctor: the preflight of a SLURM run.

Without SLURM on PATH it says so in one line and exits non-zero; on the live test cluster
(conftest.slurm_cluster) the repository's profile, fitted to the node, passes, and each thing a
user can get wrong (an unset variable, a missing partition, sacct without a database, a request
the node cannot hold, an element without a pseudopotential) is one FAIL line naming it.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slurm_helpers import REPO, SLURM_PROFILE, Cluster, site_profile
from tcflow.doctor import Finding, check_pseudos, cif_elements, eval_resource, load_config

#: seconds for one doctor run (a few SLURM queries; generous for a loaded machine)
DOCTOR_TIMEOUT_S = 120
SLURM_TOOLS = ("sbatch", "squeue", "scontrol", "sinfo", "srun", "sacct")


def doctor(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run this checkout's tcflow.doctor in ``cwd`` (where the workflow would run)."""
    env = {**env, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "tcflow.doctor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=DOCTOR_TIMEOUT_S)


def lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def path_without_slurm() -> str:
    """PATH minus every directory holding a SLURM client command."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if not any((Path(d) / tool).exists() for tool in SLURM_TOOLS)]
    return os.pathsep.join(keep)


# ---- without SLURM ---------------------------------------------------------------------------

def test_without_slurm_one_line_and_nonzero(tmp_path):
    env = {**os.environ, "PATH": path_without_slurm()}
    proc = doctor(tmp_path, env, "--profile", str(SLURM_PROFILE.parent))
    out = lines(proc)
    assert proc.returncode != 0
    assert len(out) == 1, out
    assert out[0].startswith("doctor: no SLURM on this machine"), out


def test_make_doctor_without_slurm(tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    env = {**os.environ, "PATH": path_without_slurm()}
    proc = subprocess.run([make, "-s", "-C", str(REPO), "doctor", f"VENV={Path(sys.executable).parents[1]}"],
                          env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=DOCTOR_TIMEOUT_S)
    assert proc.returncode != 0
    assert proc.stdout.splitlines() == [lines(proc)[0]] and "no SLURM on this machine" in proc.stdout, proc


# ---- pieces that need no cluster ---------------------------------------------------------------

def test_resource_expressions_evaluate_per_attempt():
    assert eval_resource("360 * attempt", attempt=3) == 1080
    assert eval_resource("min(2000 * attempt, 3000)", attempt=2) == 3000
    assert eval_resource(4000, attempt=2) == 4000
    assert eval_resource("2h") == "2h"                            # not an expression: as it is
    assert eval_resource("__import__('os').getcwd()") == "__import__('os').getcwd()"  # never run


@pytest.mark.filterwarnings("ignore:Issues encountered while parsing CIF")
def test_cif_elements_agree_with_pymatgen(shared):
    from pymatgen.core import Structure

    with open(shared / "data" / "jarvis_supercon" / "val.csv", newline="") as fh:
        rows = [row for _, row in zip(range(60), csv.DictReader(fh))]
    for row in rows:
        expected = {el.symbol for el in Structure.from_str(row["cif"], fmt="cif").composition.elements}
        assert cif_elements(row["cif"]) == expected, row["material_id"]


def _pseudo_family(directory: Path, elements: list[str]) -> Path:
    import json

    directory.mkdir(parents=True)
    family = {el: {"filename": f"{el}.upf", "md5": "-"} for el in elements}
    for el in elements:
        (directory / f"{el}.upf").write_text(f"<UPF fake for the map check: {el}>\n")
    (directory / "family.json").write_text(json.dumps(family))
    return directory


def test_pseudopotential_map_against_candidates(shared, tmp_path, monkeypatch):
    with open(shared / "data" / "jarvis_supercon" / "train.csv", newline="") as fh:
        rows = {row["material_id"]: row["cif"] for row in csv.DictReader(fh)}
    cands = tmp_path / "results" / "candidates"
    cands.mkdir(parents=True)
    (cands / "al.cif").write_text(rows["JVASP-816"])
    mixed = next(mid for mid, cif in rows.items() if cif_elements(cif) - {"Al"})
    (cands / "mixed.cif").write_text(rows[mixed])
    others = sorted(cif_elements(rows[mixed]) - {"Al"})
    pseudo = _pseudo_family(tmp_path / "pseudo", ["Al"])
    monkeypatch.chdir(tmp_path)
    config = load_config([])
    config["dft"]["pseudo_dir"] = str(pseudo)

    found = check_pseudos(config)
    fails = [f for f in found if f.level == "FAIL"]
    assert [f.text.split()[3] for f in fails] == others, [f.line() for f in found]
    assert all("mixed" in f.text and "al," not in f.text for f in fails)
    assert found[0] == Finding("ok", "pseudopotentials", f"1/{1 + len(others)} elements of 2 candidates "
                               f"have a file in {pseudo}")

    for el in others:  # dft.pseudo_map fills the gaps
        (pseudo / f"{el}_mine.upf").write_text("x\n")
    config["dft"]["pseudo_map"] = {el: f"{el}_mine.upf" for el in others}
    assert [f.level for f in check_pseudos(config)] == ["ok"]


# ---- on the live test cluster -------------------------------------------------------------------

@pytest.fixture()
def profile(slurm_cluster: Cluster, tmp_path) -> Path:
    return site_profile(tmp_path / "profile", slurm_cluster)


def edit(profile: Path, **changes) -> Path:
    data = yaml.safe_load((profile / "config.yaml").read_text())
    for key, value in changes.items():
        data[key.replace("_", "-")] = value
    (profile / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return profile


@pytest.mark.slurm
def test_passes_on_the_test_cluster(slurm_cluster, profile, tmp_path):
    proc = doctor(tmp_path, slurm_cluster.env, "--profile", str(profile))
    out = lines(proc)
    assert proc.returncode == 0, out
    assert all(line.split()[0] in ("ok", "warn", "doctor:") for line in out), out
    version = subprocess.run(["scontrol", "--version"], env=slurm_cluster.env, capture_output=True,
                             text=True, check=True).stdout.split()[1]
    text = "\n".join(out)
    assert f"SLURM {version}, cluster tcflowtest" in text
    assert "MinJobAge 600 s" in text and "sacct has no database" in text
    assert "slurm-status-command 'squeue' -> the plugin queries squeue" in text
    accepted = next(line for line in out if line.startswith("ok   requests:"))
    for rule in yaml.safe_load((profile / "config.yaml").read_text())["set-resources"]:
        assert rule in accepted
    assert out[-1].startswith("doctor: 0 failing")


@pytest.mark.slurm
def test_unset_and_wrong_variables_fail(slurm_cluster, profile, tmp_path):
    env = {k: v for k, v in slurm_cluster.env.items() if k != "TCFLOW_SLURM_ACCOUNT"}
    env["TCFLOW_SLURM_PARTITION"] = "nosuch"
    proc = doctor(tmp_path, env, "--profile", str(profile))
    fails = [line for line in lines(proc) if line.startswith("FAIL")]
    assert proc.returncode == 1
    assert any(line.startswith("FAIL TCFLOW_SLURM_ACCOUNT: unset") and "export TCFLOW_SLURM_ACCOUNT="
               in line for line in fails), fails
    assert any(line.startswith("FAIL TCFLOW_SLURM_PARTITION: partition 'nosuch' does not exist")
               and "tcflow" in line for line in fails), fails


@pytest.mark.slurm
def test_sacct_without_database_fails(slurm_cluster, profile, tmp_path):
    proc = doctor(tmp_path, slurm_cluster.env, "--profile",
                  str(edit(profile, slurm_status_command="sacct")))
    assert proc.returncode == 1
    assert any(line.startswith("FAIL status:") and "slurm-status-command: squeue" in line
               for line in lines(proc)), lines(proc)
    # squeue asked for, but MinJobAge (600 s) < 3 x the first-check delay: the plugin would fall
    # back to sacct, which has no database here
    proc = doctor(tmp_path, slurm_cluster.env, "--profile", str(edit(
        profile, slurm_status_command="squeue", slurm_init_seconds_before_status_checks=300)))
    assert proc.returncode == 1
    assert any(line.startswith("FAIL status:") and "lower that setting to <= 200" in line
               for line in lines(proc)), lines(proc)


@pytest.mark.slurm
def test_request_the_node_cannot_hold_fails(slurm_cluster, profile, tmp_path):
    data = yaml.safe_load((profile / "config.yaml").read_text())
    data["set-resources"]["dft_ph_q"]["tasks"] = slurm_cluster.cpus + 1
    (profile / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    proc = doctor(tmp_path, slurm_cluster.env, "--profile", str(profile))
    fails = [line for line in lines(proc) if line.startswith("FAIL")]
    assert proc.returncode == 1
    assert len(fails) == 1 and "refuses dft_ph_q " in fails[0], fails
    assert f"--ntasks={slurm_cluster.cpus + 1}" in fails[0]
