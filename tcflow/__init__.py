"""tcflow: inverse design of conventional superconductors (CDVAE -> screen -> QE el-ph -> Tc).

The package holds the pipeline's logic; the Snakemake rules call it through thin scripts.
Subpackages mirror the stages: ``data``, ``generate`` (CDVAE), ``screen``, ``dft`` (Quantum
ESPRESSO inputs, runner, parsers, Eliashberg), ``report``.
"""

__version__ = "0.1.0"
