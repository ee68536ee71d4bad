"""Leave-one-out ground truth: replay a run's exact schedule with one instance's weight set to 0.

The replays share the minibatch order, latents and initialisation of the recorded run, so the
difference V(without j) - V(all) isolates the instance's effect: exactly what the first-order
influence estimates. Several replays run at once as one batched computation (torch.func.vmap over
the instance weights and states); member 0 of every batch is the unmodified run, so both terms of
the difference come from the same batched arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.func import vmap
from torch.utils._pytree import tree_map
from tqdm.auto import tqdm

from ganinf_mlops.problems import Problem, Target
from ganinf_mlops.train.rundir import RunDir


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
    n = problem.n
    out = []
    bar = tqdm(
        total=len(positions) * traj.n_steps,
        desc="leave-one-out",
        unit="step",
        disable=not progress,
        leave=False,
    )
    for lo in range(0, len(positions), chunk):
        part = torch.as_tensor(list(positions[lo : lo + chunk]), dtype=torch.int64)
        k = len(part) + 1
        weights = torch.ones(k, n, dtype=problem.dtype, device=problem.device)
        weights[torch.arange(1, k), part.to(problem.device)] = 0.0
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
