"""CDVAE generator (Xie et al. 2021) in torch: encoder -> latent heads (atom count, lattice,
composition, Tc) -> noise-conditional score decoder -> annealed Langevin sampler, with
property-guided latent optimisation.

Public surface (what the rules call): :func:`train`, :func:`sample_shard` (latent
optimisation + decoding), :func:`optimise_latents`, :func:`merge_manifests`,
:func:`generation_metrics`. Imports are lazy so that ``import tcflow.generate`` stays cheap.
"""

from __future__ import annotations

_EXPORTS = {
    "train": "tcflow.generate.train",
    "load_model": "tcflow.generate.train",
    "sample_shard": "tcflow.generate.sample",
    "merge_manifests": "tcflow.generate.sample",
    "optimise_latents": "tcflow.generate.optimise",
    "langevin_decode": "tcflow.generate.sampler",
    "generation_metrics": "tcflow.generate.metrics",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)


__all__ = sorted(_EXPORTS)
