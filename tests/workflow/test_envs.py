"""The conda environment files parse and pin the same versions as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from workflow_helpers import REPO


def _pins(specs) -> dict[str, str]:
    out = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", spec.strip())
        assert m, f"not an exact pin: {spec!r}"
        out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


PYPROJECT = _pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


@pytest.mark.parametrize("name", ["ml.yaml", "qe.yaml"])
def test_env_pins_match_pyproject(name):
    env = yaml.safe_load((REPO / "envs" / name).read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    pins = _pins(pip)
    assert pins, name
    for pkg, version in pins.items():
        assert PYPROJECT.get(pkg) == version, f"{name}: {pkg}=={version} but pyproject pins {PYPROJECT.get(pkg)}"


def test_qe_env_has_quantum_espresso():
    deps = yaml.safe_load((REPO / "envs" / "qe.yaml").read_text())["dependencies"]
    assert any(isinstance(d, str) and d.startswith("qe=") for d in deps)


def test_every_rule_names_an_existing_env():
    for smk in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: conda env {env} missing"
