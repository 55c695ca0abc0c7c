"""ALIGNN property models (alignn's ``alignn_atomwise_pure``, no DGL): build, save, load strictly,
predict in batches. The DGL-era ``alignn`` model (BatchNorm, the legacy k-NN graph; the paper's
pretrained models) loads into its plain-torch port, :mod:`tcflow.screen.legacy`.

A model directory has alignn's layout: ``config.json`` (alignn's training config: ``model``
section plus the graph keys ``neighbor_strategy``, ``cutoff``, ``max_neighbors``,
``three_body_cutoff``, ``atom_features``) and ``best_model.pt`` (a state dict). Loading is strict:
every parameter and buffer of the model built from ``config.json`` must be in the file with its
shape, and nothing else; a model needing a graph builder not reproduced here (alignn's
``pure_torch`` and ``k-nearest`` are) is refused. An
ensemble is a directory of such directories (``member_*/``) or a single one.

Property models here are scalar (``output_features`` 1) with the force/stress/atomwise heads off
(weights 0), so ``out`` is the graph-level prediction in the target's unit, or in the transformed
unit named by config.json's ``target_transform`` (``log1p``: the model predicts log(1 + Tc/K);
absent or ``none``: the target itself); :class:`Ensemble` returns the target's unit either way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tcflow.screen.graphs import GraphSettings, batch

CONFIG_JSON = "config.json"
WEIGHTS = "best_model.pt"
MODEL_NAME = "alignn_atomwise_pure"
#: config.json ``target_transform`` -> (forward on the target, inverse on the model's output).
TARGET_TRANSFORMS = {"none": (lambda y: y, lambda z: z), "log1p": (np.log1p, np.expm1)}


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded as asked; the message is one line naming what is wrong."""


def model_config(hidden: int = 64, embedding: int = 64, alignn_layers: int = 2, gcn_layers: int = 2,
                 edge_bins: int = 80, triplet_bins: int = 40) -> dict:
    """The ``model`` section of config.json for a scalar property model (CGCNN atom features)."""
    return {"name": MODEL_NAME, "atom_input_features": 92, "hidden_features": hidden,
            "embedding_features": embedding, "alignn_layers": alignn_layers, "gcn_layers": gcn_layers,
            "edge_input_features": edge_bins, "triplet_input_features": triplet_bins,
            "output_features": 1, "calculate_gradient": False, "gradwise_weight": 0.0,
            "stresswise_weight": 0.0, "atomwise_weight": 0.0, "graphwise_weight": 1.0,
            "atomwise_output_features": 0, "use_zbl": False, "classification": False, "link": "identity"}


def build_model(mcfg: dict, where: str = "model"):
    """The model of a config.json ``model`` section: ``alignn_atomwise_pure`` (alignn's), or the
    DGL-era ``alignn`` (its plain-torch port, :mod:`tcflow.screen.legacy`)."""
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig

    from tcflow.screen.legacy import LEGACY_NAME, LegacyALIGNN, legacy_config

    name = mcfg.get("name")
    if name not in (MODEL_NAME, LEGACY_NAME):
        raise ModelLoadError(f"{where}: model name {name!r} is not {MODEL_NAME!r} or {LEGACY_NAME!r} "
                             "(the only ALIGNN models reproduced here)")
    for key, want in (("output_features", 1), ("classification", False)):
        if mcfg.get(key, want) != want:
            raise ModelLoadError(f"{where}: {key} {mcfg.get(key)!r}: only scalar regression models are used")
    if name == LEGACY_NAME:
        try:
            return LegacyALIGNN(legacy_config(mcfg, where))
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
    try:
        cfg = ALIGNNAtomWisePureConfig(**mcfg)
    except Exception as exc:
        raise ModelLoadError(f"{where}: invalid model config ({str(exc).splitlines()[0]})") from None
    return ALIGNNAtomWisePure(cfg)


def save_model(model_dir: str | Path, model, mcfg: dict, gs: GraphSettings, extra: dict | None = None) -> None:
    """Write config.json and best_model.pt (atomically) in alignn's layout."""
    from tcflow.io import atomic_path, atomic_write_json

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    atomic_write_json(model_dir / CONFIG_JSON, {"model": mcfg, **gs.to_alignn(), **(extra or {})})


def _short(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def load_model(model_dir: str | Path, device: str = "cpu"):
    """(model in eval mode, GraphSettings) from a model directory; strict (see module docstring)."""
    model, gs, _ = _load(model_dir, device)
    return model, gs


def _load(model_dir: str | Path, device: str = "cpu"):
    """:func:`load_model` plus the directory's ``target_transform``."""
    from tcflow.screen.graphs import GraphError

    model_dir = Path(model_dir)
    for f in (CONFIG_JSON, WEIGHTS):
        if not (model_dir / f).is_file():
            raise ModelLoadError(f"{model_dir}: no {f} (a model directory holds {CONFIG_JSON} and {WEIGHTS})")
    try:
        cfg = json.loads((model_dir / CONFIG_JSON).read_text())
        mcfg = dict(cfg["model"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{model_dir / CONFIG_JSON}: unreadable ({exc})") from None
    try:
        gs = GraphSettings.from_alignn(cfg, str(model_dir / CONFIG_JSON))
    except GraphError as exc:
        raise ModelLoadError(str(exc)) from None
    transform = target_transform(cfg, str(model_dir / CONFIG_JSON))
    model = build_model(mcfg, str(model_dir / CONFIG_JSON))
    try:
        state = torch.load(model_dir / WEIGHTS, map_location=device, weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{model_dir / WEIGHTS}: unreadable ({str(exc).splitlines()[0]})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    shapes = [k for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} of {len(want)} parameters/buffers: {_short(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} entries with no slot in the model: {_short(unexpected)}")
        if shapes:
            parts.append(f"shape mismatch for {_short(shapes)}")
        raise ModelLoadError(f"{model_dir / WEIGHTS}: refused, does not match the model of its config.json: "
                             + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), gs, transform


def target_transform(cfg: dict, where: str) -> str:
    """The ``target_transform`` of a config.json (``none`` when absent); unknown ones are refused."""
    name = cfg.get("target_transform", "none")
    if name not in TARGET_TRANSFORMS:
        raise ModelLoadError(f"{where}: target_transform {name!r} is not one of {sorted(TARGET_TRANSFORMS)}")
    return name


def ensemble_dir(tc_input) -> str:
    """The model directory a rule's ``tc`` input names: a checkpoint/pretrained directory, or the
    parent of the trained members (``member_<m>/``)."""
    return tc_input if isinstance(tc_input, str) else str(Path(tc_input[0]).parent)


def member_dirs(path: str | Path) -> list[Path]:
    """The model directories of an ensemble directory (``*/config.json``), or ``[path]``."""
    path = Path(path)
    if (path / CONFIG_JSON).is_file():
        return [path]
    members = sorted(p.parent for p in path.glob(f"*/{CONFIG_JSON}"))
    if not members:
        raise ModelLoadError(f"{path}: no {CONFIG_JSON} here or in its subdirectories (not a model directory)")
    return members


@dataclass
class Ensemble:
    """Models sharing one graph definition; predictions are the members' mean and std, in the
    target's unit (each member's output through the inverse of its ``target_transform``)."""

    models: list
    graph: GraphSettings
    dirs: list[Path] = field(default_factory=list)
    transforms: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Ensemble":
        loaded = [(d, *_load(d, device)) for d in member_dirs(path)]
        graphs = {gs for _, _, gs, _ in loaded}
        if len(graphs) > 1:
            raise ModelLoadError(f"{path}: ensemble members use different graph settings {sorted(map(str, graphs))}")
        return cls([m for _, m, _, _ in loaded], loaded[0][2], [d for d, *_ in loaded], [t for *_, t in loaded])

    @torch.no_grad()
    def predict(self, pairs: list, batch_size: int = 8, max_edges: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members for each graph pair, in chunks of at most ``batch_size`` graphs
        and about ``max_edges`` line-graph edges (bounded memory). NaN where a member gives NaN."""
        out = np.full((len(self.models), len(pairs)), np.nan)
        inverse = [TARGET_TRANSFORMS[t][1] for t in self.transforms or ["none"] * len(self.models)]
        for lo, hi in chunks(pairs, batch_size, max_edges):
            inp = batch(pairs[lo:hi])
            for m, model in enumerate(self.models):
                out[m, lo:hi] = inverse[m](model(inp)["out"].reshape(-1).double().cpu().numpy())
        std = out.std(axis=0) if len(self.models) > 1 else np.zeros(len(pairs))
        return out.mean(axis=0), std


def chunks(pairs: list, batch_size: int, max_edges: int):
    """(lo, hi) index ranges of consecutive graphs, each within both limits (at least one graph)."""
    lo = 0
    while lo < len(pairs):
        hi, edges = lo, 0
        while hi < len(pairs) and hi - lo < batch_size:
            e = pairs[hi][1].num_edges
            if hi > lo and edges + e > max_edges:
                break
            edges += e
            hi += 1
        yield lo, hi
        lo = hi


def finite(x: float) -> bool:
    return x is not None and math.isfinite(float(x))
