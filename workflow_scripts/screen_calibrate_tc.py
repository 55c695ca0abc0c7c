"""Rule calibrate_tc: the screen's Tc cut calibrated on the validation split (screen.tc_recall_target)."""
import torch

from tcflow.io import atomic_write_json
from tcflow.provenance import run_metadata
from tcflow.screen.calibrate import calibrate
from tcflow.screen.model import ensemble_dir
from tcflow.scriptlog import rule_logging

with rule_logging(snakemake.log[0], "calibrate_tc") as log:
    torch.set_num_threads(snakemake.threads)
    inp, cfg = snakemake.input, snakemake.params.screen
    tc = ensemble_dir(inp.tc)
    rec = calibrate(tc, inp.val, cfg["tc_min_K"], cfg["tc_recall_target"], cfg["tc_spread_k"],
                    cfg["batch_size"], log=log.info)
    v, f = rec["validation"], rec["validation_fixed_cut"]
    log.info("Tc cut: score >= %.3f K finds %d of %d validation structures above %s K (recall %.2f, precision %.2f); "
             "the fixed cut > %s K: recall %.2f, precision %s", rec["threshold_K"], v["true_positives"], v["positives"],
             cfg["tc_min_K"], v["recall"], v["precision"], cfg["tc_min_K"], f["recall"],
             "-" if f["precision"] is None else f"{f['precision']:.2f}")
    rec["provenance"] = run_metadata("screen/calibrate_tc", settings={k: cfg[k] for k in (
        "tc_min_K", "tc_recall_target", "tc_spread_k")}, inputs=[inp.val])
    atomic_write_json(snakemake.output.calibration, rec)
