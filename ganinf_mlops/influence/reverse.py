"""The reverse pass: d V / d w_j for every training instance j, exact to first order.

Training is a composition of pure steps s_{t+1} = step_t(s_t, w[idx_t]) (step.py). With the
cotangent c_T = dV/ds_T of the final state, walking the steps backwards with vector-Jacobian
products gives c_t = c_{t+1} · ∂step_t/∂s_t and adds c_{t+1} · ∂step_t/∂w_batch into the entries
idx_t of the gradient. Every path from an instance's weight at any step to the final generator is
counted, in particular those running D_t -> G_{t+1} -> ... that the removal acts through.

Memory does not grow with the number of steps: the run is split at its checkpoints; each segment,
from last to first, is replayed forward from its checkpoint under `torch.func.vjp` (the replay's
forward *is* the forward the VJPs need, nothing is computed twice), then walked backwards.

Sign convention: the first-order estimate of removing j is V(without j) - V(all) ≈ -dV/dw_j
(`predicted_change`). Harmfulness = predicted improvement on removal: predicted_change for a
higher-is-better metric, -predicted_change for a lower-is-better one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch.func import grad, vjp
from torch.utils._pytree import tree_leaves
from tqdm.auto import tqdm

from ganinf_mlops.errors import ConfigError, TrajectoryError
from ganinf_mlops.influence.targets import Target
from ganinf_mlops.train.problem import Problem
from ganinf_mlops.train.trajectory import Trajectory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReverseResult:
    grad_w: torch.Tensor  # dV/dw_j, [N]
    value: float  # V at the final state
    first_step: int  # steps before this one were not traced


def segments(checkpoints: list[int], n_steps: int, checkpointed: bool) -> list[tuple[int, int]]:
    if not checkpointed:
        return [(0, n_steps)]
    return list(zip(checkpoints[:-1], checkpoints[1:], strict=True))


def first_traced_step(traj: Trajectory, last_epochs: int | None) -> int:
    """Step from which the pass traces back: 0 (whole run) or the start of the last k epochs."""
    if last_epochs is None:
        return 0
    if last_epochs < 1:
        raise ConfigError(f"last_epochs must be >= 1, got {last_epochs}")
    return max(0, traj.n_steps - last_epochs * traj.steps_per_epoch)


def reverse_pass(
    problem: Problem,
    traj: Trajectory,
    target: Target,
    *,
    first_step: int = 0,
    checkpointed: bool = True,
    verify: bool = True,
    progress: bool = True,
) -> ReverseResult:
    n = problem.x.shape[0]
    final = traj.load_state(traj.n_steps, problem.device)
    value = float(target.value(final))
    cot = grad(target.value)(final)
    grad_w = torch.zeros(n, dtype=problem.dtype, device=problem.device)
    segs = [
        (a, b)
        for a, b in segments(traj.checkpoint_steps, traj.n_steps, checkpointed)
        if b > first_step
    ]
    bar = tqdm(
        total=traj.n_steps - first_step,
        desc="reverse pass",
        unit="step",
        disable=not progress,
        leave=False,
    )
    for start, stop in reversed(segs):
        state = traj.load_state(start, problem.device)
        tape = []
        for t in range(start, stop):
            idx, x, mask, z = problem.inputs(t)
            if t < first_step:
                state, _ = problem.step(state, mask, x, z, t)
                continue

            def step_t(s, w, x=x, z=z, t=t):
                return problem.step(s, w, x, z, t)

            state, vjp_fn, _ = vjp(step_t, state, mask, has_aux=True)
            tape.append((vjp_fn, idx, mask))
        if verify:
            _check_replay(traj, stop, state)
        for vjp_fn, idx, mask in reversed(tape):
            cot, cot_w = vjp_fn(cot)
            grad_w.index_add_(0, idx, cot_w * mask)
            bar.update()
        del tape
    bar.close()
    if not torch.isfinite(grad_w).all():
        raise TrajectoryError("reverse pass produced non-finite gradients")
    return ReverseResult(grad_w.detach(), value, first_step)


def _check_replay(traj: Trajectory, step: int, replayed) -> None:
    """The replayed state must be the recorded one, or the influence is of another trajectory."""
    recorded = traj.load_state(step, replayed["d"][next(iter(replayed["d"]))].device)
    worst = 0.0
    for a, b in zip(tree_leaves(recorded), tree_leaves(replayed), strict=True):
        if not torch.equal(a, b):
            worst = max(worst, float((a - b).abs().max() / (b.abs().max() + 1e-300)))
    if worst > 1e-6:
        raise TrajectoryError(
            f"replay of {traj.path} diverges from the recorded trajectory at step {step} "
            f"(relative difference {worst:.2e}): different device, dtype or torch version?"
        )
    if worst > 0:
        # Under vjp, autograd may sum a parameter's gradient contributions in another order.
        log.debug("vjp replay differs from the recording at step %d by %.2e", step, worst)
