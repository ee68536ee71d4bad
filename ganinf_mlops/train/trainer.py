"""Train a problem on a dataset version while recording its run directory (see rundir.py).

Two schedules: "fresh" (a new minibatch order and latents from the config's seed: production
retraining) and "replay" (a parent run's order, latents and initialisation, with the instances the
new version removed dropped from their minibatches, weight 0: exactly the counterfactual an
influence estimate predicts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._pytree import tree_leaves
from tqdm.auto import tqdm

import ganinf_mlops
from ganinf_mlops import keys
from ganinf_mlops.config import (
    JobOptions,
    MetricConfig,
    TrainConfig,
    feature_classifier,
    to_dict,
)
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import (
    DataError,
    DigestMismatchError,
    OutputExistsError,
    Terminated,
    TrajectoryError,
)
from ganinf_mlops.executor import SERIAL, Executor
from ganinf_mlops.io import check_disjoint, publish_dir
from ganinf_mlops.metrics.fit import fit_checks
from ganinf_mlops.problems import Problem, Schedule, State, problem_of_version
from ganinf_mlops.problems.schedule import make_schedule, steps_per_epoch
from ganinf_mlops.train import partial
from ganinf_mlops.train.rundir import RunDir, RunWriter, checkpoint_steps, job_record
from ganinf_mlops.writelock import writing

log = logging.getLogger(__name__)


def replay_schedule(parent: RunDir, version: DatasetVersion) -> Schedule:
    """The parent's schedule re-indexed into `version`, slots of removed instances masked out."""
    if version.digest != parent.dataset_digest and (
        version.manifest.parent_digest != parent.dataset_digest
    ):
        raise DigestMismatchError(
            f"version {version.path} is neither the data of run {parent.path} nor derived from it "
            "(its parent digest)",
            parent.dataset_digest,
            str(version.manifest.parent_digest),
        )
    parent_ids = parent.instance_ids.numpy()
    ids = parent_ids[parent.schedule.indices.numpy()]  # [T, B] instance ids
    pos = {int(i): p for p, i in enumerate(version.ids)}
    if not set(pos) <= set(parent_ids.tolist()):
        raise DataError(f"version {version.path} has instances that run {parent.path} never saw")
    live = np.vectorize(lambda i: i in pos, otypes=[bool])(ids)
    new_idx = np.vectorize(lambda i: pos.get(int(i), 0), otypes=[np.int64])(ids)
    mask = parent.schedule.mask * torch.from_numpy(live.astype(np.float64))
    return Schedule(torch.from_numpy(new_idx), parent.schedule.noise_seeds.clone(), mask)


def run_steps(
    problem: Problem,
    state: State,
    start: int,
    stop: int,
    on_step: Callable[[int, State, tuple[torch.Tensor, ...]], None] | None = None,
    progress: bool = False,
) -> State:
    """Plain forward training from `state` at step `start` to step `stop`."""
    for t in tqdm(range(start, stop), desc="train", unit="step", disable=not progress, leave=False):
        inp = problem.inputs(t)
        new, losses = problem.step(state, inp.mask, inp.data, t)
        if on_step is not None:
            on_step(t, state, losses)
        state = new
    return state


def train(
    version: DatasetVersion,
    cfg: TrainConfig,
    metric: MetricConfig,
    out_dir: str | Path,
    *,
    replay: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    resume: bool = False,
    on_start: Callable[[str | None], str | None] | None = None,
    job: JobOptions | None = None,
) -> Path:
    """Train, record the run directory `out_dir` (renamed into place when complete) and return
    it. With `resume`, continue the interrupted run of `out_dir` (train/partial.py).

    `job`: the job options of the config it is trained under, recorded (`rundir.JOB_FIELDS`)
    as the settings it is scored with by default; a replay records its parent's (it takes the
    parent's config), or `job` when the parent recorded none.

    `on_start(previous)`, once the work directory is ready: `previous` is the tracking run id an
    interrupted run recorded (None for a new run); what it returns (the tracking run writing the
    run now, or None) is recorded in its place."""
    check_disjoint(out_dir, version.path, replay, feature_classifier(metric))
    out_dir = Path(out_dir)
    # One writer per run: a second process is told so, not offered the first one's .partial.
    with writing(out_dir):
        if out_dir.exists() and not force:
            raise OutputExistsError(out_dir)
        return _train(version, cfg, metric, out_dir, replay, force, progress, resume, on_start, job)


def _train(
    version: DatasetVersion,
    cfg: TrainConfig,
    metric: MetricConfig,
    out_dir: Path,
    replay: str | Path | None,
    force: bool,
    progress: bool,
    resume: bool,
    on_start: Callable[[str | None], str | None] | None,
    job: JobOptions | None,
) -> Path:
    parent = RunDir(replay) if replay is not None else None
    if parent is not None and parent.recorded_job is not None:
        job = parent.recorded_job
    cfg, metric, schedule = _schedule(version, cfg, metric, parent)
    problem = problem_of_version(cfg, metric, version, schedule)
    problem.check_version(version)
    state = parent.load_state(0, problem.device) if parent is not None else problem.initial_state()
    n_steps = schedule.n_steps
    ckpts = _checkpoints(cfg, n_steps)
    losses = np.zeros((n_steps, len(problem.loss_names)))
    identity = {
        "train": to_dict(cfg), "metric": to_dict(metric), "dataset_digest": version.digest,
        "replay": None if replay is None else str(Path(replay).resolve()), "n_steps": n_steps,
        "state_keys": list(state),
    }  # fmt: skip
    previous = partial.tracking_run(out_dir) if resume else None
    resumed = partial.prepare(out_dir, identity, ckpts, problem.device, resume=resume, force=force)
    complete = resumed is not None and resumed.complete
    if on_start is not None:
        current = on_start(previous)
        if current is not None and not complete:
            partial.record_tracking_run(out_dir, current)
    first = 0
    tmp = partial.partial_dir(out_dir)
    if complete:  # killed just before the rename
        publish_dir(partial.finish(out_dir), out_dir, force)
        log.info("resumed %s: it was complete, renamed into place", out_dir)
        return out_dir
    if resumed is not None:
        first, state = resumed.step, resumed.state
        if first:
            losses[:first] = resumed.losses
        log.info("resuming %s at step %d of %d", out_dir, first, n_steps)
    try:
        writer = RunWriter(tmp, schedule, version.ids)
        # A resumed run has its checkpoints up to `first` already.
        ckpt_set = {s for s in ckpts if resumed is None or s > first}

        def on_step(t: int, s: State, step_losses: tuple[torch.Tensor, ...]) -> None:
            if t in ckpt_set:  # losses first: a checkpoint on disk always has its losses
                partial.record_losses(out_dir, losses[:t])
                writer.checkpoint(t, s)
            losses[t] = [float(v) for v in step_losses]

        start = time.perf_counter()
        state = run_steps(problem, state, first, n_steps, on_step, progress)
        seconds = time.perf_counter() - start
        if not all(torch.isfinite(v).all() for v in tree_leaves(state)):
            raise TrajectoryError("training diverged: the final state has NaN/inf values")
        partial.record_losses(out_dir, losses)  # a kill from here on resumes at n_steps
        writer.checkpoint(n_steps, state)
        metrics, replay_info = _metrics(problem, state, version, parent, out_dir, n_steps, seconds)
        meta = _meta(version, cfg, metric, problem, state, parent, replay_info, n_steps, out_dir)
        if job is not None:
            meta["job"] = job_record(job)
        meta["fit"] = fit_checks(metrics, problem.fit_references())  # metrics/fit.py
        writer.finish(meta, metrics, losses, problem.loss_names)
        publish_dir(partial.finish(out_dir), out_dir, force)
    except (Terminated, KeyboardInterrupt):
        # Kept for `train --resume`: the checkpoints written so far are complete.
        log.warning("interrupted: `ganinf train ... --resume` continues %s", out_dir)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("trained %d steps in %.1fs -> %s", n_steps - first, seconds, out_dir)
    return out_dir


def _schedule(
    version: DatasetVersion, cfg: TrainConfig, metric: MetricConfig, parent: RunDir | None
) -> tuple[TrainConfig, MetricConfig, Schedule]:
    """The configs and schedule a run trains with: a fresh one's, or the replayed parent's."""
    if parent is not None:
        return parent.train_config, parent.metric_config, replay_schedule(parent, version)
    schedule = make_schedule(
        len(version.ids), cfg.batch_size, cfg.epochs, cfg.seed, steps=cfg.steps
    )
    return cfg, metric, schedule


def _checkpoints(cfg: TrainConfig, n_steps: int) -> list[int]:
    """The steps whose state a run keeps. "final" storage keeps the initial state (leave-one-out
    and replays start there) and the final one (what storage-efficient influence linearises
    at), no history."""
    if cfg.storage == "checkpoints":
        return checkpoint_steps(n_steps, cfg.checkpoint_every)
    return [0, n_steps]


def _metrics(
    problem: Problem,
    state: State,
    version: DatasetVersion,
    parent: RunDir | None,
    out_dir: Path,
    n_steps: int,
    seconds: float,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The final state's metrics (with a replay's changes) and, for a replay, `_replay_info`."""
    metrics: dict[str, Any] = problem.evaluate(state)
    metrics.update(
        {keys.N_INSTANCES: len(version.ids), keys.N_STEPS: n_steps, keys.TRAIN_SECONDS: seconds}
    )
    replay_info = None
    if parent is not None:
        replay_info = _replay_info(parent, version, metrics, out_dir)
        metrics.update({k: v for k, v in replay_info.items() if k in keys.CHANGES})
    return metrics, replay_info


def _meta(
    version: DatasetVersion,
    cfg: TrainConfig,
    metric: MetricConfig,
    problem: Problem,
    state: State,
    parent: RunDir | None,
    replay_info: dict[str, Any] | None,
    n_steps: int,
    out_dir: Path,
) -> dict[str, Any]:
    """The run's meta.json."""
    return {
        "ganinf_version": ganinf_mlops.__version__,
        "torch_version": torch.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataset": {
            "digest": version.digest,
            # relative to the run directory: outputs must not depend on where work lives
            "path": os.path.relpath(version.path.resolve(), out_dir.resolve()),
            "n_instances": len(version.ids),
        },
        "train": to_dict(cfg),
        "metric": to_dict(metric),
        # What else the metrics depend on (a feature classifier's digest), checked on reuse;
        # the classifier's directory relative to the run, like the dataset's.
        "provenance": problem.provenance(),
        "classifier_path": None
        if feature_classifier(metric) is None
        else os.path.relpath(Path(feature_classifier(metric)).resolve(), out_dir.resolve()),
        "n_steps": n_steps,
        "steps_per_epoch": steps_per_epoch(len(version.ids), cfg.batch_size)
        if parent is None
        else parent.steps_per_epoch,
        "checkpoint_every": cfg.checkpoint_every,
        "checkpoint_steps": _checkpoints(cfg, n_steps),
        "state_keys": list(state),
        "schedule": {"kind": "fresh" if parent is None else "replay", "replay_of": replay_info},
    }


def _replay_info(
    parent: RunDir, version: DatasetVersion, metrics: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Predicted (from the cleanse's scores) next to actual metric change of this replay."""
    parent_metrics = parent.metrics()
    info: dict[str, Any] = {
        "run": os.path.relpath(parent.path.resolve(), out_dir.resolve()),
        "dataset_digest": parent.dataset_digest,
        "n_dropped": parent.n_instances - len(version.ids),
    }
    m = version.manifest
    if m.metric is not None and m.metric in metrics and m.metric in parent_metrics:
        info["metric"] = m.metric
        info[keys.ACTUAL_CHANGE] = metrics[m.metric] - parent_metrics[m.metric]
        if m.predicted_change is not None:
            info[keys.PREDICTED_CHANGE] = m.predicted_change
    return info


def sibling_path(run: str | Path, r: int, members: str | Path | None = None) -> Path:
    """Where the run that differs from `run` only by training seed + r lives (r = 0: `run`):
    <run>-seed<r> beside it, or <members>/seed<r> when the members have a directory of their
    own (a DVC stage declares that directory as its output)."""
    run = Path(run)
    if r == 0:
        return run
    return (
        Path(members) / f"seed{r}" if members is not None else run.with_name(f"{run.name}-seed{r}")
    )


def missing_siblings(
    run: str | Path, k: int, members: str | Path | None = None, force: bool = False
) -> list[int]:
    """The r in 1..k-1 whose seed sibling of `run` `seed_siblings` trains (not there yet, or
    all of them with `force`)."""
    return [r for r in range(1, k) if force or not sibling_path(run, r, members).exists()]


@dataclasses.dataclass(frozen=True)
class Training:
    """One independent training, as an executor runs it (`executor.py`): `cfg` on `version`
    into `out` (`train`'s arguments; `resume` continues an interrupted `out`)."""

    version: DatasetVersion
    cfg: TrainConfig
    metric: Any  # the problem kind's metric config
    out: Path
    job: JobOptions | None = None
    force: bool = False
    resume: bool = False
    progress: bool = False

    @property
    def gpu(self) -> bool:
        return self.cfg.device.startswith("cuda")


def run_training(t: Training) -> Path:
    """`train` of one `Training` (module level: a Ray task imports it by name)."""
    return train(
        t.version, t.cfg, t.metric, t.out, force=t.force, progress=t.progress, resume=t.resume,
        job=t.job,
    )  # fmt: skip


def run_trainings(trainings: list[Training], executor: Executor | None = None) -> Iterator[Path]:
    """Each training on `executor` (default: one after another here), yielded in order as it
    is done; progress bars only in process."""
    ex = executor or SERIAL
    if not ex.in_process:
        trainings = [dataclasses.replace(t, progress=False) for t in trainings]
    return ex.map(run_training, trainings, gpu=any(t.gpu for t in trainings))


def seed_siblings(
    run: str | Path,
    version: DatasetVersion,
    k: int,
    *,
    members: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[Path]:
    """`run` and k-1 runs that differ only in the training seed (seed + r), at `sibling_path`
    (<run>-seed<r>, as the loop names its retrainings, or <members>/seed<r>); those missing are
    trained now, on `executor` (independent of each other)."""
    base = RunDir(run)
    out = [base.path]
    if members is not None:
        Path(members).mkdir(parents=True, exist_ok=True)  # exists even for k = 1: a DVC output
    missing = []
    for r in range(1, k):
        path = sibling_path(base.path, r, members)
        if path.exists() and not force:
            sibling = RunDir(path).verify()  # a kept member, checked whole
            sibling.check_dataset(version.digest, f" than {version.path}")
            if sibling.train_config.seed != base.train_config.seed + r:
                raise TrajectoryError(f"{path} exists but was not trained with seed + {r}")
        else:
            cfg = dataclasses.replace(base.train_config, seed=base.train_config.seed + r)
            missing.append(
                Training(
                    version,
                    cfg,
                    base.metric_config,
                    path,
                    base.recorded_job,
                    force=force,
                    progress=progress,
                )  # fmt: skip
            )
        out.append(path)
    list(run_trainings(missing, executor))
    return out
