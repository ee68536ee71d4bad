"""On-disk trajectory of a training run: what makes influence exact and the run replayable.

A run directory holds
    meta.json                 format_version, dataset {digest, path, n_instances}, train config,
                              metric config, n_steps, steps_per_epoch, checkpoint_every,
                              checkpoint_steps, schedule {kind: fresh|replay, replay_of}, created_at
    schedule.safetensors      indices int64 [T, B], noise_seeds int64 [T], mask float64 [T, B],
                              instance_ids int64 [N] (the version's ids, so indices map to ids)
    checkpoints/step_XXXXXXXX.safetensors
                              the full state (D, G and both optimizer states) *before* step t, for
                              t = 0, K, 2K, ... and t = T (the final state), keys "d/<param>",
                              "g_opt/m/<param>", ...
    metrics.json              final metrics of the run
    losses.csv                step, d_loss, g_loss
Tensors are safetensors files (no pickle). Replaying step t from checkpoint floor(t/K)*K on the
same device and dtype reproduces the recorded states bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganinf_mlops.config import (
    MetricConfig,
    TrainConfig,
    metric_config_from_dict,
    train_config_from_dict,
)
from ganinf_mlops.errors import ConfigError, DigestMismatchError, TrajectoryError
from ganinf_mlops.io import read_json
from ganinf_mlops.train.schedule import Schedule
from ganinf_mlops.train.step import State

FORMAT_VERSION = 1
META = "meta.json"
SCHEDULE = "schedule.safetensors"
CHECKPOINTS = "checkpoints"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def flatten_state(state: State) -> dict[str, torch.Tensor]:
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}/{k}" if prefix else k, v)
        else:
            flat[prefix] = node.detach().contiguous().cpu()

    walk("", state)
    return flat


def unflatten_state(flat: dict[str, torch.Tensor]) -> State:
    state: dict[str, Any] = {"d": {}, "g": {}, "d_opt": {}, "g_opt": {}}
    for key, value in flat.items():
        *path, leaf = key.split("/")
        node = state
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return state


def save_state(path: Path, state: State) -> None:
    save_file(flatten_state(state), str(path))


def save_schedule(path: Path, schedule: Schedule, instance_ids: torch.Tensor) -> None:
    tensors = {
        "indices": schedule.indices,
        "noise_seeds": schedule.noise_seeds,
        "mask": schedule.mask,
        "instance_ids": instance_ids,
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def read_metrics(run: str | Path) -> dict[str, Any]:
    """A run's final metrics (metrics.json)."""
    return read_json(Path(run) / "metrics.json", f"run {run}:", TrajectoryError)


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError as exc:
        raise TrajectoryError(f"missing trajectory file {path}") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise TrajectoryError(f"corrupt trajectory file {path}: {exc}") from exc


class Trajectory:
    """A recorded run, read back from its directory and checked for consistency."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.is_file():
            raise TrajectoryError(f"{self.path} is not a run directory (no {META})")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TrajectoryError(f"corrupt {meta_path}: {exc}") from exc
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise TrajectoryError(
                f"{meta_path}: unsupported format_version {self.meta.get('format_version')!r}"
            )
        try:
            self.train_config: TrainConfig = train_config_from_dict(self.meta["train"])
            self.metric_config: MetricConfig = metric_config_from_dict(self.meta["metric"])
            self.dataset_digest: str = self.meta["dataset"]["digest"]
            self.n_instances: int = int(self.meta["dataset"]["n_instances"])
            self.checkpoint_steps: list[int] = [int(s) for s in self.meta["checkpoint_steps"]]
            self.steps_per_epoch: int = int(self.meta["steps_per_epoch"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise TrajectoryError(f"{meta_path}: invalid metadata ({exc})") from exc
        s = _load(self.path / SCHEDULE)
        try:
            self.schedule = Schedule(s["indices"], s["noise_seeds"], s["mask"])
            self.instance_ids: torch.Tensor = s["instance_ids"]
        except KeyError as exc:
            raise TrajectoryError(f"{self.path / SCHEDULE}: missing tensor {exc}") from exc
        if self.schedule.n_steps != self.meta.get("n_steps"):
            raise TrajectoryError(
                f"{self.path}: schedule has {self.schedule.n_steps} steps, "
                f"meta.json says {self.meta.get('n_steps')}"
            )
        if self.instance_ids.shape != (self.n_instances,):
            raise TrajectoryError(f"{self.path}: instance_ids do not match n_instances")
        idx = self.schedule.indices
        if idx.min() < 0 or idx.max() >= self.n_instances:
            raise TrajectoryError(f"{self.path}: schedule indexes outside [0, {self.n_instances})")
        if self.checkpoint_steps[0] != 0 or self.checkpoint_steps[-1] != self.n_steps:
            raise TrajectoryError(
                f"{self.path}: checkpoints must include step 0 and the final step"
            )

    @property
    def n_steps(self) -> int:
        return self.schedule.n_steps

    def load_state(self, step: int, device: torch.device | str = "cpu") -> State:
        if step not in self.checkpoint_steps:
            raise TrajectoryError(f"{self.path}: no checkpoint at step {step}")
        flat = _load(self.path / CHECKPOINTS / checkpoint_name(step))
        dtype = getattr(torch, self.train_config.dtype)
        for k, v in flat.items():
            if v.dtype != dtype or not torch.isfinite(v).all():
                raise TrajectoryError(
                    f"{self.path}: checkpoint {step} tensor {k} is {v.dtype} or not finite"
                )
        return unflatten_state({k: v.to(device) for k, v in flat.items()})

    def check_dataset(self, digest: str, where: str = "") -> None:
        """Refuse to use this trajectory with data other than the version it was recorded on."""
        if digest != self.dataset_digest:
            raise DigestMismatchError(
                f"run {self.path} was trained on another dataset version{where}",
                self.dataset_digest,
                digest,
            )
