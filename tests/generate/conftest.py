"""Shared fixtures of the generate-stage tests: the raw JARVIS-SC mirror (Tc = -prop)."""

from pathlib import Path

import pytest

MIRROR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "jarvis_supercon"


@pytest.fixture(scope="session")
def split_csv():
    def path(name: str) -> Path:
        p = MIRROR / f"{name}.csv"
        if not p.exists():
            pytest.skip(f"dataset mirror missing: {p}")
        return p
    return path


@pytest.fixture(scope="session")
def val_crystals(split_csv):
    from tcflow.generate.dataset import read_crystals

    return read_crystals(split_csv("val"))
