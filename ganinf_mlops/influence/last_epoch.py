"""Storage-efficient influence (Suzuki, Kobayashi, Narihira): the last epoch, linearised at the
final state.

The exact reverse pass (reverse.py) needs the state at every traced step, which it replays from
checkpoints. The storage-efficient estimate keeps only the final state: it traces back the last
`epochs` epochs and evaluates every step's Jacobians at the final state s_T instead of s_t,

    c_t = c_{t+1} · ∂step_t/∂s (s_T),   dV/dw_j += c_{t+1} · ∂step_t/∂w_batch (s_T) at j's slots,

so a run trained with `train.storage: final` (the initial and final states, no history) is
enough, and memory holds one state and one cotangent. Minibatch indices and latents still come
from the recorded schedule (a few bytes per step). Instances not met in the traced epochs get 0.
The approximation is good when the parameters move little over the last epochs (a converged
classifier); benchmarks/classifier_cleansing.py measures its agreement with the exact pass and
with leave-one-out retraining.
"""

from __future__ import annotations

import torch
from torch.func import grad, vjp
from tqdm.auto import tqdm

from ganinf_mlops.errors import TrajectoryError
from ganinf_mlops.influence.reverse import ReverseResult, first_traced_step
from ganinf_mlops.problems import Problem, Target
from ganinf_mlops.train.rundir import RunDir


def last_epoch_pass(
    problem: Problem, traj: RunDir, target: Target, *, epochs: int = 1, progress: bool = True
) -> ReverseResult:
    """dV/dw_j over the last `epochs` epochs, every step linearised at the final state."""
    final = traj.load_state(traj.n_steps, problem.device)
    value = float(target.value(final))
    cot = grad(target.value)(final)
    grad_w = torch.zeros(problem.n, dtype=problem.dtype, device=problem.device)
    first = first_traced_step(traj, epochs)
    for t in tqdm(
        range(traj.n_steps - 1, first - 1, -1),
        desc="last-epoch pass",
        unit="step",
        disable=not progress,
        leave=False,
    ):
        inp = problem.inputs(t)

        def step_t(s, w, data=inp.data, t=t):
            return problem.step(s, w, data, t)

        _, vjp_fn, _ = vjp(step_t, final, inp.mask, has_aux=True)
        cot, cot_w = vjp_fn(cot)
        grad_w.index_add_(0, inp.idx, cot_w * inp.mask)
    if not torch.isfinite(grad_w).all():
        raise TrajectoryError("last-epoch pass produced non-finite gradients")
    return ReverseResult(grad_w.detach(), value, first)
