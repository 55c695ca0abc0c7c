"""The DGL-era ALIGNN (alignn's model ``alignn``) in plain torch, so that its checkpoints, the
paper's pretrained ``jv_*`` models among them, run without DGL.

It is the architecture of ``alignn.models.alignn.ALIGNN`` (Choudhary & DeCost 2021), with the same
module tree, so a DGL-era ``best_model.pt`` fills it exactly (checked strictly by
:func:`tcflow.screen.model.load_model`): BatchNorm (not the LayerNorm of
``alignn_atomwise_pure``), edge-gated graph convolutions on the crystal graph and on its line
graph, mean pooling, one linear output with the config's ``link``. DGL's message passing becomes
index arithmetic: in a convolution over edges ``src -> dst``,

    m_e   = W_src x[src] + W_dst x[dst] + W_edge y_e           (edge gate, before its BatchNorm)
    h_i   = sum_{e -> i} sigmoid(m_e) * (B x)[src] / (sum_{e -> i} sigmoid(m_e) + 1e-6)
    x'    = x + SiLU(BN(U x + h)),   y' = y + SiLU(BN(m))

It runs on the graphs of :func:`tcflow.screen.graphs.build_graph` with ``neighbor_strategy:
k-nearest`` (alignn's legacy k-NN graph; line graph over every pair of bonds meeting at an atom,
bond-angle cosines on it). Equivalence with alignn's DGL implementation is tested on frozen
outputs of DGL ALIGNN (``tests/screen/fixtures/dgl_alignn/``, written by
``envs/dgl/dgl_reference.py`` in the optional DGL environment, ``make dgl-env``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: config.json ``model.name`` of alignn's DGL-era model.
LEGACY_NAME = "alignn"
#: alignn's ALIGNNConfig defaults (the keys a config.json may leave out).
DEFAULTS = {"alignn_layers": 4, "gcn_layers": 4, "atom_input_features": 92, "edge_input_features": 80,
            "triplet_input_features": 40, "embedding_features": 64, "hidden_features": 256,
            "output_features": 1, "link": "identity", "zero_inflated": False, "classification": False,
            "num_classes": 2, "extra_features": 0}
LINKS = {"identity": lambda x: x, "log": torch.exp, "logit": torch.sigmoid}


def legacy_config(mcfg: dict, where: str) -> dict:
    """The full model config (alignn's defaults filled in); ValueError, naming the key, for keys
    alignn's ALIGNNConfig does not know and for variants not ported (classification, extra
    features, zero inflation)."""
    unknown = sorted(set(mcfg) - set(DEFAULTS) - {"name"})
    if unknown:
        raise ValueError(f"{where}: model keys {unknown} are not alignn's ALIGNN config")
    cfg = {**DEFAULTS, **{k: v for k, v in mcfg.items() if k != "name"}}
    for key, want in (("classification", False), ("zero_inflated", False), ("extra_features", 0)):
        if cfg[key] != want:
            raise ValueError(f"{where}: {key} {cfg[key]!r} is not ported (scalar regression models only)")
    if cfg["link"] not in LINKS:
        raise ValueError(f"{where}: link {cfg['link']!r} is not one of {sorted(LINKS)}")
    return cfg


class MLPLayer(nn.Module):
    """Linear, BatchNorm, SiLU (``layer.0``, ``layer.1``: alignn's names)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.SiLU())

    def forward(self, x):
        return self.layer(x)


class EdgeGatedGraphConv(nn.Module):
    """Edge-gated graph convolution with BatchNorm (module docstring), residual."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.src_gate = nn.Linear(n_in, n_out)
        self.dst_gate = nn.Linear(n_in, n_out)
        self.edge_gate = nn.Linear(n_in, n_out)
        self.bn_edges = nn.BatchNorm1d(n_out)
        self.src_update = nn.Linear(n_in, n_out)
        self.dst_update = nn.Linear(n_in, n_out)
        self.bn_nodes = nn.BatchNorm1d(n_out)

    def forward(self, src, dst, x, y):
        m = self.src_gate(x)[src] + self.dst_gate(x)[dst] + self.edge_gate(y)
        sigma = torch.sigmoid(m)
        num = torch.zeros(x.shape[0], m.shape[1], dtype=m.dtype).index_add_(0, dst, self.dst_update(x)[src] * sigma)
        den = torch.zeros(x.shape[0], m.shape[1], dtype=m.dtype).index_add_(0, dst, sigma)
        h = self.src_update(x) + num / (den + 1e-6)
        return x + F.silu(self.bn_nodes(h)), y + F.silu(self.bn_edges(m))


class ALIGNNConv(nn.Module):
    """One ALIGNN layer: a convolution on the crystal graph, then one on its line graph."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.node_update = EdgeGatedGraphConv(n_in, n_out)
        self.edge_update = EdgeGatedGraphConv(n_out, n_out)

    def forward(self, g, lg, x, y, z):
        x, m = self.node_update(g.src, g.dst, x, y)
        y, z = self.edge_update(lg.src, lg.dst, m, z)
        return x, y, z


class LegacyALIGNN(nn.Module):
    """alignn's DGL-era ``ALIGNN`` (scalar output) on TorchGraph pairs; ``forward`` returns
    ``{"out": (n_graphs,)}`` like ``alignn_atomwise_pure``."""

    def __init__(self, cfg: dict):
        from alignn.models.utils import RBFExpansion

        super().__init__()
        h, emb = cfg["hidden_features"], cfg["embedding_features"]
        self.atom_embedding = MLPLayer(cfg["atom_input_features"], h)
        self.edge_embedding = nn.Sequential(RBFExpansion(vmin=0, vmax=8.0, bins=cfg["edge_input_features"]),
                                            MLPLayer(cfg["edge_input_features"], emb), MLPLayer(emb, h))
        self.angle_embedding = nn.Sequential(RBFExpansion(vmin=-1, vmax=1.0, bins=cfg["triplet_input_features"]),
                                             MLPLayer(cfg["triplet_input_features"], emb), MLPLayer(emb, h))
        self.alignn_layers = nn.ModuleList([ALIGNNConv(h, h) for _ in range(cfg["alignn_layers"])])
        self.gcn_layers = nn.ModuleList([EdgeGatedGraphConv(h, h) for _ in range(cfg["gcn_layers"])])
        self.fc = nn.Linear(h, cfg["output_features"])
        self.link = LINKS[cfg["link"]]

    def forward(self, inp) -> dict:
        g, lg = inp[0], inp[1]
        z = self.angle_embedding(lg.edata["h"])
        x = self.atom_embedding(g.ndata["atom_features"])
        y = self.edge_embedding(torch.norm(g.edata["r"], dim=1))
        for layer in self.alignn_layers:
            x, y, z = layer(g, lg, x, y, z)
        for layer in self.gcn_layers:
            x, y = layer(g.src, g.dst, x, y)
        graph = g.node_batch_id
        n = g.batch_size
        pooled = torch.zeros(n, x.shape[1], dtype=x.dtype).index_add_(0, graph, x)
        pooled = pooled / torch.bincount(graph, minlength=n).clamp_min(1).unsqueeze(1).to(x.dtype)
        return {"out": self.link(self.fc(pooled)).reshape(n, -1).squeeze(1)}
