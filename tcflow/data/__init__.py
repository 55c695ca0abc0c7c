"""Data stage: the JARVIS-DFT superconductor set (mirror or jarvis-tools) and pseudopotentials."""
