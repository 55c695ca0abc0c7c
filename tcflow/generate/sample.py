"""One sampling shard: starting latents -> latent Tc optimisation -> Langevin decoding ->
CIF files + a manifest CSV with validity per sample (nothing is dropped)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from tcflow.generate.dataset import collate, read_crystals
from tcflow.generate.optimise import OptimiseSettings, optimise_latents
from tcflow.generate.sampler import LangevinSettings, langevin_decode
from tcflow.generate.train import load_model, resolve_device
from tcflow.io import atomic_path, atomic_write_text

#: Seeds of shard k derive from the global seed as seed + SHARD_SEED_STRIDE * (k + 1).
SHARD_SEED_STRIDE = 7919
#: Columns of a shard manifest and of results/generate/samples.csv.
COLUMNS = ("id", "cif", "formula", "natoms", "density_g_cm3", "pred_tc_K", "pred_tc_latent_K",
           "pred_tc_latent_start_K", "latent_step", "min_dist_A", "vol_per_atom_A3",
           "struct_valid", "comp_valid", "spacegroup")


@dataclass
class SampleSettings:
    """starts_per_shard: starting latents per shard; batch_size: crystals decoded together;
    init: 'posterior' (z drawn around encoded training crystals) or 'prior' (N(0, I));
    min_dist_A: structural-validity threshold (Å); symprec_A, angle_tolerance_deg: spglib."""

    starts_per_shard: int = 32
    batch_size: int = 64
    init: str = "posterior"
    min_dist_A: float = 0.5
    symprec_A: float = 0.1
    angle_tolerance_deg: float = 5.0


def shard_seed(seed: int, shard: int) -> int:
    return seed + SHARD_SEED_STRIDE * (shard + 1)


def starting_latents(model, train_csv, n: int, init: str, gen: torch.Generator, device) -> torch.Tensor:
    """(n, D) starting latents, from the prior or around encoded training crystals."""
    D = model.hp.latent_dim
    if init == "prior":
        return torch.randn(n, D, generator=gen).to(device)
    if init != "posterior":
        raise ValueError(f"generate.sample.init: unknown value {init!r}")
    crystals = read_crystals(train_csv)
    idx = torch.randint(len(crystals), (n,), generator=gen).tolist()
    b = collate([crystals[i] for i in idx]).to(device)
    with torch.no_grad():
        mu, logvar = model.encode(b)
    return mu + torch.exp(0.5 * logvar) * torch.randn(n, D, generator=gen).to(device)


def predict_structure_tc(model, frac, z, lattice, natoms) -> torch.Tensor:
    """Property head on the re-encoded (posterior-mean) latent of decoded crystals, K (B,)."""
    batch = torch.repeat_interleave(torch.arange(len(natoms), device=natoms.device), natoms)
    with torch.no_grad():
        mu, _ = model.encoder(frac, z, lattice, natoms, batch)
        return model.predict_tc(mu)


def sample_shard(model_dir: str | os.PathLike, train_csv: str | os.PathLike, shard: int,
                 outdir: str | os.PathLike, ss: SampleSettings, os_: OptimiseSettings,
                 ls: LangevinSettings, seed: int, device: str = "auto",
                 log: Callable[[str], None] = print):
    """Generate shard ``shard`` into ``outdir`` (CIFs + manifest.csv); return the manifest
    DataFrame. CIF paths in the manifest are ``outdir/<id>.cif`` as given (keep ``outdir``
    relative to the working directory)."""
    import pandas as pd
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    from tcflow.generate.validity import describe

    dev = resolve_device(device)
    model = load_model(model_dir, device=str(dev))
    gen = torch.Generator().manual_seed(shard_seed(seed, shard))
    torch.manual_seed(shard_seed(seed, shard))
    z0 = starting_latents(model, train_csv, ss.starts_per_shard, ss.init, gen, dev)
    latents = optimise_latents(model, z0, os_)
    with torch.no_grad():
        tc_start = model.predict_tc(z0).cpu()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    k = 0
    for step, zs in sorted(latents.items()):
        with torch.no_grad():
            tc_lat = model.predict_tc(zs).cpu()
        for s in range(0, len(zs), ss.batch_size):
            dec = langevin_decode(model, zs[s:s + ss.batch_size], ls, gen)
            tc_struct = predict_structure_tc(model, dec.frac.to(dev), dec.z.to(dev), dec.lattice.to(dev),
                                             dec.natoms.to(dev)).cpu()
            for g, (lat, zz, frac) in enumerate(dec.split()):
                sid = f"s{shard:03d}-{k:05d}"
                struct = Structure(Lattice(lat), zz.tolist(), frac)
                cif = outdir / f"{sid}.cif"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    atomic_write_text(cif, str(CifWriter(struct)))
                rows.append({"id": sid, "cif": str(cif), "pred_tc_K": float(tc_struct[g]),
                             "pred_tc_latent_K": float(tc_lat[s + g]),
                             "pred_tc_latent_start_K": float(tc_start[s + g]), "latent_step": step,
                             **describe(struct, ss.min_dist_A, ss.symprec_A, ss.angle_tolerance_deg)})
                k += 1
            log(f"shard {shard}: latent step {step}: decoded {min(s + ss.batch_size, len(zs))}/{len(zs)}")
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    with atomic_path(outdir / "manifest.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df


def merge_manifests(paths: list[str | os.PathLike], out_csv: str | os.PathLike):
    """Concatenate shard manifests into one samples table (ids must be unique)."""
    import pandas as pd

    frames = []
    for p in paths:
        df = pd.read_csv(p, float_precision="round_trip")
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{p}: missing column(s) {', '.join(missing)}")
        frames.append(df[list(COLUMNS)])
    df = pd.concat(frames, ignore_index=True)
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise ValueError(f"{out_csv}: duplicate sample id {dup.iloc[0]}")
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df
