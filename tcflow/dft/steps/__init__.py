"""The step functions of the el-ph chain, one module per concern; :data:`tcflow.dft.chain.STEPS`
names each by ``module:function``. Every function takes a :class:`tcflow.dft.stage.StepContext`
and returns the step's record (a dict with ``status``); :func:`tcflow.dft.stage.run_step` does
the staging, gating and publishing around it.

- :mod:`.structure`: read, standardise and check the candidate; protocol, pseudos, grids
- :mod:`.pw`: vc-relax, the la2F scf with the metallicity gate, the coarse scf
- :mod:`.ph`: ph.x (one job, or split by q-point and collected); restart in :mod:`.phwork`
- :mod:`.post`: q2r.x, matdyn.x (the stability gate), lambda.x
- :mod:`.tc`: tc.json and metadata.json from the records
"""

from __future__ import annotations

import importlib
from typing import Callable


def resolve(func: str) -> Callable:
    """The step function named ``module:function`` (a module of this package)."""
    module, name = func.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
