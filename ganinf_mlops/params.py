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


# Optimizer fields that act only under one optimizer (optim.py's update rules).
_OPTIMIZER_FIELDS = {"momentum": "momentum", "beta1": "adam", "beta2": "adam", "eps": "adam"}


def in_effect(flat: dict[str, Any]) -> dict[str, Any]:
    """The flattened parameters (`a.b.c`: value) that act on the result, for logging: an
    optimizer's momentum only under 'momentum', its betas and eps only under 'adam', the
    rejection embedding only with a rejection threshold, and train.epochs only without steps."""
    out = {}
    for key, value in flat.items():
        prefix, _, name = key.rpartition(".")
        needs = _OPTIMIZER_FIELDS.get(name)
        if needs is not None and f"{prefix}.name" in flat and flat[f"{prefix}.name"] != needs:
            continue
        if name == "reject_embedding" and flat.get(f"{prefix}.reject_threshold") is None:
            continue
        if name == "epochs" and flat.get(f"{prefix}.steps") is not None:
            continue
        out[key] = value
    return out


def data_params_in_full(dataset: str, params: dict[str, Any]) -> dict[str, Any]:
    """A dataset source's creation parameters with the defaults it was called with filled in,
    so runs that differ only by a default still line up (MLflow shows no 'unknown')."""
    import inspect
    import json

    from ganinf_mlops.data.datasets import DATASETS

    if dataset not in DATASETS:
        return dict(params)
    defaults = {
        name: p.default
        for name, p in inspect.signature(DATASETS.get(dataset)).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    # as params.yaml would hold them (tuples as lists), so equal values log equal strings
    return json.loads(json.dumps({**defaults, **params}, default=str))
