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

from ganinf_mlops.bounded import read_bounded, yaml_depth_ok
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
    unknown = sorted(set(map(str, params)) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]} (sections: {', '.join(SECTIONS)})")
    data = params["data"]
    if not isinstance(data, dict) or set(data) != {"dataset", "params"}:
        raise ConfigError(f"{where}: data needs exactly the keys dataset and params")
    if not isinstance(data["params"], dict):
        raise ConfigError(f"{where}: data.params must be a mapping")
    train = train_config_from_dict(params["train"], "train")
    job = from_dict(JobOptions, params["job"], "job")
    from ganinf_mlops.influence.methods import METHODS  # late: imports torch

    try:
        METHODS.check(job.method)
    except ConfigError as e:
        raise ConfigError(f"{where}: job.method: {e}") from None
    return Preset(
        name=where,
        description=f"parameters from {where}",
        dataset=str(data["dataset"]),
        data_params=dict(data["params"]),
        train=train,
        metric=metric_config_from_dict(params["metric"], train.problem),
        job=job,
    )


def load_params(path: str | Path) -> Preset:
    """The preset of a params file: a regular file of at most `limits` params_bytes, read by
    the bytes read; YAML without aliases, nested at most `limits` nesting deep."""
    path = Path(path)
    subject = f"params file {path}"
    data = read_bounded(path, subject, "params_bytes", ConfigError, missing="does not exist")
    try:
        text = data.decode("utf-8")
        yaml_depth_ok(text, subject, ConfigError)
        raw = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{subject} nests too deep to parse") from None
    return params_to_preset(raw, str(path))


def write_params(path: str | Path, preset: Preset) -> None:
    with atomic_file(path) as fh:
        yaml.safe_dump(preset_to_params(preset), fh, sort_keys=False)


def params_text(preset: Preset) -> str:
    return yaml.safe_dump(preset_to_params(preset), sort_keys=False)
