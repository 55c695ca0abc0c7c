"""The plain-torch port of alignn's DGL-era ALIGNN (tcflow/screen/legacy.py) against frozen
outputs of alignn's own DGL implementation: same weights (seeded, BatchNorm statistics randomised),
same JARVIS-SC structures, alignn's legacy k-NN graph. The fixture was written in the optional
DGL environment by envs/dgl/dgl_reference.py (alignn 2024.5.27, dgl 2.1.0, torch 2.1.2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from tcflow.screen.graphs import build_graph
from tcflow.screen.legacy import LegacyALIGNN
from tcflow.screen.model import Ensemble, load_model

FIXTURE = Path(__file__).parent / "fixtures" / "dgl_alignn"


def _reference():
    ref = json.loads((FIXTURE / "reference.json").read_text())
    structs = [Structure(Lattice(np.array(s["lattice"])), s["elements"], np.array(s["frac"]))
               for s in ref["structures"]]
    return ref["structures"], structs


def test_dgl_checkpoint_fills_the_port_and_predicts_what_dgl_alignn_predicts():
    rows, structs = _reference()
    model, gs = load_model(FIXTURE)  # strict: every parameter and BatchNorm buffer, nothing else
    assert isinstance(model, LegacyALIGNN) and gs.neighbor_strategy == "k-nearest"
    pairs = [build_graph(s, gs) for s in structs]
    assert [g.num_edges for g, _ in pairs] == [r["edges"] for r in rows]
    assert [lg.num_edges for _, lg in pairs] == [r["line_graph_edges"] for r in rows]
    single = np.array([Ensemble.load(FIXTURE).predict([p])[0][0] for p in pairs])
    batched, _ = Ensemble.load(FIXTURE).predict(pairs, batch_size=5)
    want = np.array([r["pred_single"] for r in rows])
    assert np.allclose(single, want, rtol=0, atol=1e-6), np.abs(single - want).max()
    assert np.allclose(batched, [r["pred_batched"] for r in rows], rtol=0, atol=1e-6)
    # the structures are told apart well beyond that tolerance
    assert np.ptp(want) > 0.1


def test_batchnorm_statistics_matter():
    """The near miss alignn's strict=False loader makes: the same weights with LayerNorm-like
    unit statistics (running mean 0, variance 1) predict something else."""
    rows, structs = _reference()
    model, gs = load_model(FIXTURE)
    pairs = [build_graph(s, gs) for s in structs[:3]]
    from tcflow.screen.graphs import batch

    with torch.no_grad():
        good = model(batch(pairs))["out"]
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
        bad = model(batch(pairs))["out"]
    assert (good - bad).abs().max() > 0.05
