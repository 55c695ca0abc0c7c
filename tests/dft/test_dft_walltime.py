"""A vc-relax stopped at max_seconds continues on the next attempt from the last geometry it
reached, in a fresh pw.x run (pw.x's own restart stalled: tests/dft/fixtures/pw_walltime).

The stand-in pw.x replays frozen real QE outputs: first the walltime stop, then a finished run;
it keeps every input it was given, so the second input and the kept outputs are checked without
timing a real run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tcflow.dft.chain import BY_RULE
from tcflow.dft.stage import ResumableInterruption, StepContext, run_step
from tcflow.dft.steps import pw
from test_dft_handlers import _replaying_exe

FIX = Path(__file__).parent / "fixtures"
WALLTIME = FIX / "pw_walltime/pw_relax_walltime.out"


@pytest.fixture
def cand(tmp_path):
    d = tmp_path / "results/dft/al"
    d.mkdir(parents=True)
    shutil.copytree(FIX / "al_records/structure", d / "structure")
    shutil.copy(FIX / "al_records/relax/relaxed.json", d / "structure/standard.json")  # the cell pw.x gets
    rec = json.loads((d / "structure/structure.json").read_text())
    rec["protocol"]["relax"] = True
    (d / "structure/structure.json").write_text(json.dumps(rec))
    return d


def test_walltime_stop_keeps_work_and_next_attempt_restarts(tmp_path, cand):
    launch = _replaying_exe(tmp_path, "pw.x", [WALLTIME, FIX / "pw_walltime/pw_relax_ok.out"])
    ctx = StepContext(step=BY_RULE["dft_relax"], cid="al", cand=cand, final=cand / "relax", launch=launch,
                      max_seconds=3.0, cfg={"min_free_disk_gb": 0})
    with pytest.raises(ResumableInterruption, match="walltime"):
        run_step(ctx, pw.relax)
    assert not (cand / "relax").exists() and not (cand / ".relax.partial").exists()
    assert json.loads((cand / "relax.work" / pw.WALLTIME_MARKER).read_text())["stops"] == 1
    first = (tmp_path / "calls/input.0").read_text()
    assert "restart_mode" not in first and "max_seconds = 3.0" in first
    # attempt 2: a fresh run from the last geometry (this stop came in the first scf: the input cell)
    ctx = StepContext(step=BY_RULE["dft_relax"], cid="al", cand=cand, final=cand / "relax", launch=launch,
                      max_seconds=6.0, cfg={"min_free_disk_gb": 0})
    rec = run_step(ctx, pw.relax)
    second = (tmp_path / "calls/input.1").read_text()
    assert "restart_mode" not in second and "max_seconds = 6.0" in second
    cell = lambda text: text.split("CELL_PARAMETERS")[1].split("K_POINTS")[0]  # noqa: E731
    assert cell(second) == cell(first)
    assert rec["walltime_restarts"] == 1 and (cand / "relax/relax.walltime1.out").is_file()
    assert rec["status"] == "ok" and rec["total_energy_ry"] == pytest.approx(-38.51542058)
    assert not (cand / "relax.work").exists()
