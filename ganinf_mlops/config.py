"""Typed configuration and named presets: the one source of defaults for CLI, DVC and MLproject."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ganinf_mlops.errors import ConfigError
from ganinf_mlops.train.optim import OptimConfig

UPDATES = ("simultaneous", "alternating")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 10
    g_hidden: tuple[int, ...] = (32, 32)
    d_hidden: tuple[int, ...] = (64, 64)
    bias: bool = False
    activation: str = "relu"


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 100
    epochs: int = 50
    update: str = "simultaneous"
    seed: int = 0
    checkpoint_every: int = 50
    dtype: str = "float64"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.update not in UPDATES:
            raise ConfigError(f"unknown update {self.update!r}; choose from: {', '.join(UPDATES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; choose from: {', '.join(DTYPES)}")
        for name in ("batch_size", "epochs", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class MetricConfig:
    """Evaluation of the final generator: ALL uses `n_gen` generated points from fixed latents."""

    bandwidth: float = 1.0
    n_gen: int = 1000
    seed: int = 12345

    def __post_init__(self) -> None:
        if not (self.bandwidth > 0 and math.isfinite(self.bandwidth)):
            raise ConfigError(f"bandwidth must be positive, got {self.bandwidth}")
        if self.n_gen < 1:
            raise ConfigError(f"n_gen must be >= 1, got {self.n_gen}")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    dataset: str
    data_params: dict[str, Any]
    train: TrainConfig
    metric: MetricConfig


def _sgd(lr: float) -> OptimConfig:
    return OptimConfig(name="sgd", lr=lr)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="default",
            description="2D normal with 2% injected anomalies; runs end to end in about a minute.",
            dataset="gaussian2d",
            data_params={"n": 2000, "n_eval": 1000, "anomaly_frac": 0.02, "seed": 0},
            train=TrainConfig(
                d_optim=_sgd(0.01),
                g_optim=_sgd(0.01),
                batch_size=100,
                epochs=15,
                checkpoint_every=50,
            ),
            metric=MetricConfig(),
        ),
        Preset(
            name="tiny",
            description="Smoke-test size (200 instances, 5 epochs): seconds, for tests and CI.",
            dataset="gaussian2d",
            data_params={"n": 200, "n_eval": 200, "anomaly_frac": 0.05, "seed": 0},
            train=TrainConfig(
                model=ModelConfig(g_hidden=(16, 16), d_hidden=(32, 32)),
                d_optim=_sgd(0.01),
                g_optim=_sgd(0.01),
                batch_size=20,
                epochs=5,
                checkpoint_every=10,
            ),
            metric=MetricConfig(n_gen=200),
        ),
        Preset(
            name="paper-2d",
            description="Terashita et al. (ICLR 2021) 2D setting: N=10,000, 50 epochs, SGD 1e-3.",
            dataset="gaussian2d",
            data_params={"n": 10000, "n_eval": 1000, "anomaly_frac": 0.0, "seed": 0},
            train=TrainConfig(
                d_optim=_sgd(1e-3),
                g_optim=_sgd(1e-3),
                batch_size=100,
                epochs=50,
                checkpoint_every=100,
            ),
            metric=MetricConfig(bandwidth=1.0),
        ),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def train_config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Inverse of `to_dict` for TrainConfig (as stored in a run's meta.json)."""
    try:
        d = dict(d)
        m = dict(d.pop("model"))
        model = ModelConfig(
            **{**m, "g_hidden": tuple(m["g_hidden"]), "d_hidden": tuple(m["d_hidden"])}
        )
        return TrainConfig(
            model=model,
            d_optim=OptimConfig(**d.pop("d_optim")),
            g_optim=OptimConfig(**d.pop("g_optim")),
            **d,
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"invalid train config: {exc}") from exc


def metric_config_from_dict(d: dict[str, Any]) -> MetricConfig:
    try:
        return MetricConfig(**d)
    except TypeError as exc:
        raise ConfigError(f"invalid metric config: {exc}") from exc
