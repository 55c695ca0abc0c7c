"""Benchmark of the CDVAE generator: training seconds/epoch, sampling samples/s, and the
generation metrics against the number of decoder evaluations per structure.

    .venv/bin/python benchmarks/generate.py --epochs 40 --samples 256 --out bench_generate.json
    .venv/bin/python benchmarks/generate.py --model-dir results/generate/model --samples 1000 \
        --settings 50x10@1e-5

Without --model-dir a model is trained on the full training split (paper-like setting: batch
25, Niggli cells, lattice lengths / N^(1/3), Tc head); --epochs bounds the run, --train-dir
keeps the model (``--train-dir model --epochs 83 --settings none`` trains only). Each sampling
setting ``LEVELSxSTEPS@STEP_LR`` (suffix ``/fixed``: atom types kept from the composition
head instead of re-read from the decoder each step) decodes the same Tc-optimised starting latents. Prints one row
per setting and writes all numbers as JSON, and every setting's samples (one row per sample,
validity included) as ``<out>_samples_<setting>.csv``.

COV-R / COV-P are printed under both rules (``separate`` = CDVAE's evaluation code, ``joint``)
with the fingerprint kind and cutoffs of ``tcflow.generate.metrics`` (``--fingerprint``,
``--cov-samples``; cutoffs: the kind's defaults unless given). Fingerprints of the test and
training splits are cached in ``--fp-cache`` (about 50 s to compute for ``cdvae``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIRROR = ROOT.parent / "shared" / "data" / "jarvis_supercon"
DEFAULT_SETTINGS = "50x100@1e-4,50x40@1e-4,50x20@1e-4,50x10@1e-4,25x10@1e-4,50x10@1e-5,25x10@1e-5"


def last_epoch_model(model_dir: Path, out: Path) -> Path:
    """A model directory whose model.pt holds the weights of ``model_dir/last.ckpt``."""
    import torch

    from tcflow.generate.train import CKPT, MODEL, write_model

    ck = torch.load(model_dir / CKPT, map_location="cpu", weights_only=False)
    out.mkdir(parents=True, exist_ok=True)
    write_model(out / MODEL, json.loads((model_dir / "hparams.json").read_text()),
                json.loads((model_dir / "scalers.json").read_text()), ck["model"],
                ck["state"]["best_epoch"], ck["state"]["epoch"])
    print(f"weights of epoch {ck['state']['epoch']} (last.ckpt of {model_dir})", flush=True)
    return out


def _shard_job(job: tuple) -> "pd.DataFrame":
    """One worker process: shard ``shard`` of the benchmark's samples, ``threads`` torch threads."""
    import torch

    from tcflow.generate.sample import sample_shard

    model_dir, train_csv, shard, outdir, ss, os_, ls, seed, device, threads = job
    torch.set_num_threads(threads)
    return sample_shard(model_dir, train_csv, shard, outdir, ss, os_, ls, seed=seed, device=device,
                        log=lambda s: None)


def sample_in_workers(args, model_dir, outdir: Path, os_, ls) -> "pd.DataFrame":
    """``args.samples`` samples as ``args.workers`` shards (the pipeline's shard seeds), one
    process each with ``args.threads // args.workers`` threads; one shard runs in this process."""
    import pandas as pd

    from tcflow.generate.sample import SampleSettings

    k = args.workers
    sizes = [args.samples // k + (i < args.samples % k) for i in range(k)]
    jobs = [(model_dir, args.train_csv, i, outdir / f"shard{i}",
             SampleSettings(starts_per_shard=n, batch_size=min(args.batch_size, n)), os_, ls, args.seed,
             args.device, max(1, args.threads // k)) for i, n in enumerate(sizes) if n]
    if len(jobs) == 1:
        return _shard_job(jobs[0])
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as pool:
        return pd.concat(list(pool.map(_shard_job, jobs)), ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-csv", default=str(MIRROR / "train.csv"))
    ap.add_argument("--val-csv", default=str(MIRROR / "val.csv"))
    ap.add_argument("--test-csv", default=str(MIRROR / "test.csv"))
    ap.add_argument("--model-dir", help="use this trained model instead of training one")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--train-dir", help="train into this directory (kept; a rerun resumes from its last.ckpt) "
                                        "instead of a temporary one")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--decoder", choices=["painn", "schnet"], default="painn")
    ap.add_argument("--weights", choices=["best", "last"], default="best",
                    help="best: model.pt (best validation epoch); last: the weights of last.ckpt")
    ap.add_argument("--samples", type=int, default=256, help="samples (starting latents) per setting")
    ap.add_argument("--batch-size", type=int, default=256, help="crystals decoded together")
    ap.add_argument("--opt-steps", type=int, default=100)
    ap.add_argument("--prior-weight", type=float, default=0.1,
                    help="latent optimisation: weight of 0.5*|z|^2 (0 = the paper's unconstrained ascent)")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS,
                    help="comma-separated LEVELSxSTEPS@STEP_LR[/fixed] Langevin settings; 'none': train only")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the decoder's message passing (langevin.compile); the first "
                         "setting's time includes the compilation")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all")
    ap.add_argument("--workers", type=int, default=1,
                    help="sampling processes (shards), threads/workers threads each; on 2 CPU cores "
                         "2 workers x 1 thread decode 1.65x faster than 1 x 2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fingerprint", choices=["cdvae", "own"], default="cdvae")
    ap.add_argument("--cov-samples", choices=["all", "valid"], default="all")
    ap.add_argument("--struct-cutoff", type=float, help="default: the fingerprint kind's")
    ap.add_argument("--comp-cutoff", type=float, help="default: the fingerprint kind's")
    ap.add_argument("--fp-cache", default=str(ROOT / "benchmarks" / "generate" / "fingerprint_cache"),
                    help="cache directory of the split fingerprints")
    ap.add_argument("--out", default="bench_generate.json")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import pandas as pd
    import torch

    from tcflow.generate.metrics import MetricSettings, generation_metrics
    from tcflow.generate.model import HParams
    from tcflow.generate.optimise import OptimiseSettings
    from tcflow.generate.sampler import LangevinSettings
    from tcflow.generate.train import TrainSettings, train

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    result: dict = {"device": args.device, "threads": args.threads, "workers": args.workers, "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    model_dir = args.model_dir
    if model_dir is None:
        model_dir = Path(args.train_dir) if args.train_dir else work / "model"
        t0 = time.perf_counter()
        summary = train(args.train_csv, args.val_csv, model_dir, HParams(hidden_dim=args.hidden, decoder=args.decoder),
                        TrainSettings(epochs=args.epochs, batch_size=25, lr=1e-3, patience=args.epochs),
                        seed=args.seed, device=args.device, log=lambda s: print(s, flush=True))
        result["train"] = {**summary, "wall_s": time.perf_counter() - t0}
        print(f"training: {summary['seconds_per_epoch']:.1f} s/epoch over {summary['epochs_run']} epochs "
              f"(best val epoch {summary['best_epoch']})", flush=True)
    if args.weights == "last":
        model_dir = last_epoch_model(Path(model_dir), work / "last")
    result["model"] = {"dir": str(model_dir), "weights": args.weights}
    result["compile"] = args.compile
    result["optimise"] = {"steps": args.opt_steps, "lr": 0.01, "prior_weight": args.prior_weight}
    print(f"latent optimisation: {args.opt_steps} Adam steps, lr 0.01, prior weight {args.prior_weight:g}", flush=True)
    ms = MetricSettings(fingerprint=args.fingerprint, cov_samples=args.cov_samples,
                        struct_cutoff=args.struct_cutoff, comp_cutoff=args.comp_cutoff)
    result["metric_settings"] = {**vars(ms), "cutoffs_in_effect": ms.cutoffs}
    print(f"COV: {ms.fingerprint} fingerprints, cutoffs {ms.cutoffs[0]:g} (structure) / {ms.cutoffs[1]:g} "
          f"(composition), samples {ms.cov_samples}; sep = CDVAE's rule, joint = one sample within both", flush=True)
    rows = []
    print("evals  setting          n     samples/s  struct  comp   COV-R/P sep    COV-R/P joint  W(dens)  W(#el)  "
          "non-P1  Tc0->Tc(latent)  Tc(decoded)  fp-fail  wall s")
    for spec in [] if args.settings == "none" else args.settings.split(","):
        body, _, mode = spec.partition("/")
        shape, lr = body.split("@")
        levels, steps = map(int, shape.split("x"))
        ls = LangevinSettings(num_levels=levels, steps_per_level=steps, step_lr=float(lr),
                              update_types=mode != "fixed", compile=args.compile)
        t0 = time.perf_counter()
        df = sample_in_workers(args, model_dir, work / spec.replace("@", "_").replace("/", "_"),
                               OptimiseSettings(steps=args.opt_steps, lr=0.01, prior_weight=args.prior_weight), ls)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        m = generation_metrics(df, args.test_csv, ms, train_structs=args.train_csv, cache_dir=args.fp_cache)
        result["calibration"] = m.pop("calibration")
        row = {"setting": spec, "evaluations": ls.evaluations, "samples_per_s": len(df) / dt,
               "sampling_wall_s": dt, "metrics_wall_s": time.perf_counter() - t1, **m,
               **{f"{k}_{rule}": v for rule, d in m["cov_by_rule"].items() for k, v in d.items()}}
        rows.append(row)
        df.to_csv(Path(args.out).with_name(Path(args.out).stem + f"_samples_{spec.replace('/', '_')}.csv"),
                  index=False)
        sep, joint = m["cov_by_rule"]["separate"], m["cov_by_rule"]["joint"]
        print(f"{ls.evaluations:5d}  {spec:15s}  {len(df):4d}  {row['samples_per_s']:9.2f}  {m['struct_validity']:.3f}  "
              f"{m['comp_validity']:.3f}  {sep['cov_recall']:.3f}/{sep['cov_precision']:.3f}    "
              f"{joint['cov_recall']:.3f}/{joint['cov_precision']:.3f}    "
              f"{m['wdist_density_g_cm3'] or float('nan'):7.3f}  {m['wdist_num_elements'] or float('nan'):6.3f}  "
              f"{m['fraction_not_P1']:.3f}  {m['tc']['pred_tc_latent_start_K_mean']:.2f}->"
              f"{m['tc']['pred_tc_latent_K_mean']:.2f}  {m['tc']['pred_tc_decoded_K_mean']:.2f}  "
              f"{m['fingerprint_failures']:7d}  {time.perf_counter() - t0:6.0f}", flush=True)
        pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows]).to_csv(
            Path(args.out).with_suffix(".csv"), index=False)
    result["sampling"] = rows
    result["calibration_note"] = "training split scored as samples against the test split"
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    cal = result.get("calibration") or {}
    if cal:
        print(f"calibration (train split as samples, n={cal['n']}): COV-R/P separate "
              f"{cal['cov_by_rule']['separate']['cov_recall']:.3f}/{cal['cov_by_rule']['separate']['cov_precision']:.3f}, "
              f"joint {cal['cov_by_rule']['joint']['cov_recall']:.3f}/{cal['cov_by_rule']['joint']['cov_precision']:.3f}, "
              f"W density {cal['wdist_density_g_cm3']:.3f}, W #el {cal['wdist_num_elements']:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
