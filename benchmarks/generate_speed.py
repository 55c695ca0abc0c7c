"""Decoding speed of a trained CDVAE model: samples/s of annealed Langevin decoding alone
(no latent optimisation, no CIF writing, no metrics), eager or through ``torch.compile``.

    .venv/bin/python benchmarks/generate_speed.py --model-dir results/generate/model
    .venv/bin/python benchmarks/generate_speed.py --model-dir <model> --compile --threads 1

Posterior starting latents (seeded); a first batch warms up (and, with --compile, compiles:
its time is printed apart), then ``--samples`` crystals are decoded in batches of
``--batch-size`` and timed. The Langevin setting is the default one (50 x 10 at step 1e-5,
atom types kept; ``--update-types`` re-reads them). Run two copies with ``--threads 1`` side by
side to measure two sampling shards on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIRROR = ROOT.parent / "shared" / "data" / "jarvis_supercon"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--train-csv", default=str(MIRROR / "train.csv"), help="for the posterior starts")
    ap.add_argument("--samples", type=int, default=64, help="timed samples (after the warm-up batch)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="langevin.compile: torch.compile the message passing")
    ap.add_argument("--update-types", action="store_true", help="re-read atom types every step (CDVAE)")
    ap.add_argument("--levels", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--step-lr", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from tcflow.generate.sample import starting_latents
    from tcflow.generate.sampler import LangevinSettings, langevin_decode
    from tcflow.generate.train import load_model

    torch.set_num_threads(args.threads)
    ls = LangevinSettings(num_levels=args.levels, steps_per_level=args.steps, step_lr=args.step_lr,
                          update_types=args.update_types, compile=args.compile)
    model = load_model(args.model_dir)
    gen = torch.Generator().manual_seed(args.seed)
    z = starting_latents(model, args.train_csv, args.batch_size + args.samples, "posterior", gen, "cpu")
    t0 = time.perf_counter()
    langevin_decode(model, z[:args.batch_size], ls, gen)
    warm = time.perf_counter() - t0
    atoms = 0
    t1 = time.perf_counter()
    for s in range(args.batch_size, len(z), args.batch_size):
        atoms += int(langevin_decode(model, z[s:s + args.batch_size], ls, gen).natoms.sum())
    dt = time.perf_counter() - t1
    print(f"model {args.model_dir} ({model.hp.decoder}, hidden {model.hp.hidden_dim}); {ls.evaluations} "
          f"evaluations per crystal; threads {args.threads}; compile {args.compile}; batch {args.batch_size}")
    print(f"warm-up batch of {args.batch_size}: {warm:.1f} s (includes compilation with --compile)")
    print(f"{args.samples} samples ({atoms} atoms) in {dt:.1f} s: {args.samples / dt:.3f} samples/s, "
          f"{args.samples * ls.evaluations / dt:.0f} decoder evaluations/s")


if __name__ == "__main__":
    main()
