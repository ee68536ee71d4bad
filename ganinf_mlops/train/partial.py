"""An interrupted training run, and resuming it.

A run trains in `.<name>.partial` next to its output directory and is renamed into place when it
is complete. Checkpoints are written atomically as training passes them, with the losses so far
(`losses.partial.npy`) and what the run is (`partial.json`: config, metric config, dataset digest,
replayed run, steps). A run stopped by SIGTERM, Ctrl-C or SIGKILL leaves that directory behind:
`train --resume` continues from its last checkpoint and, the steps being deterministic, ends
bit-identical to an uninterrupted run; without --resume the leftover is reported (and replaced
with --force). Any other failure removes it.

Every kill point resumes: before the first checkpoint (started over), at any checkpoint including
step 0 and the final one (the losses before a checkpoint are always on disk first), and after the
run's files are complete but before the rename (`Resumed.complete`: only the rename is left; the
recorded meta.json is checked against the arguments instead of partial.json).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganinf_mlops.errors import ConfigError, GaninfError
from ganinf_mlops.io import atomic_file, changed_keys, read_json, write_json
from ganinf_mlops.train.rundir import (
    CHECKPOINTS,
    META,
    checkpoint_name,
    load_checkpoint,
    state_from_checkpoint,
)

PARTIAL_META = "partial.json"
PARTIAL_LOSSES = "losses.partial.npy"
PARTIAL_TRACKING = "tracking.json"  # {"run_id": ...} of the tracking run writing it


def partial_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial"


@dataclass(frozen=True)
class Resumed:
    step: int  # the checkpoint training continues from
    state: dict[str, Any]
    losses: np.ndarray  # [step, n_losses] recorded before it ([0, 0] at step 0)
    complete: bool = False  # every file is written: only the rename into place is left


def prepare(
    out_dir: Path,
    identity: dict[str, Any],
    ckpts: list[int],
    device: torch.device,
    *,
    resume: bool,
    force: bool,
) -> Resumed | None:
    """Make the work directory of `out_dir` ready: fresh, or (with `resume`) the interrupted
    run of the same `identity`, whose last complete checkpoint is returned."""
    identity = json.loads(json.dumps(identity))  # as recorded: tuples are lists in JSON
    work = partial_dir(out_dir)
    if not work.exists():
        if resume:
            raise ConfigError(f"nothing to resume: no interrupted run of {out_dir} ({work})")
        work.mkdir(parents=True)
        write_json(work / PARTIAL_META, identity)
        return None
    if not resume:
        if not force:
            raise GaninfError(
                f"an interrupted run of {out_dir} is in {work}: --resume continues it, "
                "--force starts over"
            )
        shutil.rmtree(work)
        return prepare(out_dir, identity, ckpts, device, resume=False, force=False)
    if not (work / PARTIAL_META).is_file():
        if (work / META).is_file():  # killed between `finish` and the rename
            _check_identity(work, identity, _identity_of_meta(work, out_dir))
            return Resumed(identity["n_steps"], {}, np.zeros((0, 0)), complete=True)
        # Killed before partial.json was written: nothing was trained yet.
        shutil.rmtree(work)
        return prepare(out_dir, identity, ckpts, device, resume=False, force=False)
    _check_identity(work, identity, read_json(work / PARTIAL_META, f"interrupted run {work}:"))
    done = [s for s in ckpts if (work / CHECKPOINTS / checkpoint_name(s)).is_file()]
    if not done:
        shutil.rmtree(work)
        return prepare(out_dir, identity, ckpts, device, resume=False, force=False)
    step = max(done)
    flat = load_checkpoint(work, step)  # verified against the digest recorded when written
    state = state_from_checkpoint(flat, tuple(identity["state_keys"]), device)
    losses = np.zeros((0, 0))
    if step > 0:
        losses = np.load(work / PARTIAL_LOSSES, allow_pickle=False)
        if losses.shape[0] < step:
            raise ConfigError(f"interrupted run {work}: its losses end before step {step}")
    return Resumed(step, state, losses[:step])


def _check_identity(work: Path, identity: dict[str, Any], recorded: Any) -> None:
    if recorded != identity:
        changed = changed_keys(identity, recorded)
        raise ConfigError(
            f"the interrupted run in {work} was started with other {', '.join(changed)}: "
            "resume it with the same arguments, or start over with --force"
        )


def _identity_of_meta(work: Path, out_dir: Path) -> dict[str, Any]:
    """The identity (as `prepare` is given it) of the finished run in `work`, from its
    meta.json: what a run killed after dropping partial.json is checked against."""
    meta = read_json(work / META, f"interrupted run {work}:", ConfigError)
    try:
        replay_of = meta["schedule"].get("replay_of")
        replay = None
        if replay_of is not None:  # recorded relative to the run's final place
            replay = str(Path(os.path.normpath(out_dir.resolve() / replay_of["run"])).resolve())
        return {
            "train": meta["train"], "metric": meta["metric"],
            "dataset_digest": meta["dataset"]["digest"], "replay": replay,
            "n_steps": meta["n_steps"], "state_keys": meta["state_keys"],
        }  # fmt: skip
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"interrupted run {work}: invalid meta.json ({exc})") from None


def record_losses(out_dir: Path, losses: np.ndarray) -> None:
    """The losses of the steps before the checkpoint just written."""
    with atomic_file(partial_dir(out_dir) / PARTIAL_LOSSES, "wb") as fh:
        np.save(fh, losses)


def record_tracking_run(out_dir: Path, run_id: str) -> None:
    """The tracking run (an MLflow run id) that writes the run now: a resume after SIGKILL,
    which left that run open, closes it and links its own to it."""
    write_json(partial_dir(out_dir) / PARTIAL_TRACKING, {"run_id": run_id})


def tracking_run(out_dir: Path) -> str | None:
    """The tracking run recorded by the interrupted run of `out_dir`, if any."""
    path = partial_dir(out_dir) / PARTIAL_TRACKING
    if not path.is_file():
        return None
    recorded = read_json(path, f"interrupted run {partial_dir(out_dir)}:", ConfigError)
    run_id = recorded.get("run_id") if isinstance(recorded, dict) else None
    return run_id if isinstance(run_id, str) and run_id.isalnum() else None


def finish(out_dir: Path) -> Path:
    """The work directory without its resume records, ready to be renamed into place."""
    work = partial_dir(out_dir)
    for name in (PARTIAL_TRACKING, PARTIAL_META, PARTIAL_LOSSES):
        (work / name).unlink(missing_ok=True)
    return work
