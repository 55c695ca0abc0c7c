"""Workflow configuration: schema validation (via ``snakemake.utils.validate``) plus the checks a
schema cannot express (paths that must exist, fractions that must sum to one).

Every failure raises :class:`ConfigError` with one line naming the offending key, e.g.
``config error: screen.tc_min_K: -1 is less than the minimum of 0``.
Imports only light modules: this runs at Snakefile parse time.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

#: Candidate ids: file stems of user CIFs or sample ids; safe as path components. Letters, digits,
#: ``_ . -`` with at least one letter or digit (so never ``.`` or ``..``); no anchors, so that it
#: also serves as the Snakemake wildcard constraint of ``{cid}``.
CID_PATTERN = r"[A-Za-z0-9_.-]*[A-Za-z0-9][A-Za-z0-9_.-]*"


class ConfigError(ValueError):
    """An invalid configuration; the message is one line that names the key."""


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _schema_message(error) -> str:
    """One-line text for a jsonschema ValidationError, naming the key."""
    if error.validator == "additionalProperties":
        # jsonschema says "Additional properties are not allowed ('x' was unexpected)".
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = _key_path(error)
        prefix = "" if where == "<top level>" else f"{where}."
        return "unknown key " + ", ".join(prefix + k for k in extra)
    msg = error.message.splitlines()[0]
    return f"{_key_path(error)}: {msg}"


def _load_schema(path: Path) -> dict:
    """A schema file (JSON: parsed ten times faster than the same schema as YAML, at every run)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def fill_defaults(instance: dict, schema: dict, base: Path) -> None:
    """Set missing keys to their schema ``default`` (deep-copied), recursing into objects and
    following relative-file ``$ref`` (snakemake's default filling does not cross ``$ref``)."""
    import copy

    for key, sub in schema.get("properties", {}).items():
        target = sub
        if "$ref" in sub:
            target = _load_schema(base / sub["$ref"])
        if key not in instance and ("default" in sub or "default" in target):
            instance[key] = copy.deepcopy(sub["default"] if "default" in sub else target["default"])
        if isinstance(instance.get(key), dict):
            fill_defaults(instance[key], target, base)


def validate_schema(config: dict, schema_path: str | os.PathLike) -> dict:
    """Validate ``config`` in place against the JSON schema and fill in defaults.

    Defaults are filled by :func:`fill_defaults` (it only fills missing keys and descends only into
    mappings, so it cannot hide a wrong value), then the result is validated once with
    ``snakemake.utils.validate`` (relative ``$ref`` between the per-section schema files).
    """
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema_path = Path(schema_path).resolve()
    fill_defaults(config, _load_schema(schema_path), schema_path.parent)
    try:
        validate(config, os.fspath(schema_path))
    except WorkflowError as exc:
        cause = exc.__context__  # snakemake raises WorkflowError while handling ValidationError
        if not isinstance(cause, jsonschema.ValidationError):
            raise ConfigError(f"config error: {str(exc).splitlines()[0]}") from None
        raise ConfigError(f"config error: {_schema_message(cause)}") from None
    return config


def _check_paths(config: dict) -> None:
    """Checks beyond the schema; paths are relative to the working directory."""
    data = config["data"]
    fr = data["split_fractions"]
    if not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ConfigError(f"config error: data.split_fractions: {fr} must sum to 1")
    mirror = Path(data["mirror"])
    if data["source"] == "mirror" and not (mirror / "data" / "jarvis_supercon").is_dir():
        raise ConfigError(
            f"config error: data.mirror: {mirror}/data/jarvis_supercon not found (data.source is 'mirror')"
        )
    cand = config["candidates"]
    if cand["source"] == "cif_dir":
        if not cand["path"]:
            raise ConfigError("config error: candidates.path: required when candidates.source is 'cif_dir'")
        p = Path(cand["path"])
        if not p.is_dir():
            raise ConfigError(f"config error: candidates.path: directory {p} not found")
        if not any(p.glob("*.cif")):
            raise ConfigError(f"config error: candidates.path: no *.cif files in {p}")


def _check_energy_paths(config: dict) -> None:
    """``energy.reference_cifs`` / ``energy.element_cifs``: a directory when set;
    ``energy.dft_3d_file``: a file when set and used."""
    energy = config.get("energy", {})
    for key in ("reference_cifs", "element_cifs"):
        value = energy.get(key)
        if value and not Path(value).is_dir():
            raise ConfigError(f"config error: energy.{key}: directory {value} not found")
    value = energy.get("dft_3d_file")
    if energy.get("dft_3d_phases") and value and not Path(value).is_file():
        raise ConfigError(f"config error: energy.dft_3d_file: file {value} not found")


def check_config(config: dict, schema_path: str | os.PathLike) -> dict:
    """Validate the schema (defaults filled in place), then the cross-key and path checks."""
    validate_schema(config, schema_path)
    _check_paths(config)
    _check_energy_paths(config)
    return config


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML (or JSON) config file as plain data.

    Only plain YAML is accepted (``yaml.safe_load``): a tag that builds a Python object
    (``!!python/object:...``, ``!!python/tuple``, ...) raises :class:`ConfigError` naming the
    file, the line and the tag. Snakemake's own loader accepts some of these tags and refuses
    others with a message that names neither.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config error: {path}: file not found") from None
    except yaml.constructor.ConstructorError as exc:
        m = re.search(r"tag '([^']+)'", exc.problem or "")
        tag = m.group(1).replace("tag:yaml.org,2002:", "!!") if m else "?"
        line = f" line {exc.problem_mark.line + 1}:" if exc.problem_mark else ""
        raise ConfigError(f"config error: {path}:{line} YAML tag {tag} is not allowed "
                          "(plain YAML only: mappings, lists, strings, numbers, booleans, null)") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        raise ConfigError(f"config error: {path}:{line} not valid YAML ({first})") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"config error: {path}: the top level must be a mapping of keys")
    return config


def check_config_files(paths) -> None:
    """Read every file with :func:`read_config_file` (the Snakefile calls this on the
    ``--configfile`` files before anything runs)."""
    for p in paths:
        read_config_file(p)


def load_config(path: str | os.PathLike, schema_path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file and check it (for scripts and tests outside Snakemake)."""
    return check_config(read_config_file(path), schema_path)


def main(argv: list[str] | None = None) -> int:
    """``python -m tcflow.config FILE...``: check config files before Snakemake reads them (``make
    run`` does); prints the one-line error and returns 1 for the first bad file."""
    import sys

    try:
        check_config_files(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
