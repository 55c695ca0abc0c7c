"""Quantum ESPRESSO electron-phonon stage: protocols (``protocols.yaml``, :mod:`.protocol`),
pseudopotentials, spglib symmetrisation, input writers, runner with output classification and
retries, parsers, McMillan / Allen-Dynes Tc (:mod:`.eliashberg`), and the per-step functions
(:mod:`.steps`) that ``rules/dft.smk`` calls."""
