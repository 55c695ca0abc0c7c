"""Open a Snakemake HTML report in headless Chromium, check that every image in it loads (each
decoded, and each opened through the report's own menu), and optionally save a screenshot.

    .venv/bin/python benchmarks/report_browser.py results/report/report.html \
        --screenshot docs/report_screenshot.png

Exit status 1 when an image did not load (natural width 0) or no image was found, 2 without chromium.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tcflow.report.browser import check_report, chromium_path  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--screenshot", type=Path, default=None)
    args = ap.parse_args(argv)
    if not chromium_path():
        print("chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    res = check_report(args.html, args.screenshot)
    for v in res["viewed"]:
        print(f"{v['path']}: " + (f"{v['width']}x{v['height']} px" if "width" in v else v["error"]))
    n = len(res["decoded"])
    print(f"{n} image(s) in {args.html}; {len(res['viewed'])} opened through the report's menu; "
          f"{len(res['bad'])} not loaded" + (f": {', '.join(res['bad'])}" if res["bad"] else ""))
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")
    return 1 if res["bad"] or not n else 0


if __name__ == "__main__":
    sys.exit(main())
