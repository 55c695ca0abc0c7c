"""The config's ``generate`` section (already validated and defaulted by the schema) as the
settings objects of the generator's modules."""

from __future__ import annotations

from tcflow.generate.metrics import MetricSettings
from tcflow.generate.model import HParams
from tcflow.generate.optimise import OptimiseSettings
from tcflow.generate.sample import SampleSettings
from tcflow.generate.sampler import LangevinSettings
from tcflow.generate.train import TrainSettings

_DEFAULT_WEIGHTS = HParams().loss_weights


def _check_order(section: dict, hi: str, lo: str, where: str) -> None:
    if hi in section and lo in section and not section[lo] < section[hi]:
        raise ValueError(f"config error: generate.{where}.{lo}: {section[lo]} must be below {where}.{hi} "
                         f"({section[hi]})")


def hparams(cfg: dict) -> HParams:
    m = dict(cfg.get("model", {}))
    _check_order(m, "sigma_begin_A", "sigma_end_A", "model")
    m["loss_weights"] = {**_DEFAULT_WEIGHTS, **m.get("loss_weights", {})}
    return HParams(**m)


def train_settings(cfg: dict) -> TrainSettings:
    return TrainSettings(**cfg.get("train", {}))


def sample_settings(cfg: dict) -> SampleSettings:
    s = {k: v for k, v in cfg.get("sample", {}).items() if k != "num_shards"}
    return SampleSettings(**s)


def optimise_settings(cfg: dict) -> OptimiseSettings:
    return OptimiseSettings(**cfg.get("optimise", {}))


def langevin_settings(cfg: dict) -> LangevinSettings:
    _check_order(cfg.get("langevin", {}), "sigma_max_A", "sigma_min_A", "langevin")
    return LangevinSettings(**cfg.get("langevin", {}))


def metric_settings(cfg: dict) -> MetricSettings:
    return MetricSettings(**cfg.get("metrics", {}))
