"""The reverse pass equals autograd through naively unrolled training (float64, tiny case)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.utils._pytree import tree_map

from ganinf_mlops.config import MetricConfig
from ganinf_mlops.influence.reverse import first_traced_step, reverse_pass
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import Problem
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.problems.schedule import latent
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import train

TINY_MODEL = ModelConfig(latent_dim=3, g_hidden=(5, 4), d_hidden=(6, 5), bias=True)
METRIC = MetricConfig(bandwidth=0.7, n_gen=17, seed=3)


def _cfg(opt: str, update: str, lr: float, r1: float = 0.0) -> GanConfig:
    o = OptimConfig(name=opt, lr=lr, momentum=0.8, beta1=0.5, beta2=0.9)
    return GanConfig(
        r1=r1,
        model=TINY_MODEL,
        d_optim=o,
        g_optim=o,
        batch_size=4,
        epochs=3,
        update=update,
        checkpoint_every=2,
        seed=5,
    )


def naive_grad_w(
    traj: RunDir,
    problem: Problem,
    x_eval: torch.Tensor,
    first: int = 0,
    average_order: bool = False,
) -> torch.Tensor:
    """dALL/dw by plain autograd through all steps, written independently of step.py/optim.py.

    Weights of steps before `first` are held constant (the last-k-epochs approximation). With
    `average_order`, d ALL / d eps instead, where every traced step's D loss also holds
    (live slots/N) * eps_j * (the real-data terms of every instance j) / B at eps = 0: the
    influence averaged over minibatch orders (live slots = B except in a counterfactual replay)."""
    cfg = traj.train_config
    gen, disc = problem.gen, problem.disc
    n = problem.x.shape[0]
    w = torch.ones(n, dtype=torch.float64, requires_grad=True)
    eps = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    s0 = traj.load_state(0)
    d = {k: v.clone().requires_grad_() for k, v in s0["d"].items()}
    g = {k: v.clone().requires_grad_() for k, v in s0["g"].items()}
    opt_d = {k: {n: torch.zeros_like(v) for n, v in d.items()} for k in ("a", "b")}
    opt_g = {k: {n: torch.zeros_like(v) for n, v in g.items()} for k in ("a", "b")}

    def disc_logit(dp, inp):
        return functional_call(disc, dp, (inp,)).squeeze(-1)

    def apply(o, params, grads, st, t):
        out = {}
        for k, p in params.items():
            gk = grads[k]
            if o.name == "sgd":
                out[k] = p - o.lr * gk
            elif o.name == "momentum":
                st["a"][k] = o.momentum * st["a"][k] + gk
                out[k] = p - o.lr * st["a"][k]
            else:
                st["a"][k] = o.beta1 * st["a"][k] + (1 - o.beta1) * gk
                st["b"][k] = o.beta2 * st["b"][k] + (1 - o.beta2) * gk**2
                mh = st["a"][k] / (1 - o.beta1 ** (t + 1))
                vh = st["b"][k] / (1 - o.beta2 ** (t + 1))
                # sqrt'(0) taken as 0, as in optim.py: a never-updated entry stays out of the graph
                safe = torch.where(vh > 0, vh, torch.ones_like(vh))
                root = torch.where(vh > 0, safe.sqrt(), torch.zeros_like(vh))
                out[k] = p - o.lr * mh / (root + o.eps)
        return out

    for t in range(traj.n_steps):
        inp = problem.inputs(t)
        idx, mask, (xb, z) = inp.idx, inp.mask, inp.data
        # Fresh clones: each gradient below is the partial derivative its update uses, so no
        # spurious path (e.g. G_t -> D_{t+1} -> L_G) is counted.
        dc = {k: v.clone() for k, v in d.items()}
        gc = {k: v.clone() for k, v in g.items()}
        fake = functional_call(gen, gc, (z,))
        wt = w if t >= first else w.detach()
        ld = (wt[idx] * mask * F.softplus(-disc_logit(dc, xb))).sum() / len(idx) + F.softplus(
            disc_logit(dc, fake)
        ).mean()
        if cfg.r1:
            xr = xb.clone().requires_grad_()
            (gx,) = torch.autograd.grad(disc_logit(dc, xr).sum(), xr, create_graph=True)
            sq_norm = gx.pow(2).sum(1)
            ld = ld + cfg.r1 / 2 * (wt[idx] * mask * sq_norm).sum() / len(idx)
        if average_order and t >= first:
            xa = problem.x.clone().requires_grad_()
            every = F.softplus(-disc_logit(dc, xa))
            if cfg.r1:
                (ga,) = torch.autograd.grad(disc_logit(dc, xa).sum(), xa, create_graph=True)
                every = every + cfg.r1 / 2 * ga.pow(2).sum(1)
            ld = ld + (mask.sum() / n) * (eps * every).sum() / len(idx)
        gd = dict(
            zip(dc, torch.autograd.grad(ld, list(dc.values()), create_graph=True), strict=True)
        )
        d_new = apply(cfg.d_optim, dc, gd, opt_d, t)
        d_for_g = d_new if cfg.update == "alternating" else dc
        gc2 = {k: v.clone() for k, v in gc.items()}
        lg = F.softplus(-disc_logit(d_for_g, functional_call(gen, gc2, (z,)))).mean()
        gg = dict(
            zip(gc2, torch.autograd.grad(lg, list(gc2.values()), create_graph=True), strict=True)
        )
        g = apply(cfg.g_optim, gc2, gg, opt_g, t)
        d = d_new
    z_eval = latent(METRIC.seed, METRIC.n_gen, TINY_MODEL.latent_dim, torch.float64, "cpu")
    gen_x = functional_call(gen, g, (z_eval,))
    sq = (x_eval[:, None, :] - gen_x[None]).pow(2).sum(-1)
    h = METRIC.bandwidth
    ll = (
        torch.logsumexp(-sq / (2 * h * h), 1) - math.log(len(gen_x)) - math.log(2 * math.pi * h * h)
    )
    (gw,) = torch.autograd.grad(ll.mean(), eps if average_order else w)
    return gw


@pytest.mark.parametrize(
    "opt,update,lr",
    [
        ("sgd", "simultaneous", 0.1),
        ("sgd", "alternating", 0.1),
        ("momentum", "simultaneous", 0.05),
        ("momentum", "alternating", 0.05),
        ("adam", "simultaneous", 0.01),
        ("adam", "alternating", 0.01),
    ],
)
def test_reverse_pass_equals_naive_autograd(tiny_version, tmp_path, opt, update, lr):
    _check_exact(tiny_version, tmp_path, _cfg(opt, update, lr))


@pytest.mark.parametrize("opt,update", [("sgd", "alternating"), ("adam", "simultaneous")])
def test_reverse_pass_is_exact_with_the_r1_penalty(tiny_version, tmp_path, opt, update):
    # Third derivatives of D: the penalty's gradient holds grad_x D, and the pass differentiates it.
    _check_exact(tiny_version, tmp_path, _cfg(opt, update, 0.05 if opt == "sgd" else 0.01, r1=2.0))


def _check_exact(tiny_version, tmp_path, cfg: GanConfig) -> None:
    run = train(tiny_version, cfg, METRIC, tmp_path / "run", progress=False)
    traj = RunDir(run)
    problem = traj.problem(tiny_version)
    x_eval = torch.tensor(tiny_version.x_eval)
    target = problem.target("all")
    ours = reverse_pass(problem, traj, target, progress=False).grad_w
    ref = naive_grad_w(traj, problem, x_eval)
    assert ref.abs().max() > 0
    rel = (ours - ref).norm() / ref.norm()
    assert rel <= 1e-8, f"relative error {rel:.3e}"
    flat = reverse_pass(problem, traj, target, checkpointed=False, progress=False).grad_w
    assert (flat - ours).norm() / ref.norm() <= 1e-12


def test_last_epochs_traces_only_the_tail(tiny_version, tmp_path):
    run = train(
        tiny_version,
        _cfg("momentum", "alternating", 0.05),
        METRIC,
        tmp_path / "run",
        progress=False,
    )
    traj = RunDir(run)
    problem = traj.problem(tiny_version)
    x_eval = torch.tensor(tiny_version.x_eval)
    target = problem.target("all")
    first = first_traced_step(traj, last_epochs=1)
    assert first == traj.n_steps - traj.steps_per_epoch == 6
    tail = reverse_pass(problem, traj, target, first_step=first, progress=False).grad_w
    ref = naive_grad_w(traj, problem, x_eval, first=first)
    assert (tail - ref).norm() / ref.norm() <= 1e-8
    full = reverse_pass(problem, traj, target, progress=False).grad_w
    assert (tail - full).norm() / full.norm() > 1e-3
    assert first_traced_step(traj, last_epochs=10) == 0


@pytest.mark.parametrize(
    "opt,update,r1",
    [("sgd", "alternating", 0.0), ("adam", "simultaneous", 0.0), ("sgd", "alternating", 2.0)],
)
def test_order_averaged_pass_equals_naive_autograd(tiny_version, tmp_path, opt, update, r1):
    cfg = _cfg(opt, update, 0.05 if opt == "sgd" else 0.01, r1=r1)
    run = train(tiny_version, cfg, METRIC, tmp_path / "run", progress=False)
    traj = RunDir(run)
    problem = traj.problem(tiny_version)
    x_eval = torch.tensor(tiny_version.x_eval)
    target = problem.target("all")
    for first in (0, first_traced_step(traj, last_epochs=1)):
        ours = reverse_pass(
            problem, traj, target, first_step=first, average_order=True, progress=False
        ).grad_w
        ref = naive_grad_w(traj, problem, x_eval, first=first, average_order=True)
        assert ref.abs().min() > 0  # every instance counts at every traced step
        assert (ours - ref).norm() / ref.norm() <= 1e-8
        drawn = reverse_pass(problem, traj, target, first_step=first, progress=False).grad_w
        assert (ours - drawn).norm() / drawn.norm() > 1e-3  # not the derivative at the draws


def test_order_averaging_is_the_derivative_when_every_step_holds_every_instance(
    tiny_version, tmp_path
):
    # B = N: each step holds every instance, so averaging over orders changes nothing.
    cfg = dataclasses.replace(_cfg("adam", "alternating", 0.01), batch_size=12, epochs=6)
    run = train(tiny_version, cfg, METRIC, tmp_path / "run", progress=False)
    traj = RunDir(run)
    problem = traj.problem(tiny_version)
    target = problem.target("all")
    drawn = reverse_pass(problem, traj, target, progress=False).grad_w
    averaged = reverse_pass(problem, traj, target, average_order=True, progress=False).grad_w
    assert drawn.abs().max() > 0
    assert (averaged - drawn).norm() / drawn.norm() <= 1e-12


def test_an_instance_in_the_batch_counts_the_same_through_either_weight(tiny_version, tmp_path):
    # d step / d w_all[j] is "j as if in this minibatch": for j in the batch, its slot's weight.
    run = train(tiny_version, _cfg("adam", "alternating", 0.01), METRIC, tmp_path / "run",
                progress=False)  # fmt: skip
    traj = RunDir(run)
    problem = traj.problem(tiny_version)
    state, inp, t = traj.load_state(4), problem.inputs(4), 4
    zeros = torch.zeros(problem.n, dtype=torch.float64)
    plain, _ = problem.step(state, inp.mask, inp.data, t)
    same, _ = problem.step_with_all(state, inp.mask, zeros, inp.data, t)
    for part in ("d", "g"):
        for k in plain[part]:
            assert torch.equal(plain[part][k], same[part][k])
    cot = tree_map(lambda v: torch.randn_like(v) if v.is_floating_point() else v, same)
    _, fn, _ = torch.func.vjp(
        lambda w, wa: problem.step_with_all(state, w, wa, inp.data, t), inp.mask, zeros,
        has_aux=True,
    )  # fmt: skip
    by_slot, by_all = fn(cot)
    assert by_slot.abs().max() > 0
    torch.testing.assert_close(by_all[inp.idx], by_slot, rtol=1e-10, atol=1e-14)


def test_order_averaging_needs_a_gan_and_the_trajectory(tmp_path):
    from types import SimpleNamespace

    from ganinf_mlops.errors import ConfigError
    from ganinf_mlops.problems.base import Problem as Base

    classifier = SimpleNamespace(cfg=SimpleNamespace(problem="classifier"))
    with pytest.raises(ConfigError, match="order-averaged influence is implemented for GANs"):
        Base.step_with_all(classifier, {}, None, None, (), 0)  # the base class's refusal


def test_order_averaging_on_a_counterfactual_replay(tiny_version, tmp_path):
    # A replay's order is its parent's with the removed slots masked: each step weighs the
    # every-instance term by its live slots / N, so an epoch sums to the parent's chance.
    from ganinf_mlops.data.version import Provenance, write_version

    cfg = _cfg("sgd", "alternating", 0.05)
    parent = train(tiny_version, cfg, METRIC, tmp_path / "run", progress=False)
    keep = np.setdiff1d(np.arange(tiny_version.n), [1, 4, 7])
    child = write_version(
        tmp_path / "child", tiny_version.x[keep], tiny_version.ids[keep], tiny_version.x_eval,
        dataset="test", params={},
        provenance=Provenance(tiny_version, removed_ids=tiny_version.ids[[1, 4, 7]]),
    )  # fmt: skip
    traj = RunDir(train(child, cfg, METRIC, tmp_path / "replay", replay=parent, progress=False))
    problem = traj.problem(child)
    assert float(problem.schedule.mask.sum()) < problem.schedule.mask.numel()  # slots masked
    ours = reverse_pass(problem, traj, problem.target("all"), average_order=True, progress=False)
    ref = naive_grad_w(traj, problem, torch.tensor(child.x_eval), average_order=True)
    assert (ours.grad_w - ref).norm() / ref.norm() <= 1e-8
