"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_helpers import SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data" / "jarvis_supercon").is_dir():
        pytest.fail(f"data mirror not found at {SHARED} (set TCFLOW_MIRROR)")
    return SHARED
