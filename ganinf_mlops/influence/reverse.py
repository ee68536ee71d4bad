"""The reverse pass: d V / d w_j for every training instance j, exact to first order.

Training is a composition of pure steps s_{t+1} = step_t(s_t, w[idx_t]) (step.py). With the
cotangent c_T = dV/ds_T of the final state, walking the steps backwards with vector-Jacobian
products gives c_t = c_{t+1} · ∂step_t/∂s_t and adds c_{t+1} · ∂step_t/∂w_batch into the entries
idx_t of the gradient. Every path from an instance's weight at any step to the final generator is
counted, in particular those running D_t -> G_{t+1} -> ... that the removal acts through.

Memory does not grow with the number of steps: the run is split at its checkpoints; each segment,
from last to first, is replayed forward from its checkpoint under `torch.func.vjp` (the replay's
forward *is* the forward the VJPs need, nothing is computed twice), then walked backwards.

Order-averaged influence (`average_order`): the derivative above credits instance j at the steps
it was drawn at, so in chaotic training two seeds' scores of j also differ by *when* j was seen.
With `average_order`, each traced step also takes the VJP of a zero-weighted term for every
instance (`Problem.step_with_all`), and j's score is the sum over traced steps of B/N times "j as
if in this minibatch" (B/N: the chance that a random epoch order puts j in a given step): the
expectation of the first-order removal effect over the minibatch orders, along the recorded
trajectory. The weight is the step's live slots / N: B/N in a run; in a counterfactual replay,
whose order is its parent's with the removed slots masked, it sums over an epoch to the parent's
B/N_parent per step. At B = N (every instance in every step) it equals the plain derivative.
Each traced step evaluates D on all N instances, so it is meant for the last epochs.

Sign convention: the first-order estimate of removing j is V(without j) - V(all) ≈ -dV/dw_j
(`predicted_change`). Harmfulness = predicted improvement on removal: predicted_change for a
higher-is-better metric, -predicted_change for a lower-is-better one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch.func import grad, vjp
from tqdm.auto import tqdm

from ganinf_mlops.errors import ConfigError, TrajectoryError
from ganinf_mlops.problems import Problem, Target
from ganinf_mlops.train.rundir import RunDir, flatten_state

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


def first_traced_step(traj: RunDir, last_epochs: int | None) -> int:
    """Step from which the pass traces back: 0 (whole run) or the start of the last k epochs."""
    if last_epochs is None:
        return 0
    if last_epochs < 1:
        raise ConfigError(f"last_epochs must be >= 1, got {last_epochs}")
    return max(0, traj.n_steps - last_epochs * traj.steps_per_epoch)


def reverse_pass(
    problem: Problem,
    traj: RunDir,
    target: Target,
    *,
    first_step: int = 0,
    checkpointed: bool = True,
    average_order: bool = False,
    verify: bool = True,
    progress: bool = True,
) -> ReverseResult:
    n = problem.n
    final = traj.load_state(traj.n_steps, problem.device)
    value = float(target.value(final))
    cot = grad(target.value)(final)
    grad_w = torch.zeros(n, dtype=problem.dtype, device=problem.device)
    zeros = torch.zeros(n, dtype=problem.dtype, device=problem.device)  # w_all: order averaging
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
            inp = problem.inputs(t)
            if t < first_step:
                state, _ = problem.step(state, inp.mask, inp.data, t)
                continue

            if average_order:

                def step_t(s, w, w_all, data=inp.data, t=t):
                    return problem.step_with_all(s, w, w_all, data, t)

                state, vjp_fn, _ = vjp(step_t, state, inp.mask, zeros, has_aux=True)
            else:

                def step_t(s, w, data=inp.data, t=t):
                    return problem.step(s, w, data, t)

                state, vjp_fn, _ = vjp(step_t, state, inp.mask, has_aux=True)
            tape.append((vjp_fn, inp.idx, inp.mask))
        if verify:
            _check_replay(traj, stop, state)
        for vjp_fn, idx, mask in reversed(tape):
            if average_order:  # j in every step, each with its chance of holding j
                cot, _, cot_all = vjp_fn(cot)
                grad_w.add_(cot_all * (mask.sum() / n))  # stays on the device: no sync per step
            else:
                cot, cot_w = vjp_fn(cot)
                grad_w.index_add_(0, idx, cot_w * mask)
            bar.update()
        del tape
    bar.close()
    if not torch.isfinite(grad_w).all():
        raise TrajectoryError("reverse pass produced non-finite gradients")
    return ReverseResult(grad_w.detach(), value, first_step)


# Largest relative difference of a replayed checkpoint that is still "the recorded trajectory".
# With the same threads the replay is bitwise the recording (checkpoints load into fresh storage);
# another intra-op thread count sums in another order, ~1e-7 per operation in float32, which a
# segment of GAN steps can grow to ~1e-5; another device, data or torch version moves the state
# by orders of magnitude more.
REPLAY_TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-3}


def _check_replay(traj: RunDir, step: int, replayed) -> None:
    """The replayed state must be the recorded one, or the influence is of another trajectory."""
    recorded = flatten_state(traj.load_state(step))
    replayed_flat = flatten_state(replayed)
    if set(recorded) != set(replayed_flat):
        raise TrajectoryError(f"replay of {traj.path} has other state tensors than its checkpoints")
    worst, tol = 0.0, REPLAY_TOLERANCE[recorded[next(iter(recorded))].dtype]
    for key, a in recorded.items():
        b = replayed_flat[key]
        if not torch.equal(a, b):
            worst = max(worst, float((a - b).abs().max() / (b.abs().max() + 1e-300)))
    if worst > tol:
        raise TrajectoryError(
            f"replay of {traj.path} diverges from the recorded trajectory at step {step} "
            f"(relative difference {worst:.2e}): different device, dtype, torch version or, "
            "in float32 on a chaotic run, torch thread count?"
        )
    if worst > 0:
        log.debug("vjp replay differs from the recording at step %d by %.2e", step, worst)
