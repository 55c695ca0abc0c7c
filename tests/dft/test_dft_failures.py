"""Failures that must not spread: a full disk, empty QE files, one candidate whose job fails
while the others go on, lambda.x's overflowed Tc field."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tcflow.dft import outputs as qo
from tcflow.dft.chain import BY_RULE
from tcflow.dft.stage import DiskSpaceError, StepContext, check_free_space, copy_tree, run_step
from tcflow.dft.steps.pw import QEOutputError, check_save_dir
from workflow_helpers import REPO, SHARED, run_snakemake

FIX = Path(__file__).parent / "fixtures"
AL_REF = SHARED / "reference" / "qe_test_suite_ph_metal_al"
BOHR_A = 0.529177210903
CHEAP_AL = {"relax": False, "ecutwfc_ry": 15.0, "ecutrho_ry": 60.0, "smearing": "mv", "degauss_ry": 0.05,
            "kgrid": [8, 8, 8], "scf_kgrid_divisor": 2, "qgrid": [2, 2, 2]}


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB file system (tmpfs), to fill for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_free_space_floor_names_path_and_key(tmp_path):
    with pytest.raises(DiskSpaceError, match=rf"^{tmp_path}: only .* GiB free, below "
                                             r"dft.min_free_disk_gb = 1e\+09 GiB"):
        check_free_space(tmp_path, 1e9)
    check_free_space(tmp_path, 0)  # 0: no check


def test_a_copy_that_fills_the_disk_leaves_nothing_behind(tmp_path, tiny_disk):
    src = tmp_path / "outdir"
    src.mkdir()
    for i in range(4):
        (src / f"wfc{i}.dat").write_bytes(os.urandom(400_000))
    with pytest.raises(DiskSpaceError) as err:
        copy_tree(src, tiny_disk / "copy")
    assert "\n" not in str(err.value) and "No space left on device" in str(err.value), err.value
    assert not (tiny_disk / "copy").exists() and not list(tiny_disk.iterdir())


def test_a_step_that_fails_on_a_full_disk_leaves_no_staging_directory(tmp_path, tiny_disk):
    cand = tiny_disk / "results/dft/al"
    big = tmp_path / "big"
    big.mkdir()
    (big / "f").write_bytes(os.urandom(2_000_000))

    def fills(ctx):
        copy_tree(big, ctx.out / "copy")
        return {"status": "ok"}

    ctx = StepContext(step=BY_RULE["dft_structure"], cid="al", cand=cand, final=cand / "structure",
                      cfg={"min_free_disk_gb": 0})
    with pytest.raises(DiskSpaceError):
        run_step(ctx, fills)
    # only the step's (empty, released) lock file stays: no staging or output directory
    assert [p.name for p in cand.iterdir()] == [".structure.lock"]
    assert (cand / ".structure.lock").stat().st_size == 0


def test_job_done_over_empty_files_is_not_accepted(tmp_path):
    save = tmp_path / "out/tcflow.save"
    save.mkdir(parents=True)
    (save / "data-file-schema.xml").write_text("<espresso/>")
    (save / "charge-density.dat").write_bytes(b"x" * 10)
    check_save_dir(tmp_path / "out")
    (save / "wfc1.dat").write_bytes(b"")  # what a full disk left, under pw.x's JOB DONE
    with pytest.raises(QEOutputError, match=r"empty files tcflow.save/wfc1.dat .*disk full"):
        check_save_dir(tmp_path / "out")
    (save / "wfc1.dat").write_bytes(b"x")
    (save / "data-file-schema.xml").write_text("<espresso")  # cut mid-write
    with pytest.raises(QEOutputError, match="unreadable data-file-schema.xml"):
        check_save_dir(tmp_path / "out")


def test_lambda_x_overflowed_tc_is_no_tc_not_a_crash():
    from tcflow.dft.eliashberg import tc_table

    text = (FIX / "lambda_overflow/lambda_overflow.out").read_text()
    assert "*********" in text
    rows = qo.parse_lambda_x(text)
    assert len(rows) == 10 and [r["tc_K_lambda_x"] is None for r in rows] == [False] * 2 + [True] * 5 + [False] * 3
    assert all(r["lambda"] is not None for r in rows)
    # below mu* there is no Tc: our Allen-Dynes Tc is 0 (lambda.x prints overflow or nonsense there)
    assert [r["tc_K"] for r in tc_table(rows, 0.5)][2:] == [0.0] * 8


def _al_cif(path: Path) -> None:
    from pymatgen.core import Lattice, Structure

    Structure(Lattice.cubic(7.5 * BOHR_A), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(path))


@pytest.mark.qe
def test_one_failed_candidate_does_not_stop_the_others(tmp_path):
    """The local profile keeps going past a failed job; the end of the run lists it and why."""
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    _al_cif(cifs / "good.cif")
    _al_cif(cifs / "bad.cif")
    # a job failure that is not QE's: the relax step cannot create its work directory
    (tmp_path / "results/dft/bad").mkdir(parents=True)
    (tmp_path / "results/dft/bad/relax.work").write_text("a file where a directory must go")
    cfg = {"candidates": {"source": "cif_dir", "path": str(cifs)},
           "dft": {"protocol": "fast", "pseudo_dir": str(AL_REF), "pseudo_map": {"Al": "Al.pz-vbc.UPF"},
                   "overrides": {**CHEAP_AL, "relax": True}}}
    proc = run_snakemake(tmp_path, cfg, "--profile", str(REPO / "profiles/local"), "--cores", "2",
                         "results/dft/good/tc.json", "results/dft/bad/tc.json", check=False, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    good = json.loads((tmp_path / "results/dft/good/tc.json").read_text())
    assert good["status"] == "ok" and good["tc_K"] is not None
    assert not (tmp_path / "results/dft/bad/tc.json").exists()
    assert "DFT candidates without a Tc (1):" in out
    assert "bad: job relax failed: dft_relax (bad): " in out, out[-3000:]


def test_second_job_of_a_step_waits_for_the_first(tmp_path, caplog):
    """A rerun's job of a step whose first job still runs (its Snakemake was killed) waits for it."""
    import subprocess
    import sys
    import time

    from tcflow.dft.stage import step_lock

    final = tmp_path / "results/dft/al/ph_q/2"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from tcflow.dft.stage import step_lock\n"
        f"with step_lock(Path({str(final)!r})):\n"
        "    print('held', flush=True); time.sleep(1.5)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    with caplog.at_level("WARNING"), step_lock(final):
        waited = time.monotonic() - t0
    holder.wait()
    assert waited > 0.8, waited
    assert "another job of this step is running; waiting" in caplog.text
    t0 = time.monotonic()
    with step_lock(final):  # free now: no wait
        assert time.monotonic() - t0 < 0.5
