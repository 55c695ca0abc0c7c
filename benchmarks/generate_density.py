"""Density of CDVAE samples as the latent heads alone predict it (no Langevin decoding).

Volume from the atom-count and lattice heads, mass from the composition head's atoms
(largest-remainder allocation, as the sampler starts), for posterior starting latents after
the latent Tc optimisation at each ``--prior-weight`` (a negative weight: no optimisation).
Prints the Wasserstein distance of density (g/cm³) to the test split, the mean density, the mean
predicted Tc of the latents (K), and the median volume (Å³) and mass (u) per atom. Comparing it
with the decoded samples of ``benchmarks/generate.py`` separates what the heads do from what
decoding does.

    .venv/bin/python benchmarks/generate_density.py --model-dir <model> --prior-weight -1 0 0.1 0.3
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIRROR = ROOT.parent / "shared" / "data" / "jarvis_supercon"
#: g/cm³ per (u / Å³).
U_PER_A3_TO_G_CM3 = 1.66053906660


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True, help="a directory with model.pt")
    ap.add_argument("--train-csv", default=str(MIRROR / "train.csv"))
    ap.add_argument("--test-csv", default=str(MIRROR / "test.csv"))
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--prior-weight", type=float, nargs="+", default=[-1.0, 0.0, 0.1])
    ap.add_argument("--opt-steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    import pandas as pd
    import torch
    from pymatgen.core import Element, Structure
    from scipy.stats import wasserstein_distance

    from tcflow.generate.dataset import MAX_Z
    from tcflow.generate.lattice import params_to_matrix, volume
    from tcflow.generate.optimise import OptimiseSettings, optimise_latents
    from tcflow.generate.sample import starting_latents
    from tcflow.generate.sampler import allocate_types
    from tcflow.generate.train import load_model

    model = load_model(args.model_dir)
    ref = [Structure.from_str(c, fmt="cif").density for c in pd.read_csv(args.test_csv)["cif"]]
    mass = torch.tensor([float(Element.from_Z(z).atomic_mass) for z in range(1, MAX_Z + 1)])
    z0 = starting_latents(model, args.train_csv, args.samples, "posterior",
                          torch.Generator().manual_seed(args.seed), "cpu")
    print(f"test split: mean density {np.mean(ref):.2f} g/cm3 (n={len(ref)})")
    for w in args.prior_weight:
        steps = 0 if w < 0 else args.opt_steps
        lat = optimise_latents(model, z0, OptimiseSettings(steps=steps, prior_weight=max(w, 0.0)))
        z = lat[max(lat)]
        with torch.no_grad():
            n = model.predict_natoms(z)
            vol = volume(params_to_matrix(*model.predict_lattice(z, n)))
            types = allocate_types(model.composition_probs(z), n)
            graph = torch.repeat_interleave(torch.arange(len(n)), n)
            m = torch.zeros(len(n)).index_add_(0, graph, mass[types - 1])
            tc = float(model.predict_tc(z).mean())
        dens = (m / vol * U_PER_A3_TO_G_CM3).numpy()
        label = "no optimisation" if w < 0 else f"prior_weight {w:g}"
        print(f"{label:20s} W density {wasserstein_distance(dens, ref):.3f}  mean {dens.mean():.2f} g/cm3  "
              f"latent Tc {tc:.2f} K  vol/atom {float((vol / n).median()):.1f} A3  "
              f"mass/atom {float((m / n).median()):.1f} u")


if __name__ == "__main__":
    main()
