"""ALIGNN crystal graphs without DGL: alignn's pure-torch builder, with the atom features cached,
and alignn's legacy k-NN graph (``neighbor_strategy: "k-nearest"``, what the DGL-era models use).

A graph pair ``(g, lg)`` is what ``alignn.torch_graph_builder.build_pure_torch_graph`` returns
(``neighbor_strategy: "pure_torch"``): directed edges to the ``max_neighbors`` nearest periodic
images within ``cutoff_A`` (Å), and a line graph over the edges no longer than
``three_body_cutoff_A`` (Å) carrying bond-angle cosines. The same alignn primitives build it here
(neighbour list, line graph, cosines); only the per-atom CGCNN feature lookup is cached, so a graph
costs milliseconds instead of the builder's ~0.1 s. ``tests/screen/test_screen_graphs.py`` checks
that both give the same tensors.

The legacy graph (:func:`build_legacy_graph`) comes from alignn's own ``nearest_neighbor_edges``
and ``build_undirected_edgedata`` (no DGL in them): every neighbour out to the shell of the
``max_neighbors``-th nearest (ties kept; the cutoff grows until every atom has that many), both
directions of each bond, and a line graph over every pair of bonds meeting at an atom (DGL's
``line_graph(shared=True)``, no three-body cutoff; like DGL's, it leaves out the pair of a bond
from an atom to its own periodic image with itself) with the bond-angle cosines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: CGCNN features exist for Z = 1..100 in jarvis-tools; heavier elements cannot be embedded.
MAX_Z = 100
#: Atoms closer than this (Å) are overlapping: no graph (and no MLIP relaxation) is attempted.
MIN_DISTANCE_A = 0.5


class GraphError(ValueError):
    """A structure for which no graph can be built; the message is the reason (one line)."""


@dataclass(frozen=True)
class GraphSettings:
    """cutoff_A: two-body cutoff (Å); max_neighbors: per-atom cap (nearest kept);
    three_body_cutoff_A: only edges this short (Å) form angle triplets (pure_torch only);
    atom_features: CGCNN; neighbor_strategy: pure_torch or k-nearest (the legacy graph);
    use_canonize: k-nearest's edge de-duplication (alignn's default, True)."""

    cutoff_A: float = 8.0
    max_neighbors: int = 12
    three_body_cutoff_A: float = 3.5
    atom_features: str = "cgcnn"
    neighbor_strategy: str = "pure_torch"
    use_canonize: bool = True

    def to_alignn(self) -> dict:
        """The keys alignn's config.json uses for these settings."""
        common = {"neighbor_strategy": self.neighbor_strategy, "cutoff": self.cutoff_A,
                  "max_neighbors": self.max_neighbors, "atom_features": self.atom_features}
        if self.neighbor_strategy == "k-nearest":
            return {**common, "use_canonize": self.use_canonize}
        return {**common, "three_body_cutoff": self.three_body_cutoff_A}

    @classmethod
    def from_alignn(cls, cfg: dict, where: str) -> "GraphSettings":
        """From an alignn config.json (alignn's defaults where a key is absent: k-nearest,
        use_canonize true); refuses graph builders this module does not reproduce."""
        strategy = cfg.get("neighbor_strategy", "k-nearest")
        if strategy not in STRATEGIES:
            raise GraphError(f"{where}: neighbor_strategy {strategy!r} is not reproduced here "
                             f"(only alignn's {' and '.join(map(repr, STRATEGIES))} graphs are built without DGL)")
        feats = cfg.get("atom_features", "cgcnn")
        if feats != "cgcnn":
            raise GraphError(f"{where}: atom_features {feats!r} not supported (cgcnn only)")
        three = cfg.get("three_body_cutoff")
        return cls(cutoff_A=float(cfg.get("cutoff", 8.0)), max_neighbors=int(cfg.get("max_neighbors", 12)),
                   three_body_cutoff_A=float(three if three is not None else cfg.get("cutoff", 8.0)),
                   atom_features=feats, neighbor_strategy=strategy,
                   use_canonize=bool(cfg.get("use_canonize", True)))


#: Graph builders reproduced here (alignn's ``neighbor_strategy`` names).
STRATEGIES = ("pure_torch", "k-nearest")


_FEATURES: dict[int, np.ndarray] = {}


def atom_feature_table() -> dict[int, np.ndarray]:
    """Z -> CGCNN feature vector (92 floats), read once from jarvis-tools."""
    if not _FEATURES:
        from jarvis.core.specie import get_node_attributes
        from pymatgen.core import Element

        for z in range(1, MAX_Z + 1):
            _FEATURES[z] = np.asarray(get_node_attributes(Element.from_Z(z).symbol, atom_features="cgcnn"),
                                      dtype=np.float32)
    return _FEATURES


def check_structure(struct) -> None:
    """Raise :class:`GraphError` for elements without features and for overlapping atoms."""
    for el in struct.composition.elements:
        z = getattr(el, "Z", None)
        if z is None or not 1 <= z <= MAX_Z:
            raise GraphError(f"element {el} cannot be embedded (CGCNN features only for Z = 1..{MAX_Z})")
    if len(struct) > 1:
        dmin = float(np.min(struct.distance_matrix + np.eye(len(struct)) * 1e9))
        if dmin < MIN_DISTANCE_A:
            raise GraphError(f"overlapping atoms (min distance {dmin:.3f} A < {MIN_DISTANCE_A} A)")
    if struct.volume <= 0 or not np.isfinite(struct.lattice.matrix).all():
        raise GraphError("degenerate lattice")


def build_graph(struct, gs: GraphSettings):
    """(g, lg) TorchGraphs of a pymatgen Structure, float32, no autograd (see module docstring)."""
    from alignn.torch_graph_builder import TorchGraph, _line_graph_edges, torch_bond_cosines, torch_neighbor_list

    check_structure(struct)
    if gs.neighbor_strategy == "k-nearest":
        return build_legacy_graph(struct, gs)
    table = atom_feature_table()
    dtype = torch.float32
    lattice = torch.as_tensor(np.asarray(struct.lattice.matrix), dtype=dtype)
    positions = torch.as_tensor(np.asarray(struct.cart_coords), dtype=dtype)
    n = len(struct)
    with torch.no_grad():
        src, dst, shift, r = torch_neighbor_list(positions=positions, lattice=lattice, cutoff=gs.cutoff_A,
                                                 max_neighbors=gs.max_neighbors, atoms=None,
                                                 use_matscipy_topology=False)
        zs = [site.specie.Z for site in struct]
        feats = torch.as_tensor(np.stack([table[z] for z in zs]), dtype=dtype)
        g = TorchGraph(num_nodes=n, src=src, dst=dst,
                       ndata={"atom_features": feats,
                              "frac_coords": torch.as_tensor(np.asarray(struct.frac_coords), dtype=dtype),
                              "V": torch.abs(torch.det(lattice)).expand(n),
                              "Z": torch.as_tensor(zs, dtype=torch.long)},
                       edata={"r": r, "images": shift})
        allowed = None
        if gs.three_body_cutoff_A < gs.cutoff_A:
            allowed = r.norm(dim=1) <= gs.three_body_cutoff_A
        lg_src, lg_dst = _line_graph_edges(src, dst, n, allowed=allowed)
        h = torch_bond_cosines(r[lg_src], r[lg_dst])
        lg = TorchGraph(num_nodes=g.num_edges, src=lg_src, dst=lg_dst, ndata={"r": r, "images": shift},
                        edata={"h": h})
    if g.num_edges == 0:
        raise GraphError(f"no neighbours within {gs.cutoff_A} A")
    return g, lg


def build_legacy_graph(struct, gs: GraphSettings):
    """(g, lg) TorchGraphs of alignn's legacy k-NN graph (module docstring), float32."""
    from alignn.graphs import build_undirected_edgedata, nearest_neighbor_edges
    from alignn.torch_graph_builder import TorchGraph, _line_graph_edges, torch_bond_cosines
    from jarvis.core.atoms import Atoms

    atoms = Atoms(lattice_mat=np.asarray(struct.lattice.matrix), coords=np.asarray(struct.frac_coords),
                  elements=[site.specie.symbol for site in struct], cartesian=False)
    table = atom_feature_table()
    n = len(struct)
    with torch.no_grad():
        edges, _ = nearest_neighbor_edges(atoms=atoms, cutoff=gs.cutoff_A, max_neighbors=gs.max_neighbors,
                                          use_canonize=gs.use_canonize)
        u, v, r, images = build_undirected_edgedata(atoms, edges)
        src, dst, r = u.long(), v.long(), r.to(torch.float32)
        zs = [site.specie.Z for site in struct]
        g = TorchGraph(num_nodes=n, src=src, dst=dst,
                       ndata={"atom_features": torch.as_tensor(np.stack([table[z] for z in zs]), dtype=torch.float32),
                              "Z": torch.as_tensor(zs, dtype=torch.long)},
                       edata={"r": r, "images": images.to(torch.float32)})
        lg_src, lg_dst = _line_graph_edges(src, dst, n)
        keep = lg_src != lg_dst  # DGL's line graph has no pair of a self-image bond with itself
        lg_src, lg_dst = lg_src[keep], lg_dst[keep]
        lg = TorchGraph(num_nodes=g.num_edges, src=lg_src, dst=lg_dst, ndata={"r": r},
                        edata={"h": torch_bond_cosines(r[lg_src], r[lg_dst])})
    if g.num_edges == 0:
        raise GraphError(f"no neighbours within {gs.cutoff_A} A")
    return g, lg


def batch(pairs: list, lattices: list | None = None):
    """One model input from several graph pairs: ``(g, lg, lattice)`` as alignn's collate makes it."""
    from alignn.torch_graph_builder import batch_torch_graph_pairs

    g, lg = batch_torch_graph_pairs(pairs)
    lat = torch.stack(lattices) if lattices else torch.zeros(len(pairs), 3, 3)
    return g, lg, lat
