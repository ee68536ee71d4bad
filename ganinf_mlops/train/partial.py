"""An interrupted training run, and resuming it.

A run trains in `.<name>.partial` next to its output directory and is renamed into place when it
is complete. Checkpoints are written atomically as training passes them, with the losses so far
(`losses.partial.npy`) and what the run is (`partial.json`: config, metric config, dataset digest,
replayed run, steps). A run stopped by SIGTERM, Ctrl-C or SIGKILL leaves that directory behind:
`train --resume` continues from its last checkpoint and, the steps being deterministic, ends
bit-identical to an uninterrupted run; without --resume the leftover is reported (and replaced
with --force). Any other failure removes it.
"""

from __future__ import annotations

import json
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
    checkpoint_name,
    load_checkpoint,
    state_from_checkpoint,
)

PARTIAL_META = "partial.json"
PARTIAL_LOSSES = "losses.partial.npy"


def partial_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial"


@dataclass(frozen=True)
class Resumed:
    step: int  # the checkpoint training continues from
    state: dict[str, Any]
    losses: np.ndarray  # [step, n_losses] recorded before it


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
    recorded = read_json(work / PARTIAL_META, f"interrupted run {work}:")
    if recorded != identity:
        changed = changed_keys(identity, recorded)
        raise ConfigError(
            f"the interrupted run in {work} was started with other {', '.join(changed)}: "
            "resume it with the same arguments, or start over with --force"
        )
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


def record_losses(out_dir: Path, losses: np.ndarray) -> None:
    """The losses of the steps before the checkpoint just written."""
    with atomic_file(partial_dir(out_dir) / PARTIAL_LOSSES, "wb") as fh:
        np.save(fh, losses)


def finish(out_dir: Path) -> Path:
    """The work directory without its resume records, ready to be renamed into place."""
    work = partial_dir(out_dir)
    for name in (PARTIAL_META, PARTIAL_LOSSES):
        (work / name).unlink(missing_ok=True)
    return work
