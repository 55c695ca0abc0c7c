"""The HTML report of a real, small Snakemake run, opened in a real headless Chromium.

The run: two user CIFs (candidates.source: cif_dir), fcc Al (a metal: every per-candidate
figure) and CsCl-type AlAu (no pseudopotential for Au in the run's pseudo_dir: stops at once, no
per-candidate figure, and the report says why), dft.protocol: fast, SSSP's Al pseudopotential. Then `snakemake --report` and Chromium: every image of the report
loads (decoded, and opened through the report's own menu); a report with one broken image fails
the same check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from pymatgen.core import Lattice, Structure

from tcflow.report.browser import check_report, chromium_path
from workflow_helpers import REPO, SHARED, run_snakemake

pytestmark = [pytest.mark.qe, pytest.mark.slow]
SNAKEMAKE_TIMEOUT_S = 1800  # a shared 2-core machine: ~5 min when idle
FIGURES = "results/report/figures"
EXPECTED = {f"{FIGURES}/fig3_tc.png", f"{FIGURES}/funnel.png", f"{FIGURES}/candidates/al/eliashberg.png",
            f"{FIGURES}/candidates/al/dispersion.png"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("report_run")
    cifs = wd / "cifs"
    cifs.mkdir()
    a = 4.04 / 2
    Structure(Lattice([[0, a, a], [a, 0, a], [a, a, 0]]), ["Al"], [[0, 0, 0]]).to(filename=str(cifs / "al.cif"))
    Structure(Lattice.cubic(3.0), ["Al", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cifs / "alau.cif"))
    sssp = SHARED / "pseudo" / "sssp_pbesol_efficiency_1.3.0"
    (wd / "pseudo").mkdir()
    shutil.copy(sssp / json.loads((sssp / f"{sssp.name}.json").read_text())["Al"]["filename"], wd / "pseudo" / "Al.UPF")
    config = {"candidates": {"source": "cif_dir", "path": str(cifs)},
              "dft": {"protocol": "fast", "pseudo_dir": str(wd / "pseudo"), "pseudo_map": {"Al": "Al.UPF"}}}
    run_snakemake(wd, config, "--cores", "2", timeout=SNAKEMAKE_TIMEOUT_S)
    run_snakemake(wd, None, "--configfile", str(wd / "config.yaml"), "--report", "results/report/report.html")
    return wd


def test_run_outputs(run):
    assert json.loads((run / "results/dft/al/dispersion/dispersion.json").read_text())["status"] == "ok"
    alau = json.loads((run / "results/dft/alau/dispersion/dispersion.json").read_text())
    assert alau["skipped"] is True and alau["status"] == "error: no pseudopotential for Au"
    assert [p.name for p in (run / FIGURES / "candidates/alau").glob("[!.]*")] == ["figures.json"]
    for rule in ("figure_tc", "figure_funnel", "figure_candidate/al", "figure_candidate/alau"):
        assert (run / f"logs/report/{rule}.log").is_file() and (run / f"logs/benchmarks/report/{rule}.tsv").is_file()
    md = (run / "results/report/report.md").read_text()
    assert "](figures/candidates/al/dispersion.png)" in md
    assert "### Candidate `alau` (DFT status error: no pseudopotential for Au)" in md
    assert "- no eliashberg figure: DFT status 'error: no pseudopotential for Au'" in md
    out = subprocess.run([sys.executable, "-m", "tcflow.report.summary"], cwd=run, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(REPO)}).stdout
    assert re.search(r"candidates sent to DFT\s+2", out) and re.search(r"\bal\s+Al\s+Tc", out)
    assert "results/report/report.html (open in a browser)" in out


def test_every_image_loads_in_chromium(run, tmp_path):
    if not chromium_path():
        pytest.skip("chromium not installed (apt-get install chromium; make test installs it)")
    html = run / "results/report/report.html"
    res = check_report(html, screenshot=tmp_path / "shot.png")
    assert {d["path"] for d in res["decoded"]} == EXPECTED
    assert res["bad"] == [] and {v["path"] for v in res["viewed"]} == EXPECTED
    assert all(v["width"] > 300 and v["height"] > 200 for v in res["viewed"])
    w, h = Image.open(tmp_path / "shot.png").size  # the window (1400 x 1000) less the headless frame
    assert w == 1400 and 800 < h <= 1000

    # the same check fails on a report whose dispersion image is broken
    text = html.read_text()
    m = re.search(r"(data:image/png;charset=utf8;filename=dispersion\.png;base64,)([A-Za-z0-9+/=]+)", text)
    broken = tmp_path / "broken.html"
    broken.write_text(text[:m.start(2)] + "AAAA" + m.group(2)[200:] + text[m.end(2):])
    assert check_report(broken)["bad"] == [f"{FIGURES}/candidates/al/dispersion.png"]


def test_a_page_that_is_not_a_snakemake_report_is_refused(tmp_path):
    if not chromium_path():
        pytest.skip("chromium not installed (apt-get install chromium; make test installs it)")
    (tmp_path / "x.html").write_text("<html><body><img src='missing.png'></body></html>")
    with pytest.raises(ValueError, match="not a Snakemake HTML report"):
        check_report(tmp_path / "x.html")
