"""Config validation: the schema fills defaults, and bad configs fail with the key named."""

from __future__ import annotations

import pytest
import yaml

from workflow_helpers import REPO, run_snakemake
from tcflow.config import ConfigError, check_config, validate_schema

SCHEMA = REPO / "config" / "schema" / "config.schema.json"


def test_defaults_filled_across_refs():
    cfg = validate_schema({}, SCHEMA)
    assert cfg["seed"] == 0
    assert cfg["data"]["split_fractions"] == [0.8, 0.1, 0.1]
    assert cfg["data"]["max_train"] is None
    assert cfg["screen"]["tc_min_K"] == 5.0
    assert cfg["candidates"]["source"] == "generate"
    assert cfg["dft"]["pools"] == "auto"


def _schema_keys(node: dict, path: str):
    """(dotted key, its schema) for every property under ``node``, nested objects included."""
    for key, sub in node.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _schema_keys(sub, f"{path}{key}.")


@pytest.mark.parametrize("section", sorted(p.name for p in SCHEMA.parent.glob("*.schema.json")))
def test_every_key_has_a_description_and_nothing_else_stray(section):
    """Each key documents itself; a description split by a stray comma into a second,
    null-valued 'keyword' (as YAML-to-JSON conversion once did) fails here."""
    import json

    allowed = {"type", "default", "description", "enum", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "properties", "additionalProperties", "items", "minItems",
               "maxItems", "pattern", "format", "$ref", "oneOf", "anyOf", "required", "uniqueItems"}
    schema = json.loads((SCHEMA.parent / section).read_text())
    for key, sub in _schema_keys(schema, ""):
        if "$ref" in sub:          # a section: described in its own file
            continue
        assert isinstance(sub.get("description"), str) and sub["description"].strip(), f"{section}: {key}"
        stray = set(sub) - allowed
        assert not stray, f"{section}: {key}: unexpected schema entries {sorted(stray)}"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = yaml.safe_load((REPO / "config" / name).read_text())
    validate_schema(cfg, SCHEMA)


def test_paper_config_has_the_papers_thresholds():
    cfg = validate_schema(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()), SCHEMA)
    assert cfg["screen"]["tc_min_K"] == 5.0
    assert cfg["screen"]["eform_max_eV_atom"] == 0.0
    assert cfg["screen"]["gap_max_eV"] == 0.05
    assert cfg["data"]["max_train"] is None


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"seed": "one"}, "config error: seed: 'one' is not of type 'integer'"),
        ({"colour": "red"}, "config error: unknown key colour"),
        ({"screen": {"tc_min_K": -1}}, "config error: screen.tc_min_K: -1 is less than the minimum of 0"),
        ({"screen": {"gap_max_eV": -0.1}}, "config error: screen.gap_max_eV"),
        ({"screen": {"tcmin": 5}}, "config error: unknown key screen.tcmin"),
        ({"candidates": {"only": ["bad id"]}}, "config error: candidates.only.0"),
        ({"data": {"split_fractions": [0.5, 0.2, 0.2]}}, "config error: data.split_fractions"),
        ({"dft": {"pools": 0}}, "config error: dft.pools"),
        ({"dft": {"pools": "max"}}, "config error: dft.pools"),
    ],
)
def test_invalid_values_name_the_key(cfg, message):
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_missing_paths_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^config error: data.mirror: .*not found"):
        check_config({"data": {"mirror": str(tmp_path / "nowhere"), "source": "mirror"}}, SCHEMA)
    with pytest.raises(ConfigError, match=r"^config error: candidates.path: required"):
        check_config({"candidates": {"source": "cif_dir"}}, SCHEMA)
    with pytest.raises(ConfigError, match=r"^config error: candidates.path: directory .* not found"):
        check_config({"candidates": {"source": "cif_dir", "path": str(tmp_path / "none")}}, SCHEMA)
    with pytest.raises(ConfigError, match=r"^config error: candidates.path: no \*.cif"):
        check_config({"candidates": {"source": "cif_dir", "path": str(tmp_path)}}, SCHEMA)


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"seed": "one"}, "seed"),
        ({"unknown_section": {}}, "unknown_section"),
        ({"screen": {"tc_min_K": -5}}, "screen.tc_min_K"),
        ({"data": {"source": "mirror", "mirror": "/nonexistent/mirror"}}, "data.mirror"),
    ],
)
def test_snakemake_exits_nonzero_naming_the_key(tmp_path, cfg, key):
    """Through the real CLI: wrong type, unknown key, negative threshold, missing data path."""
    cfg = {"data": {}, **cfg}
    proc = run_snakemake(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"config error: {'unknown key ' if key == 'unknown_section' else ''}{key}" in out


def test_candidate_ids_need_a_letter_or_digit():
    """Issue "Interrupts and bad input" 3: `.` and `..` matched the id pattern (and the `{cid}`
    wildcard), so `...cif` became results/dft/../tc.json. The schema's `only` pattern is the same."""
    import json
    import re

    from tcflow.config import CID_PATTERN

    for good in ("Nb-bcc", "s000-00012", "JVASP-934", "a.b", "_x", "1"):
        assert re.fullmatch(CID_PATTERN, good), good
    for bad in (".", "..", "...", "_", "-", ".-_", "a b", "a/b", ""):
        assert not re.fullmatch(CID_PATTERN, bad), bad
    only = json.loads((SCHEMA.parent / "candidates.schema.json").read_text())["properties"]["only"]
    assert only["items"]["pattern"] == f"^{CID_PATTERN}$"
    with pytest.raises(ConfigError, match=r"^config error: candidates.only.0: '\.\.' does not match"):
        check_config({"candidates": {"only": [".."]}}, SCHEMA)


def test_python_tag_in_a_config_file_is_named(tmp_path):
    """Issue "Interrupts and bad input" 10: a `!!python/object` tag was refused as "not valid JSON
    or YAML" without the file or the tag. Snakemake reads --configfile files before the Snakefile,
    so `make run` checks CONFIG first with `python -m tcflow.config` (this command)."""
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\ndft:\n  protocol: !!python/object:os.system {}\n")
    proc = subprocess.run([sys.executable, "-m", "tcflow.config", str(REPO / "config" / "config.yaml"), str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"config error: {bad}: line 3: YAML tag !!python/object:os.system is not "
                                   "allowed (plain YAML only: mappings, lists, strings, numbers, booleans, null)")
    assert "$(VENV)/bin/python -m tcflow.config $(CONFIG)" in (REPO / "Makefile").read_text()


def test_snakemake_refuses_a_python_tag_it_would_load(tmp_path):
    """Snakemake's loader takes `!!python/str` (and other python tags); the Snakefile stops on it,
    naming file, line and tag (a real dry run)."""
    from workflow_helpers import SHARED

    cfg = tmp_path / "tagged.yaml"
    cfg.write_text(f"data:\n  mirror: !!python/str {SHARED}\n")
    proc = run_snakemake(tmp_path, None, "-n", check=False, configfile=cfg)
    assert proc.returncode != 0
    assert f"config error: {cfg}: line 2: YAML tag !!python/str is not allowed" in proc.stdout + proc.stderr
