"""Crystals as tensors for the CDVAE model.

A split file is read (the data stage's ``results/data/*.csv`` with ``tc_K``, or the raw
JARVIS-SC mirror with ``prop`` = -Tc K), each CIF is Niggli-reduced, and the crystals are
kept as a list of :class:`Crystal`; :func:`collate` concatenates crystals into a batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from tcflow.generate.lattice import params_to_matrix
from tcflow.structures import read_split, split_tc_K, structure_from_cif_text

#: Largest atomic number the model knows (type vocabulary is 1..MAX_Z).
MAX_Z = 100


@dataclass
class Crystal:
    """One crystal: ``frac`` (n, 3) in [0, 1), ``z`` (n,) atomic numbers, ``lengths`` (3,) Å,
    ``angles`` (3,) deg, ``tc`` K, ``id`` str."""

    id: str
    frac: np.ndarray
    z: np.ndarray
    lengths: np.ndarray
    angles: np.ndarray
    tc: float


@dataclass
class Batch:
    """Concatenated crystals. frac (N, 3); z (N,) long; natoms (B,) long; batch (N,) long;
    lengths (B, 3) Å; angles (B, 3) deg; lattice (B, 3, 3) Å; tc (B,) K."""

    frac: torch.Tensor
    z: torch.Tensor
    natoms: torch.Tensor
    batch: torch.Tensor
    lengths: torch.Tensor
    angles: torch.Tensor
    lattice: torch.Tensor
    tc: torch.Tensor

    def to(self, device) -> "Batch":
        return Batch(**{k: v.to(device) for k, v in self.__dict__.items()})

    @property
    def num_graphs(self) -> int:
        return len(self.natoms)


def crystal_from_structure(struct, tc: float, cid: str, niggli: bool = True) -> Crystal:
    """A :class:`Crystal` from a pymatgen Structure (Niggli-reduced when ``niggli``)."""
    if niggli:
        struct = struct.get_reduced_structure()
    z = np.array([site.specie.Z for site in struct], dtype=np.int64)
    if z.max() > MAX_Z:
        raise ValueError(f"{cid}: element Z={z.max()} beyond the model's vocabulary (Z<={MAX_Z})")
    frac = np.mod(struct.frac_coords, 1.0)
    lat = struct.lattice
    return Crystal(id=cid, frac=frac.astype(np.float32), z=z,
                   lengths=np.array(lat.abc, dtype=np.float32),
                   angles=np.array(lat.angles, dtype=np.float32), tc=float(tc))


def read_crystals(path: str | os.PathLike, niggli: bool = True, limit: int | None = None) -> list[Crystal]:
    """Crystals of a split CSV. Tc comes from ``tc_K``, or ``-prop`` for the raw mirror files.

    A malformed CIF raises :class:`tcflow.structures.StructureError` (a ``ValueError``) naming
    the file and the material id.
    """
    df = read_split(path, "any")
    tc = split_tc_K(df, path)
    out = []
    for k, (mid, cif, t) in enumerate(zip(df["material_id"], df["cif"], tc)):
        if limit is not None and k >= limit:
            break
        s = structure_from_cif_text(cif, f"{path}: {mid}")
        out.append(crystal_from_structure(s, t, str(mid), niggli=niggli))
    if not out:
        raise ValueError(f"{path}: no structures")
    return out


def collate(crystals: list[Crystal]) -> Batch:
    """Concatenate crystals into a :class:`Batch` (float32 on CPU)."""
    natoms = torch.tensor([len(c.z) for c in crystals], dtype=torch.long)
    lengths = torch.tensor(np.stack([c.lengths for c in crystals]))
    angles = torch.tensor(np.stack([c.angles for c in crystals]))
    return Batch(
        frac=torch.tensor(np.concatenate([c.frac for c in crystals])),
        z=torch.tensor(np.concatenate([c.z for c in crystals])),
        natoms=natoms,
        batch=torch.repeat_interleave(torch.arange(len(crystals)), natoms),
        lengths=lengths, angles=angles, lattice=params_to_matrix(lengths, angles),
        tc=torch.tensor([c.tc for c in crystals], dtype=torch.float32),
    )


def batches(crystals: list[Crystal], batch_size: int, generator: torch.Generator | None = None,
            shuffle: bool = False):
    """Yield :class:`Batch` objects of ``batch_size`` crystals (last one may be smaller)."""
    order = torch.randperm(len(crystals), generator=generator).tolist() if shuffle else range(len(crystals))
    order = list(order)
    for s in range(0, len(order), batch_size):
        yield collate([crystals[k] for k in order[s:s + batch_size]])


def scaled_lengths(lengths: torch.Tensor, natoms: torch.Tensor) -> torch.Tensor:
    """Lattice lengths (B, 3) Å divided by N^(1/3), as CDVAE scales them."""
    return lengths / natoms.to(lengths.dtype)[:, None] ** (1.0 / 3.0)


def n_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
