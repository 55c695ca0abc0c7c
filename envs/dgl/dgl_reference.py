"""Frozen outputs of alignn's DGL ALIGNN, for the test of its plain-torch port
(tcflow/screen/legacy.py). Runs in the optional DGL environment only (`make dgl-env`), never in
the main one; needs no network.

A small ALIGNN (alignn's `alignn` model, BatchNorm) with seeded random weights, and random
BatchNorm statistics and affine parameters so that they matter, predicts the first N structures
of the JARVIS-SC test split through alignn's own legacy graph (`Graph.atom_dgl_multigraph`,
k-nearest: cutoff 8 A, 12 neighbours, use_canonize, CGCNN features), one at a time and as one
DGL batch. Written to OUT (a model directory in alignn's layout plus reference.json):

- config.json, best_model.pt: the model, loadable by tcflow.screen.model.load_model
- reference.json: each structure (id, lattice matrix, fractional coordinates, elements: the
  jarvis Atoms the graphs were built from), its graph's edge and line-graph edge counts, the
  prediction one at a time and in the batch, and the versions used

Usage (from the repository root): .venv-dgl/bin/python envs/dgl/dgl_reference.py [--n 12] [--out DIR]
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import dgl
import numpy as np
import torch
from alignn.graphs import Graph
from alignn.models.alignn import ALIGNN, ALIGNNConfig
from jarvis.core.atoms import Atoms

REPO = Path(__file__).resolve().parents[2]
SPLIT = REPO.parent / "shared" / "data" / "jarvis_supercon" / "test.csv"
OUT = REPO / "tests" / "screen" / "fixtures" / "dgl_alignn"
MODEL = {"name": "alignn", "alignn_layers": 2, "gcn_layers": 2, "atom_input_features": 92,
         "edge_input_features": 80, "triplet_input_features": 40, "embedding_features": 16,
         "hidden_features": 32, "output_features": 1, "link": "identity"}
GRAPH = {"neighbor_strategy": "k-nearest", "cutoff": 8.0, "max_neighbors": 12, "use_canonize": True,
         "atom_features": "cgcnn"}


def model(seed: int = 0) -> ALIGNN:
    torch.manual_seed(seed)
    m = ALIGNN(ALIGNNConfig(**MODEL))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                n = mod.num_features
                mod.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                mod.weight.copy_(0.5 + torch.rand(n, generator=gen))
                mod.bias.copy_(0.2 * torch.randn(n, generator=gen))
        m.fc.bias.fill_(3.0)
    return m.eval()


def graph(atoms: Atoms):
    return Graph.atom_dgl_multigraph(atoms, neighbor_strategy="k-nearest", cutoff=GRAPH["cutoff"],
                                     max_neighbors=GRAPH["max_neighbors"], atom_features="cgcnn",
                                     compute_line_graph=True, use_canonize=GRAPH["use_canonize"])


def forward(m, g, lg):
    """alignn's ALIGNN takes (g, lg) in older releases and (g, lg, lattice) in newer ones."""
    try:
        return m((g, lg))
    except ValueError:
        return m((g, lg, torch.zeros(1, 3, 3)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.DictReader(open(SPLIT)))[:args.n]
    m = model()
    structs, graphs = [], []
    for row in rows:
        c = Atoms.from_cif(from_string=row["cif"], use_cif2cell=False)
        # the graph is built from Atoms made the way the port makes them (lattice and fractional
        # coordinates): equidistant neighbours at the k-th shell are kept or dropped on the last bit
        a = Atoms(lattice_mat=np.asarray(c.lattice_mat), coords=np.asarray(c.frac_coords), elements=list(c.elements),
                  cartesian=False)
        g, lg = graph(a)
        graphs.append((g, lg))
        with torch.no_grad():
            single = float(forward(m, g, lg))
        structs.append({"id": row["material_id"], "lattice": np.asarray(a.lattice_mat).tolist(),
                        "frac": np.asarray(a.frac_coords).tolist(), "elements": list(a.elements),
                        "edges": int(g.num_edges()), "line_graph_edges": int(lg.num_edges()),
                        "pred_single": single})
    with torch.no_grad():
        batched = forward(m, dgl.batch([g for g, _ in graphs]), dgl.batch([lg for _, lg in graphs]))
    for s, p in zip(structs, batched.reshape(-1).tolist()):
        s["pred_batched"] = p
    torch.save(m.state_dict(), out / "best_model.pt")
    (out / "config.json").write_text(json.dumps({"model": MODEL, **GRAPH}, indent=1) + "\n")
    import alignn

    (out / "reference.json").write_text(json.dumps({
        "what": "alignn's DGL ALIGNN, seeded random weights and BatchNorm statistics, on the first "
                f"{args.n} structures of the JARVIS-SC test split (envs/dgl/dgl_reference.py)",
        "versions": {"alignn": alignn.__version__, "dgl": dgl.__version__, "torch": torch.__version__},
        "structures": structs}, indent=1) + "\n")
    print(f"wrote {out}: {len(structs)} structures, predictions {[round(s['pred_single'], 4) for s in structs]}")


if __name__ == "__main__":
    main()
