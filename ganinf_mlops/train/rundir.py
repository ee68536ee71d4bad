"""The run directory: the one owner of its format, written by the trainer, read by everyone else.

    meta.json                 format_version, dataset {digest, path, n_instances}, train config,
                              metric config, n_steps, steps_per_epoch, checkpoint_every,
                              checkpoint_steps, schedule {kind: fresh|replay, replay_of},
                              created_at, job (the scoring settings of the config it was
                              trained under: `JOB_FIELDS`; absent in runs written before)
    schedule.safetensors      indices int64 [T, B], noise_seeds int64 [T], mask float64 [T, B],
                              instance_ids int64 [N] (the version's ids, so indices map to ids)
    checkpoints/step_XXXXXXXX.safetensors
                              the full state (every network and optimizer state) *before* step t,
                              for t = 0, K, 2K, ... and t = T (the final state), keys "d/<param>",
                              "g_opt/m/<param>", ...
    metrics.json              final results of the run (`keys`), plus predicted/actual change for
                              a replay
    losses.csv                step, then one column per loss of the problem's step
    integrity.json            the sha256 of every file above (written last; meta.json's
                              "integrity" names it): each file is verified as it is read, so an
                              edited or swapped file is one line "run DIR was changed after it
                              was written". Runs written before it (no record, no "integrity"
                              key) are read with a warning.
Tensors are safetensors files (no pickle). Replaying step t from checkpoint floor(t/K)*K on the
same device and dtype reproduces the recorded states bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ganinf_mlops import keys
from ganinf_mlops.bounded import check_regular
from ganinf_mlops.config import (
    JobOptions,
    TrainConfig,
    metric_config_from_dict,
    to_dict,
    train_config_from_dict,
)
from ganinf_mlops.errors import ConfigError, DigestMismatchError, TrajectoryError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.io import atomic_file, read_json, write_json
from ganinf_mlops.metrics.fit import FitCheck, fit_metric
from ganinf_mlops.problems import PROBLEMS, Problem, Schedule, State, problem_of_version
from ganinf_mlops.problems.base import Served

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META = "meta.json"
SCHEDULE = "schedule.safetensors"
CHECKPOINTS = "checkpoints"
METRICS = "metrics.json"
LOSSES = "losses.csv"
INTEGRITY = "integrity.json"
INTEGRITY_FORMAT = 1


# The job options a run records (meta.json "job"): what scoring, validating and gating it use
# unless told otherwise, so a run is scored as the config it was trained under says.
JOB_FIELDS = ("method", "ensemble", "last_epochs", "average_order", "seed", "loo", "group_subsets")


def job_record(job: JobOptions) -> dict[str, Any]:
    """The `JOB_FIELDS` of `job`, as meta.json records them."""
    values = to_dict(job)
    return {name: values[name] for name in JOB_FIELDS}


def job_from_record(record: Any) -> JobOptions:
    """The JobOptions a run recorded (its other fields at their defaults), checked as any
    config is; a record with keys outside `JOB_FIELDS` is refused."""
    if not isinstance(record, dict) or not set(record) <= set(JOB_FIELDS):
        raise ValueError(f"job may hold only {', '.join(JOB_FIELDS)}")
    return JobOptions(**record)


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def checkpoint_steps(n_steps: int, every: int) -> list[int]:
    return sorted({*range(0, n_steps, every), n_steps})


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


# Top-level state keys of runs written before meta.json recorded them (the GAN's).
_GAN_STATE_KEYS = ("d", "g", "d_opt", "g_opt")


def unflatten_state(flat: dict[str, torch.Tensor], top: tuple[str, ...] = ()) -> State:
    """Inverse of `flatten_state`; `top` keys start as empty dicts (an SGD state is empty, so
    flattening leaves no trace of it)."""
    state: dict[str, Any] = {k: {} for k in top}
    for key, value in flat.items():
        *path, leaf = key.split("/")
        node = state
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return state


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def state_from_checkpoint(
    flat: dict[str, torch.Tensor], top: tuple[str, ...], device: torch.device | str = "cpu"
) -> State:
    """A loaded checkpoint as a state on `device`. Cloned: fresh (aligned) storage, as training
    had; a view into the file buffer can take other vectorised code paths and round differently,
    which would break bitwise replays and resumes."""
    return unflatten_state({k: v.to(device).clone() for k, v in flat.items()}, top)


def _load(path: Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (or of its bytes `data`, already read and verified)."""
    # A FIFO or device is refused before safetensors opens it (a FIFO would block the open).
    if data is None and path.exists():  # a missing file keeps its own message below
        check_regular(path, f"trajectory file {path}", TrajectoryError)
    try:
        if data is not None:  # in load_file's (sorted) key order: states are pytrees
            return dict(sorted(safetensors.torch.load(data).items()))
        return load_file(str(path))
    except FileNotFoundError as exc:
        raise TrajectoryError(f"missing trajectory file {path}") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise TrajectoryError(f"corrupt trajectory file {path}: {exc}") from exc


# ---- integrity: the digests of a run's files ------------------------------------------------
def read_integrity(root: Path) -> dict[str, str] | None:
    """The recorded sha256 of each file of the run (or interrupted run) in `root`, by its name
    relative to `root`; None when there is no record (a run written before records existed)."""
    path = root / INTEGRITY
    if not path.exists():
        return None
    raw = read_json(path, f"run {root}:", TrajectoryError)
    files = raw.get("files") if isinstance(raw, dict) else None
    if (
        not isinstance(raw, dict)
        or raw.get("format_version") != INTEGRITY_FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise TrajectoryError(f"run {root}: {INTEGRITY} is not an integrity record")
    return files


def write_integrity(root: Path, files: dict[str, str]) -> None:
    # Sorted: a resumed run writes the same bytes as an uninterrupted one.
    record = {"format_version": INTEGRITY_FORMAT, "files": dict(sorted(files.items()))}
    write_json(root / INTEGRITY, record)


def _changed(root: Path, name: str, expected: str | None, actual: str) -> TrajectoryError:
    if expected is None:
        return TrajectoryError(
            f"run {root} was changed after it was written ({name} is not in its {INTEGRITY})"
        )
    return TrajectoryError(
        f"run {root} was changed after it was written ({name} digest {expected[:12]}…, "
        f"now {actual[:12]}…)"
    )


def verify_file(root: Path, files: dict[str, str] | None, name: str) -> None:
    """Refuse `root/name` unless it has the digest `files` recorded (None: nothing recorded)."""
    if files is None or not (root / name).is_file():
        return  # a missing file is reported by its reader
    try:
        actual = sha256_file(root / name)
    except OSError as exc:
        raise TrajectoryError(f"run {root}: cannot read {name}: {exc}") from None
    if files.get(name) != actual:
        raise _changed(root, name, files.get(name), actual)


def load_checkpoint(root: Path, step: int) -> dict[str, torch.Tensor]:
    """The tensors of checkpoint `step` of the run (or interrupted run) in `root`, verified
    against its integrity record when it has one (one read: the bytes hashed are those parsed)."""
    return _load_checkpoint(root, read_integrity(root), step)


def _load_checkpoint(
    root: Path, files: dict[str, str] | None, step: int
) -> dict[str, torch.Tensor]:
    name = f"{CHECKPOINTS}/{checkpoint_name(step)}"
    path = root / name
    if files is None:
        return _load(path)
    if path.exists():  # a FIFO or device would block the read
        check_regular(path, f"trajectory file {path}", TrajectoryError)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise TrajectoryError(f"missing trajectory file {path}") from exc
    except OSError as exc:
        raise TrajectoryError(f"corrupt trajectory file {path}: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if files.get(name) != actual:
        raise _changed(root, name, files.get(name), actual)
    return _load(path, data)


class RunWriter:
    """Writes a run directory's files into `root` (the trainer's temp dir, renamed when done)."""

    def __init__(self, root: Path, schedule: Schedule, instance_ids: np.ndarray) -> None:
        self.root = root
        (root / CHECKPOINTS).mkdir(exist_ok=True)  # exists when a run resumes
        # The digests of what is written, kept in integrity.json as it grows: a resumed run
        # verifies the checkpoint it continues from (load_checkpoint).
        self.digests: dict[str, str] = {
            k: v for k, v in (read_integrity(root) or {}).items() if k.startswith(CHECKPOINTS)
        }
        tensors = {
            "indices": schedule.indices,
            "noise_seeds": schedule.noise_seeds,
            "mask": schedule.mask,
            "instance_ids": torch.tensor(np.asarray(instance_ids), dtype=torch.int64),
        }
        # Serialised in memory, written by atomic_file: a failed write (disk full) is an OSError
        # naming the file, not a SafetensorError.
        data = safetensors.torch.save({k: v.contiguous() for k, v in tensors.items()})
        with atomic_file(root / SCHEDULE, "wb") as fh:
            fh.write(data)
        self._record(SCHEDULE, hashlib.sha256(data).hexdigest())

    def _record(self, name: str, digest: str | None = None) -> None:
        self.digests[name] = digest or sha256_file(self.root / name)
        write_integrity(self.root, self.digests)

    def checkpoint(self, step: int, state: State) -> None:
        # Atomic: a run killed while writing leaves the previous checkpoints complete, and a
        # resumed run starts from the last one (train/partial.py). Its digest is recorded
        # first: a checkpoint on disk always has one.
        data = safetensors.torch.save(flatten_state(state))
        name = f"{CHECKPOINTS}/{checkpoint_name(step)}"
        self._record(name, hashlib.sha256(data).hexdigest())
        with atomic_file(self.root / name, "wb") as fh:
            fh.write(data)

    def finish(
        self,
        meta: dict[str, Any],
        metrics: dict[str, Any],
        losses: np.ndarray,
        loss_names: tuple[str, ...],
    ) -> None:
        write_json(self.root / METRICS, metrics)
        with atomic_file(self.root / LOSSES) as fh:
            fh.write(",".join(("step", *loss_names)) + "\n")
            for t, row in enumerate(losses):
                fh.write(",".join([str(t), *(repr(float(v)) for v in row)]) + "\n")
        meta = {"format_version": FORMAT_VERSION, **meta, "integrity": INTEGRITY}
        write_json(self.root / META, meta)
        for name in (METRICS, LOSSES, META):
            self.digests[name] = sha256_file(self.root / name)
        write_integrity(self.root, self.digests)  # last: the record of a complete run


def rewrite_meta(root: Path, meta: dict[str, Any]) -> None:
    """Replace the meta.json of the run in `root` and re-record its digest (a fetched run points
    its copy at the classifier fetched beside it). The caller has verified the run."""
    write_json(root / META, meta)
    files = read_integrity(root)
    if files is not None:
        write_integrity(root, {**files, META: sha256_file(root / META)})


_WARNED: set[Path] = set()


def _unrecorded(path: Path, meta: Any) -> None:
    """A run without integrity.json: refused when its meta.json says it had one, else (a run
    written before records existed) used with a warning, once per run."""
    if isinstance(meta, dict) and "integrity" in meta:
        raise TrajectoryError(
            f"run {path} was changed after it was written (its {INTEGRITY} is missing)"
        )
    if path.resolve() not in _WARNED:
        _WARNED.add(path.resolve())
        log.warning(
            "run %s has no integrity record (written before ganinf recorded one): its files are "
            "not verified; retrain it to record one",
            path,
        )


class RunDir:
    """A recorded run, read back from its directory and checked for consistency.

    meta.json is read and checked on construction; the schedule (and checkpoints) only when used,
    so reading a run's results costs two small JSON files. Each file is verified against the
    run's integrity record as it is read (one sha256 pass over bytes that are read anyway).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.is_file():
            raise TrajectoryError(f"{self.path} is not a run directory (no {META})")
        self._files = read_integrity(self.path)
        verify_file(self.path, self._files, META)
        meta = read_json(meta_path, f"run {self.path}:", TrajectoryError)
        if self._files is None:
            _unrecorded(self.path, meta)
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            got = meta.get("format_version") if isinstance(meta, dict) else type(meta).__name__
            raise TrajectoryError(f"{meta_path}: unsupported format_version {got!r}")
        self.meta: dict[str, Any] = meta
        try:
            self.train_config: TrainConfig = train_config_from_dict(meta["train"])
            self.metric_config = metric_config_from_dict(meta["metric"], self.train_config.problem)
            if meta.get("classifier_path") is not None:
                # Recorded relative to the run: valid from any working directory.
                rel = os.path.normpath(self.path / str(meta["classifier_path"]))
                self.metric_config = dataclasses.replace(self.metric_config, classifier=rel)
            self.provenance: dict[str, Any] = dict(meta.get("provenance") or {})
            self.dataset_digest: str = str(meta["dataset"]["digest"])
            self._dataset_rel: str = str(meta["dataset"]["path"])
            self.n_instances: int = int(meta["dataset"]["n_instances"])
            self.checkpoint_steps: list[int] = [int(s) for s in meta["checkpoint_steps"]]
            self.steps_per_epoch: int = int(meta["steps_per_epoch"])
            self.n_steps: int = int(meta["n_steps"])
            self.schedule_kind: str = str(meta["schedule"]["kind"])
            self.replay_info: dict[str, Any] | None = meta["schedule"].get("replay_of")
            self.state_keys: tuple[str, ...] = tuple(meta.get("state_keys", _GAN_STATE_KEYS))
            # The job settings it was trained under (None: a run written before they were).
            self.recorded_job: JobOptions | None = (
                job_from_record(meta["job"]) if meta.get("job") is not None else None
            )
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise TrajectoryError(f"{meta_path}: invalid metadata ({exc})") from exc
        if (
            not self.checkpoint_steps
            or self.checkpoint_steps[0] != 0
            or (self.checkpoint_steps[-1] != self.n_steps)
        ):
            raise TrajectoryError(
                f"{self.path}: checkpoints must include step 0 and the final step"
            )

    def verify(self) -> RunDir:
        """Verify every file of the run against its integrity record now (a kept or fetched run
        is checked whole before it is used; other uses verify each file as they read it). The
        files are those meta.json names, each of which must be present and recorded."""
        ckpts = [f"{CHECKPOINTS}/{checkpoint_name(s)}" for s in self.checkpoint_steps]
        for name in (META, SCHEDULE, METRICS, LOSSES, *ckpts):
            if not (self.path / name).is_file():
                raise TrajectoryError(f"run {self.path}: {name} is missing")
            if self._files is not None and name not in self._files:
                raise _changed(self.path, name, None, "")
            verify_file(self.path, self._files, name)
        return self

    # ---- what the run was trained on --------------------------------------------------------
    @property
    def dataset_path(self) -> Path:
        """The dataset version directory (recorded relative to the run directory)."""
        return Path(os.path.normpath(self.path / self._dataset_rel))

    @property
    def replay_parent(self) -> Path | None:
        """The run a replay (train --replay) replays, or None for a fresh run."""
        if self.schedule_kind != "replay":
            return None
        info = self.replay_info
        if not isinstance(info, dict) or not isinstance(info.get("run"), str):
            raise TrajectoryError(f"run {self.path}: replay without the replayed run's path")
        return Path(os.path.normpath(self.path / info["run"]))

    def check_dataset(self, digest: str, where: str = "") -> None:
        """Refuse to use this trajectory with data other than the version it was recorded on."""
        if digest != self.dataset_digest:
            raise DigestMismatchError(
                f"run {self.path} was trained on another dataset version{where}",
                self.dataset_digest,
                digest,
            )

    def problem(self, version: Any) -> Problem:
        """The run's problem on its dataset version (a `DatasetVersion`, checked by digest), with
        the recorded schedule: what the reverse pass and replays step through."""
        self.check_dataset(version.digest, f" than {version.path}")
        problem = problem_of_version(self.train_config, self.metric_config, version, self.schedule)
        expected = {k: tuple(v.shape) for k, v in flatten_state(problem.initial_state()).items()}
        if expected != self._shapes:
            raise TrajectoryError(
                f"run {self.path}: its checkpoints do not fit the model its meta.json describes "
                "(an edited config or checkpoint?)"
            )
        if problem.provenance() != self.provenance:
            raise TrajectoryError(
                f"run {self.path} was evaluated with {self.provenance}, now "
                f"{problem.provenance()} (a feature classifier changed since it was trained)"
            )
        return problem

    def fit(self, method: str | None = None) -> FitCheck | None:
        """Whether the model fitted its data (recorded at training, metrics/fit.py), judged by
        the metric `method` scores, or by the kind's first target with a fit rule for a
        baseline or None; None for a run from before the check."""
        checks = self.meta.get("fit")
        name = fit_metric(PROBLEMS.get(self.train_config.problem).target_names, method)
        if not isinstance(checks, dict) or name is None:
            return None
        return FitCheck.from_record(checks.get(name))

    def final_samples(self, version: Any) -> np.ndarray | None:
        """Samples of the final state from the fixed evaluation latents (None: none generated)."""
        problem = self.problem(version)
        return problem.samples(self.load_state(self.n_steps, problem.device))

    def served(self, version: Any) -> Served | None:
        """The network a logged model of the run serves, with its final parameters (None: the
        run's kind serves none)."""
        problem = self.problem(version)
        return problem.served(self.load_state(self.n_steps, problem.device))

    # ---- results ----------------------------------------------------------------------------
    @cached_property
    def _metrics(self) -> dict[str, Any]:
        # Read once: a run directory does not change after its atomic rename into place.
        verify_file(self.path, self._files, METRICS)
        raw = read_json(self.path / METRICS, f"run {self.path}:", TrajectoryError)
        if not isinstance(raw, dict):
            raise TrajectoryError(f"run {self.path}: {METRICS} is not a JSON object")
        return raw

    def metrics(self) -> dict[str, Any]:
        """metrics.json as written: results, counts, timing and a replay's changes."""
        return dict(self._metrics)

    @property
    def train_seconds(self) -> float | None:
        """How long its training took (metrics.json), None when not recorded."""
        value = self._metrics.get(keys.TRAIN_SECONDS)
        return float(value) if _is_number(value) else None

    def results(self) -> dict[str, float]:
        """The numeric results of the run: metrics.json without timing or a replay's changes."""
        return {
            k: v
            for k, v in self.metrics().items()
            if k not in keys.TIMING and k not in keys.CHANGES and _is_number(v)
        }

    def losses(self) -> tuple[tuple[str, ...], np.ndarray]:
        """(loss names, losses [T, n_losses]) from losses.csv."""
        path = self.path / LOSSES
        verify_file(self.path, self._files, LOSSES)
        try:
            lines = path.read_text().splitlines()
            names = tuple(lines[0].split(",")[1:])
            rows = np.array([[float(v) for v in ln.split(",")[1:]] for ln in lines[1:]])
        except (OSError, IndexError, ValueError) as exc:
            raise TrajectoryError(f"run {self.path}: unreadable {LOSSES} ({exc})") from None
        return names, rows.reshape(len(lines) - 1, len(names))

    # ---- the trajectory ---------------------------------------------------------------------
    @cached_property
    def _schedule_file(self) -> dict[str, torch.Tensor]:
        verify_file(self.path, self._files, SCHEDULE)
        return _load(self.path / SCHEDULE)

    @cached_property
    def schedule(self) -> Schedule:
        s = self._schedule_file
        try:
            schedule = Schedule(s["indices"], s["noise_seeds"], s["mask"])
        except KeyError as exc:
            raise TrajectoryError(f"{self.path / SCHEDULE}: missing tensor {exc}") from exc
        if schedule.n_steps != self.n_steps:
            raise TrajectoryError(
                f"{self.path}: schedule has {schedule.n_steps} steps, meta.json says {self.n_steps}"
            )
        idx = schedule.indices
        if idx.min() < 0 or idx.max() >= self.n_instances:
            raise TrajectoryError(f"{self.path}: schedule indexes outside [0, {self.n_instances})")
        return schedule

    @cached_property
    def instance_ids(self) -> torch.Tensor:
        ids = self._schedule_file.get("instance_ids")
        if ids is None or ids.shape != (self.n_instances,):
            raise TrajectoryError(f"{self.path}: instance_ids do not match n_instances")
        return ids

    @cached_property
    def _shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor shapes of the initial checkpoint: every checkpoint of the run has them."""
        flat = _load_checkpoint(self.path, self._files, 0)
        return {k: tuple(v.shape) for k, v in flat.items()}

    def load_state(self, step: int, device: torch.device | str = "cpu") -> State:
        if step not in self.checkpoint_steps:
            raise TrajectoryError(f"{self.path}: no checkpoint at step {step}")
        flat = _load_checkpoint(self.path, self._files, step)
        shapes = {k: tuple(v.shape) for k, v in flat.items()}
        if shapes != self._shapes:
            k = min(k for k in {*shapes, *self._shapes} if shapes.get(k) != self._shapes.get(k))
            raise TrajectoryError(
                f"{self.path}: checkpoint {step} tensor {k} has shape {shapes.get(k)}, "
                f"the run's initial state {self._shapes.get(k)}"
            )
        dtype = getattr(torch, self.train_config.dtype)
        for k, v in flat.items():
            if v.dtype != dtype or not torch.isfinite(v).all():
                raise TrajectoryError(
                    f"{self.path}: checkpoint {step} tensor {k} is {v.dtype} or not finite"
                )
        return state_from_checkpoint(flat, self.state_keys, device)
