"""Ground truth by replay: a run's exact schedule retrained with some instances' weights set to 0.

The replays share the minibatch order, latents and initialisation of the recorded run, so the
difference V(without S) - V(all) isolates the effect of removing the set S: exactly what the
first-order influence estimates (for one instance, leave-one-out; for a set, the sum of its
members' estimates). Several replays run at once as one batched computation (torch.func.vmap
over the instance weights and states); member 0 of every batch is the unmodified run, so both
terms of the difference come from the same batched arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.func import vmap
from torch.utils._pytree import tree_map
from tqdm.auto import tqdm

from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.executor import SERIAL, Executor
from ganinf_mlops.problems import Problem, Target
from ganinf_mlops.train.rundir import RunDir


def removal_changes(
    problem: Problem,
    traj: RunDir,
    target: Target,
    subsets: Sequence[Sequence[int] | np.ndarray],
    *,
    chunk: int = 64,
    progress: bool = True,
    desc: str = "replays",
    weight: float = 0.0,
) -> torch.Tensor:
    """True V(without S) - V(all) for each set S of dataset positions in `subsets`.

    `weight` other than 0 replays with the set's weights at that value instead of removing it
    (e.g. 1 - 1e-3: a perturbation whose first-order effect is 1e-3 of the removal's).
    """
    n = problem.n
    out = []
    bar = tqdm(
        total=len(subsets) * traj.n_steps, desc=desc, unit="step", disable=not progress, leave=False
    )
    for lo in range(0, len(subsets), chunk):
        part = subsets[lo : lo + chunk]
        k = len(part) + 1
        weights = torch.ones(k, n, dtype=problem.dtype, device=problem.device)
        for row, positions in enumerate(part, start=1):  # a copy: a Ray task's are read-only
            weights[row, torch.as_tensor(np.array(positions, dtype=np.int64))] = weight
        state = tree_map(
            lambda a, k=k: a.unsqueeze(0).repeat(k, *([1] * a.ndim)),
            traj.load_state(0, problem.device),
        )
        for t in range(traj.n_steps):
            inp = problem.inputs(t)

            def step_t(s, w, data=inp.data, t=t):
                return problem.step(s, w, data, t)[0]

            state = vmap(step_t)(state, weights[:, inp.idx] * inp.mask)
            bar.update(len(part))
        values = vmap(target.value)(state)
        out.append((values[1:] - values[0]).detach())
    bar.close()
    return torch.cat(out)


def loo_changes(
    problem: Problem,
    traj: RunDir,
    target: Target,
    positions: Sequence[int],
    *,
    chunk: int = 64,
    progress: bool = True,
) -> torch.Tensor:
    """True V(without j) - V(all) for each dataset position j in `positions`."""
    return removal_changes(
        problem, traj, target, [[p] for p in positions], chunk=chunk, progress=progress,
        desc="leave-one-out",
    )  # fmt: skip


@dataclass(frozen=True)
class Replays:
    """One run's replays without each set of `subsets` (dataset positions of `version`), its
    `metric` measured: an executor's independent work (`executor.py`)."""

    run: Path
    version: DatasetVersion
    metric: str
    subsets: Sequence[Sequence[int] | np.ndarray]
    desc: str = "replays"
    progress: bool = False


def run_replays(r: Replays) -> np.ndarray:
    """`removal_changes` of one `Replays` (module level: a Ray task imports it by name)."""
    from ganinf_mlops.influence.methods import problem_and_target  # late: methods imports more

    traj = RunDir(r.run)
    problem, target = problem_and_target(traj, r.version, r.metric)
    changes = removal_changes(problem, traj, target, r.subsets, progress=r.progress, desc=r.desc)
    return changes.cpu().numpy()


def mean_removal_changes(
    runs: Sequence[str | Path],
    version: DatasetVersion,
    metric: str,
    subsets: Sequence[Sequence[int] | np.ndarray],
    *,
    desc: str = "replays",
    progress: bool = True,
    executor: Executor | None = None,
) -> np.ndarray:
    """`removal_changes` of `metric` for each set, averaged over `runs` (one run, or an
    ensemble's seed siblings), each run's replays on `executor` (default: here)."""
    ex = executor or SERIAL
    work = [Replays(Path(r), version, metric, subsets, desc, progress and ex.in_process)
            for r in runs]  # fmt: skip
    gpu = any(RunDir(r).train_config.device.startswith("cuda") for r in runs)
    return np.mean(list(ex.map(run_replays, work, gpu=gpu)), axis=0)
