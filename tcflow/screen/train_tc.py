"""Training of one ALIGNN Tc model (one ensemble member): seeded, resumable, early stopping on the
validation MAE; the test split is never read here.

Files in the member directory:

- ``config.json``, ``best_model.pt``: the model of the best validation epoch (alignn's layout,
  see :mod:`tcflow.screen.model`), written when training ends
- ``last_state.pt``: the resume point (model, optimiser, RNG state, history), rewritten atomically
  every epoch; a state from other settings or data is never resumed. ``epochs`` and ``patience``
  only say when to stop, so a state from a run with other values continues (more epochs extend a
  finished run); one already past ``epochs`` is not used
- ``loss.csv``, ``loss.png``: per-epoch train/val loss and MAE (K)

The target is Tc in K, unscaled (as alignn trains), or log(1 + Tc/K) with ``target_transform:
log1p`` (config.json says so, and :class:`tcflow.screen.model.Ensemble` returns K); the loss is
taken in that space, the output bias starts at the training mean there, and the MAE that early
stopping watches is always in K.
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

import numpy as np
import torch

from tcflow.io import atomic_path, atomic_write_text
from tcflow.screen.graphs import GraphError, GraphSettings, batch, build_graph
from tcflow.screen.model import TARGET_TRANSFORMS, model_config, save_model

STATE = "last_state.pt"


@dataclass(frozen=True)
class TrainSettings:
    """epochs: at most this many; patience: stop after this many epochs without a better
    validation MAE; lr: AdamW learning rate; weight_decay: AdamW; criterion: mse or l1 (K^2, K);
    hidden / alignn_layers / gcn_layers: model size; target_transform: none (train on Tc in K) or
    log1p (train on log(1 + Tc/K): a 1 K error weighs more near the 5 K class boundary than at 30 K)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 20
    criterion: str = "mse"
    hidden: int = 64
    alignn_layers: int = 2
    gcn_layers: int = 2
    target_transform: str = "none"


def settings_from_config(train_cfg: dict) -> tuple[TrainSettings, GraphSettings]:
    """From ``screen.models.tc.train`` (the schema's keys)."""
    ts = TrainSettings(epochs=train_cfg["epochs"], batch_size=train_cfg["batch_size"], lr=train_cfg["lr"],
                       weight_decay=train_cfg["weight_decay"], patience=train_cfg["patience"],
                       criterion=train_cfg["criterion"], hidden=train_cfg["hidden"],
                       alignn_layers=train_cfg["alignn_layers"], gcn_layers=train_cfg["gcn_layers"],
                       target_transform=train_cfg["target_transform"])
    gs = GraphSettings(cutoff_A=train_cfg["cutoff_A"], max_neighbors=train_cfg["max_neighbors"],
                       three_body_cutoff_A=train_cfg["three_body_cutoff_A"])
    return ts, gs


def split_graphs(csv: str | os.PathLike, gs: GraphSettings, log: Callable = print) -> tuple[list, np.ndarray, list]:
    """Graph pairs, Tc (K) and ids of a data split; rows without a graph are logged and skipped."""
    from tcflow.data.splits import iter_structures

    pairs, ys, ids = [], [], []
    for mid, struct, tc in iter_structures(csv):
        try:
            pairs.append(build_graph(struct, gs))
        except GraphError as exc:
            log(f"{csv}: {mid} skipped: {exc}")
            continue
        ys.append(tc)
        ids.append(mid)
    return pairs, np.asarray(ys, dtype=np.float64), ids


#: Settings that only decide when training stops: not part of a resume point's fingerprint.
STOPPING_KEYS = ("epochs", "patience")


def _fingerprint(ts: TrainSettings, gs: GraphSettings, seed: int, ids: list[str]) -> str:
    trajectory = {k: v for k, v in asdict(ts).items() if k not in STOPPING_KEYS}
    if trajectory["target_transform"] == "none":  # resume points from before the key still match
        del trajectory["target_transform"]
    graph = asdict(gs)
    if graph["neighbor_strategy"] == "pure_torch":  # keys added with the legacy graph: old resume points match
        del graph["neighbor_strategy"], graph["use_canonize"]
    blob = json.dumps([trajectory, graph, seed, ids], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _loss(pred, y, criterion: str):
    return torch.nn.functional.mse_loss(pred, y) if criterion == "mse" else torch.nn.functional.l1_loss(pred, y)


def _run_epoch(model, pairs, ys, ts: TrainSettings, optim=None, gen=None) -> dict:
    """One pass over ``pairs`` with targets ``ys`` (K); trains when ``optim`` is given. Returns the
    mean loss (in the ``target_transform`` space) and the MAE (K) over structures."""
    forward, inverse = TARGET_TRANSFORMS[ts.target_transform]
    order = torch.randperm(len(pairs), generator=gen).tolist() if optim else list(range(len(pairs)))
    model.train(optim is not None)
    tot_loss = tot_abs = 0.0
    for lo in range(0, len(order), ts.batch_size):
        idx = order[lo:lo + ts.batch_size]
        y = torch.as_tensor(forward(ys[idx]), dtype=torch.float32)
        with torch.set_grad_enabled(optim is not None):
            pred = model(batch([pairs[i] for i in idx]))["out"].reshape(-1)
            loss = _loss(pred, y, ts.criterion)
        if optim is not None:
            optim.zero_grad()
            loss.backward()
            optim.step()
        tot_loss += float(loss.detach()) * len(idx)
        tot_abs += float(np.abs(inverse(pred.detach().double().numpy()) - ys[idx]).sum())
    return {"loss": tot_loss / len(order), "mae_K": tot_abs / len(order)}


def _write_loss_files(outdir: Path, history: list[dict]) -> None:
    cols = ["epoch", "seconds", "train_loss", "train_mae_K", "val_loss", "val_mae_K"]
    lines = [",".join(cols)] + [",".join(f"{row[c]:.6g}" for c in cols) for row in history]
    atomic_write_text(outdir / "loss.csv", "\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    ep = [r["epoch"] for r in history]
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "mae_K", "MAE (K)")):
        for split in ("train", "val"):
            ax.plot(ep, [r[f"{split}_{key}"] for r in history], label=split)
        ax.set_xlabel("epoch")
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    with atomic_path(outdir / "loss.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def train_member(train_csv, val_csv, outdir, ts: TrainSettings, gs: GraphSettings, seed: int,
                 log: Callable = print, data: tuple | None = None) -> dict:
    """Train (or resume) one Tc model into ``outdir``; return a summary. ``data`` may hold the
    already-built ``(split_graphs(train), split_graphs(val))`` (shared between members)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    (tr, ytr, idtr), (va, yva, idva) = data or (split_graphs(train_csv, gs, log), split_graphs(val_csv, gs, log))
    log(f"graphs: {len(tr)} train, {len(va)} val ({time.perf_counter() - t0:.1f} s)")
    if not tr or not va:
        raise ValueError(f"{train_csv}/{val_csv}: no usable training or validation structures")
    torch.manual_seed(seed)
    mcfg = model_config(hidden=ts.hidden, embedding=ts.hidden, alignn_layers=ts.alignn_layers,
                        gcn_layers=ts.gcn_layers)
    from tcflow.screen.model import build_model

    model = build_model(mcfg)
    with torch.no_grad():
        model.fc.bias.fill_(float(TARGET_TRANSFORMS[ts.target_transform][0](ytr).mean()))
    optim = torch.optim.AdamW(model.parameters(), lr=ts.lr, weight_decay=ts.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    fp = _fingerprint(ts, gs, seed, idtr + idva)
    st = {"epoch": 0, "best_val": math.inf, "best_epoch": 0, "best_state": None, "history": []}
    if (outdir / STATE).is_file():
        ck = torch.load(outdir / STATE, map_location="cpu", weights_only=False)
        if ck.get("fingerprint") == fp and ck["state"]["epoch"] > ts.epochs:
            log(f"{outdir / STATE}: at epoch {ck['state']['epoch']}, past epochs {ts.epochs}; starting afresh")
        elif ck.get("fingerprint") == fp:
            model.load_state_dict(ck["model"])
            optim.load_state_dict(ck["optim"])
            gen.set_state(ck["rng"])
            st = ck["state"]
            log(f"resuming at epoch {st['epoch']} from {outdir / STATE}")
        else:
            log(f"{outdir / STATE}: from other settings or data; starting afresh")
    while st["epoch"] < ts.epochs and st["epoch"] - st["best_epoch"] < ts.patience:
        t1 = time.perf_counter()
        trm = _run_epoch(model, tr, ytr, ts, optim, gen)
        vam = _run_epoch(model, va, yva, ts)
        st["epoch"] += 1
        row = {"epoch": st["epoch"], "seconds": time.perf_counter() - t1,
               **{f"train_{k}": v for k, v in trm.items()}, **{f"val_{k}": v for k, v in vam.items()}}
        st["history"].append(row)
        if not math.isfinite(vam["mae_K"]):
            raise FloatingPointError(f"{outdir}: validation MAE is not finite at epoch {st['epoch']}")
        if vam["mae_K"] < st["best_val"]:
            st.update(best_val=vam["mae_K"], best_epoch=st["epoch"],
                      best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
        log(f"epoch {st['epoch']}: train loss {trm['loss']:.3f} MAE {trm['mae_K']:.3f} K, "
            f"val MAE {vam['mae_K']:.3f} K ({row['seconds']:.1f} s)")
        with atomic_path(outdir / STATE) as tmp:
            torch.save({"fingerprint": fp, "model": model.state_dict(), "optim": optim.state_dict(),
                        "rng": gen.get_state(), "state": st}, tmp)
        _write_loss_files(outdir, st["history"])
    if not st["history"]:
        raise ValueError(f"{outdir}: no epoch trained (epochs: {ts.epochs})")
    _write_loss_files(outdir, st["history"])
    model.load_state_dict(st["best_state"])
    save_model(outdir, model, mcfg, gs, extra={"target": "Tc_K", "target_transform": ts.target_transform,
                                                "random_seed": seed, "epochs": st["epoch"],
                                                "best_epoch": st["best_epoch"], "tcflow_train": asdict(ts)})
    return {"epochs_run": st["epoch"], "best_epoch": st["best_epoch"], "best_val_mae_K": st["best_val"],
            "n_train": len(tr), "n_val": len(va), "seed": seed, "train_mean_K": float(ytr.mean()),
            "seconds_per_epoch": float(np.mean([r["seconds"] for r in st["history"]]))}
