"""params.yaml: a preset written out in full, read back strictly.

DVC stages, MLproject entry points and the CLI's `--params FILE` all read this one format:

    data:   {dataset: gaussian2d, params: {n: 2000, ...}}   # generator keyword arguments
    train:  the problem kind's TrainConfig fields (`problem` picks the kind; a GAN's model,
            d_optim, g_optim nested; a classifier's model and optim)
    metric: the problem kind's metric config fields (MetricConfig for GANs; none for a classifier)
    job:    JobOptions fields (method, remove_frac, loo, iterations, ...)

Every field must be present and no other: a typo or a missing key is an error naming its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ganinf_mlops.config import (
    JobOptions,
    Preset,
    from_dict,
    metric_config_from_dict,
    to_dict,
    train_config_from_dict,
)
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.io import atomic_file

SECTIONS = ("data", "train", "metric", "job")


def preset_to_params(preset: Preset) -> dict[str, Any]:
    return {
        "data": {"dataset": preset.dataset, "params": dict(preset.data_params)},
        "train": to_dict(preset.train),
        "metric": to_dict(preset.metric),
        "job": to_dict(preset.job),
    }


def params_to_preset(params: Any, where: str = "params") -> Preset:
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: expected a mapping with sections {', '.join(SECTIONS)}")
    for section in SECTIONS:
        if section not in params:
            raise ConfigError(f"{where}: missing key {section}")
    data = params["data"]
    if not isinstance(data, dict) or set(data) != {"dataset", "params"}:
        raise ConfigError(f"{where}: data needs exactly the keys dataset and params")
    if not isinstance(data["params"], dict):
        raise ConfigError(f"{where}: data.params must be a mapping")
    train = train_config_from_dict(params["train"], "train")
    return Preset(
        name=where,
        description=f"parameters from {where}",
        dataset=str(data["dataset"]),
        data_params=dict(data["params"]),
        train=train,
        metric=metric_config_from_dict(params["metric"], train.problem),
        job=from_dict(JobOptions, params["job"], "job"),
    )


MAX_PARAMS_BYTES = 1_000_000  # a params file is a page of settings, not data


def _safe_yaml(text: str, where: str) -> Any:
    """YAML without aliases: a params file needs none, and nested aliases ("billion laughs")
    expand to gigabytes from a few lines."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(f"params file {where}: YAML aliases (*{event.anchor}) not allowed")
    return yaml.safe_load(text)


def load_params(path: str | Path) -> Preset:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PARAMS_BYTES:
            raise ConfigError(f"params file {path} is larger than {MAX_PARAMS_BYTES:,} bytes")
        raw = _safe_yaml(path.read_text(), str(path))
    except FileNotFoundError:
        raise ConfigError(f"params file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from None
    return params_to_preset(raw, str(path))


def write_params(path: str | Path, preset: Preset) -> None:
    with atomic_file(path) as fh:
        yaml.safe_dump(preset_to_params(preset), fh, sort_keys=False)


def params_text(preset: Preset) -> str:
    return yaml.safe_dump(preset_to_params(preset), sort_keys=False)
