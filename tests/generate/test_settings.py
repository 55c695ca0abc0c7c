"""The generate section of both shipped configs validates and maps onto the settings objects."""

from pathlib import Path

import pytest

from tcflow.config import ConfigError, validate_schema
from tcflow.generate import settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "config" / "schema" / "config.schema.json"


def _load(name):
    import yaml

    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_build_settings(name):
    cfg = validate_schema(_load(name), SCHEMA)["generate"]
    hp = settings.hparams(cfg)
    assert hp.loss_weights["coord"] == 10.0 and hp.num_noise_levels == 50
    ls = settings.langevin_settings(cfg)
    assert ls.evaluations == cfg["langevin"]["num_levels"] * cfg["langevin"]["steps_per_level"]
    assert settings.sample_settings(cfg).starts_per_shard * cfg["sample"]["num_shards"] >= 64
    settings.train_settings(cfg), settings.optimise_settings(cfg), settings.metric_settings(cfg)


def test_empty_section_gets_defaults():
    cfg = validate_schema({"generate": {}}, SCHEMA)["generate"]
    assert cfg["langevin"]["num_levels"] == 50 and cfg["model"]["loss_weights"]["kl"] == 0.01
    assert settings.hparams(cfg).latent_dim == 64


def test_unknown_key_and_bad_value_are_named():
    with pytest.raises(ConfigError, match="generate.train.epoch"):
        validate_schema({"generate": {"train": {"epoch": 3}}}, SCHEMA)
    with pytest.raises(ConfigError, match="generate.sample.init"):
        validate_schema({"generate": {"sample": {"init": "gaussian"}}}, SCHEMA)
    cfg = validate_schema({"generate": {"langevin": {"sigma_min_A": 20.0}}}, SCHEMA)["generate"]
    with pytest.raises(ValueError, match="generate.langevin.sigma_min_A"):
        settings.langevin_settings(cfg)
