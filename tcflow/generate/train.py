"""Training of the CDVAE: seeded, resumable (checkpoint every epoch), early stopping on the
validation loss, every loss term logged per epoch.

Files in the model directory:

- ``last.ckpt``: the resume point (model, optimiser and RNG state, history), rewritten
  atomically after every epoch; a killed job restarts from it;
- ``model.pt``: the final model (best validation epoch), written once training ends;
- ``hparams.json``, ``scalers.json``, ``loss.csv``, ``loss.png``, ``metadata.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from tcflow.generate.dataset import Crystal, batches, collate, read_crystals
from tcflow.generate.model import CDVAE, HParams, Scalers
from tcflow.io import atomic_path, atomic_write_json, atomic_write_text

CKPT = "last.ckpt"
MODEL = "model.pt"
#: Loss terms logged per epoch (train_* and val_* columns of loss.csv).
TERMS = ("loss", "natoms", "lattice", "composition", "coord", "type", "kl", "property")
#: Gradient-norm clip, as CDVAE's trainer uses.
GRAD_CLIP = 0.5
#: Offset added to the seed for the fixed validation-noise generator.
VAL_SEED_OFFSET = 1_000_003


@dataclass
class TrainSettings:
    """epochs: maximum epochs; batch_size: crystals per step; lr: Adam learning rate;
    patience: epochs without validation improvement before stopping (early stopping)."""

    epochs: int = 400
    batch_size: int = 25
    lr: float = 1e-3
    patience: int = 50


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("generate.device is 'cuda' but torch sees no CUDA device")
    return torch.device(name)


def _fingerprint(hp: HParams, ts: TrainSettings, seed: int, n_train: int, n_val: int) -> str:
    """Identity of a training run; a checkpoint from another run is never resumed.
    ``epochs`` and ``patience`` are left out so that a run can be extended."""
    key = {"hp": hp.to_dict(), "batch_size": ts.batch_size, "lr": ts.lr, "seed": seed,
           "n_train": n_train, "n_val": n_val}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _epoch(model: CDVAE, crystals: list[Crystal], bs: int, gen: torch.Generator, device,
           optim: torch.optim.Optimizer | None) -> dict[str, float]:
    sums = {k: 0.0 for k in TERMS}
    n = 0
    for b in batches(crystals, bs, generator=gen, shuffle=optim is not None):
        b = b.to(device)
        if optim is None:
            with torch.no_grad():
                out = model.losses(b, generator=gen)
        else:
            out = model.losses(b, generator=gen)
            optim.zero_grad()
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optim.step()
        for k in TERMS:
            sums[k] += float(out[k].detach()) * b.num_graphs
        n += b.num_graphs
    return {k: v / n for k, v in sums.items()}


def _write_loss_files(outdir: Path, history: list[dict]) -> None:
    cols = ["epoch", "seconds"] + [f"{s}_{k}" for s in ("train", "val") for k in TERMS]
    lines = [",".join(cols)] + [",".join(f"{row[c]:.6g}" for c in cols) for row in history]
    atomic_write_text(outdir / "loss.csv", "\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(14, 6), sharex=True)
    ep = [r["epoch"] for r in history]
    for ax, k in zip(axes.flat, TERMS):
        ax.plot(ep, [r[f"train_{k}"] for r in history], label="train")
        ax.plot(ep, [r[f"val_{k}"] for r in history], label="val")
        ax.set_title(k)
        ax.set_yscale("log" if min(min(r[f"train_{k}"], r[f"val_{k}"]) for r in history) > 0 else "linear")
    axes.flat[0].legend()
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    with atomic_path(outdir / "loss.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def train(train_csv: str | os.PathLike, val_csv: str | os.PathLike, outdir: str | os.PathLike,
          hp: HParams, ts: TrainSettings, seed: int, device: str = "auto",
          log: Callable[[str], None] = print,
          on_epoch_end: Callable[[int], None] | None = None) -> dict:
    """Train (or resume training of) a CDVAE; return a summary dict.

    ``on_epoch_end(epoch)`` is called after each epoch's checkpoint is on disk (tests use it
    to simulate a kill). Raises ``ValueError`` naming ``last.ckpt`` if it belongs to another run.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    tr, va = read_crystals(train_csv), read_crystals(val_csv)
    too_big = [c.id for c in tr + va if len(c.z) > hp.max_atoms]
    if too_big:
        raise ValueError(f"{too_big[0]}: more atoms than generate.model.max_atoms={hp.max_atoms}")
    torch.manual_seed(seed)
    scalers = Scalers.fit(collate(tr))
    model = CDVAE(hp, scalers).to(dev)
    optim = torch.optim.Adam(model.parameters(), lr=ts.lr)
    gen = torch.Generator().manual_seed(seed)
    fp = _fingerprint(hp, ts, seed, len(tr), len(va))
    state = {"epoch": 0, "best_val": math.inf, "best_epoch": 0, "best_state": None, "history": []}
    ckpt_path = outdir / CKPT
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ck.get("fingerprint") != fp:
            raise ValueError(f"{ckpt_path}: checkpoint of a different run (settings, seed or data "
                             f"changed); delete it to start afresh")
        model.load_state_dict(ck["model"])
        optim.load_state_dict(ck["optim"])
        gen.set_state(ck["rng"])
        state = ck["state"]
        log(f"resuming at epoch {state['epoch']} from {ckpt_path}")
    atomic_write_json(outdir / "hparams.json", hp.to_dict())
    atomic_write_json(outdir / "scalers.json", scalers.to_dict())

    while state["epoch"] < ts.epochs and state["epoch"] - state["best_epoch"] < ts.patience:
        t0 = time.perf_counter()
        model.train()
        tr_loss = _epoch(model, tr, ts.batch_size, gen, dev, optim)
        model.eval()
        va_loss = _epoch(model, va, ts.batch_size, torch.Generator().manual_seed(seed + VAL_SEED_OFFSET), dev, None)
        state["epoch"] += 1
        row = {"epoch": state["epoch"], "seconds": time.perf_counter() - t0}
        row.update({f"train_{k}": v for k, v in tr_loss.items()})
        row.update({f"val_{k}": v for k, v in va_loss.items()})
        state["history"].append(row)
        if va_loss["loss"] < state["best_val"]:
            state.update(best_val=va_loss["loss"], best_epoch=state["epoch"],
                         best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        log(f"epoch {state['epoch']}: train {tr_loss['loss']:.4f} val {va_loss['loss']:.4f} "
            f"({row['seconds']:.1f} s)")
        with atomic_path(ckpt_path) as tmp:
            torch.save({"fingerprint": fp, "model": model.state_dict(), "optim": optim.state_dict(),
                        "rng": gen.get_state(), "state": state}, tmp)
        _write_loss_files(outdir, state["history"])
        if on_epoch_end is not None:
            on_epoch_end(state["epoch"])

    if state["history"]:
        _write_loss_files(outdir, state["history"])  # also when resuming a finished run
    write_model(outdir / MODEL, hp.to_dict(), scalers.to_dict(), state["best_state"],
                state["best_epoch"], state["epoch"])
    return {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "best_val_loss": state["best_val"], "n_train": len(tr), "n_val": len(va),
            "device": str(dev), "seconds_per_epoch": sum(r["seconds"] for r in state["history"]) /
            max(len(state["history"]), 1), "train_settings": asdict(ts)}


def write_model(path: str | os.PathLike, hparams: dict, scalers: dict, weights: dict,
                best_epoch: int, epochs_run: int) -> None:
    """Write a final model file (what :func:`load_model` reads), atomically."""
    with atomic_path(path) as tmp:
        torch.save({"hparams": hparams, "scalers": scalers, "model": weights,
                    "best_epoch": best_epoch, "epochs_run": epochs_run}, tmp)


def load_model(model_dir: str | os.PathLike, device: str = "cpu") -> CDVAE:
    """The final model of a training run (``model.pt``), in eval mode on ``device``."""
    path = Path(model_dir) / MODEL
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (run train_cdvae first)")
    ck = torch.load(path, map_location=device, weights_only=False)
    # models saved before ``decoder`` became a setting have the distance-only decoder
    model = CDVAE(HParams(**{"decoder": "schnet", **ck["hparams"]}), Scalers(**ck["scalers"]))
    model.load_state_dict(ck["model"])
    return model.to(device).eval()
