"""A classifier trained by SGD, momentum or Adam: the setting of SGD-influence (Hara et al. 2019).

    step(state, w_batch, (x_batch, y_batch), t) -> (state', (train_loss,))

`state` = {"c": the network's parameters, "c_opt": its optimizer state}. The loss of a minibatch is
(1/B) sum_i w_i CE(f(x_i), y_i): w_j = 0 is exactly "j was left out of that minibatch" with the
others' terms unchanged, which is Hara et al.'s counterfactual SGD. The reverse pass over these
steps therefore gives their SGD-influence d V / d w_j exactly (not through a Hessian
approximation), for any optimizer the step implements.

The held-out split `x_eval` is cut in two by position: even rows are the validation set whose
loss is the influence target `val_loss` (what the instances are scored against), odd rows the
test set on which a cleansing is judged (`test_accuracy`, `test_loss`), so the judgement does not
reuse the data the removal was chosen for.

Its config is `ClassifierConfig`: the network (`train.model`: arch, hidden widths, bias,
activation) and one optimizer (`train.optim`), and nothing of a GAN's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value

from ganinf_mlops import keys, optim
from ganinf_mlops.config import TrainConfig
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.limits import check_widths, env_name, limit
from ganinf_mlops.metrics.specs import FitRule, Metric, register
from ganinf_mlops.models import CLASSIFIER_MODELS
from ganinf_mlops.models.blocks import ACTIVATIONS
from ganinf_mlops.models.classifiers import Standardize, input_stats
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import PROBLEMS
from ganinf_mlops.problems.base import CLASSIFIER, Problem, Served, State, Target
from ganinf_mlops.problems.gan import params_of
from ganinf_mlops.registry import check_choice

# What a classifier's train config held when it borrowed a GAN's (before ClassifierConfig).
_GAN_ONLY = ("g_optim", "update", "reject_threshold", "reject_embedding", "r1")


@dataclass(frozen=True)
class ClassifierModelConfig:
    """The network: `arch` names a builder in `models.CLASSIFIER_MODELS`; `hidden` are the layer
    widths of arch "mlp". `standardize` puts a fixed input layer in front of it, (x - mean) / std
    with the training set's per-feature statistics (tables: columns of very different scales)."""

    arch: str = "logreg"
    hidden: tuple[int, ...] = (64, 64)
    bias: bool = False
    activation: str = "relu"
    standardize: bool = False

    def __post_init__(self) -> None:
        CLASSIFIER_MODELS.check(self.arch)
        check_choice("activation", self.activation, ACTIVATIONS)
        if not all(w >= 1 for w in self.hidden):
            raise ConfigError("the hidden sizes must be >= 1")
        check_widths("hidden", self.hidden)


@dataclass(frozen=True)
class ClassifierMetricConfig:
    """A classifier's targets need no settings: its losses on the held-out labels."""

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Runs and params files from before this class carried a GAN's sample settings."""
        written = {"bandwidth", "n_gen", "seed"}  # what every such file held (classifier: later)
        old = written <= set(data) <= {*written, "classifier"} and data.get("classifier") is None
        return {} if old else data


@dataclass(frozen=True)
class ClassifierConfig(TrainConfig):
    """How a classifier trains: its network and its one optimizer."""

    problem: str = "classifier"
    model: ClassifierModelConfig = field(default_factory=ClassifierModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The layout that borrowed a GAN's config (`d_optim`, the discriminator's fields of
        `model`, GAN-only fields at their inert values) in today's; runs and params files
        written before ClassifierConfig stay readable."""
        if "d_optim" not in data:
            return data
        new = {k: v for k, v in data.items() if k not in (*_GAN_ONLY, "d_optim", "model")}
        new["optim"] = data["d_optim"]
        model = data.get("model")
        if isinstance(model, dict):
            new["model"] = {
                k: model[src]
                for k, src in (
                    ("arch", "arch"),
                    ("hidden", "d_hidden"),
                    ("bias", "bias"),
                    ("activation", "activation"),
                )
                if src in model
            }
        return new


def build_network(
    cfg: ClassifierConfig,
    data_shape: tuple[int, ...],
    n_classes: int,
    dtype: torch.dtype,
    device: torch.device | str,
    x: torch.Tensor | None = None,
) -> torch.nn.Module:
    """The classifier for instances of `data_shape`, initialised from cfg.seed; with
    `model.standardize`, behind the input layer of `x`'s statistics (without `x`, placeholders
    that a loaded state's "c_input" replaces)."""
    build = CLASSIFIER_MODELS.get(cfg.model.arch)
    net = build(cfg.model, data_shape, n_classes, cfg.seed, dtype, device)
    if not cfg.model.standardize:
        return net
    if x is None:
        zeros = torch.zeros(data_shape, dtype=dtype, device=device)
        stats = (zeros, torch.ones_like(zeros))
    else:
        stats = input_stats(x)
    return torch.nn.Sequential(Standardize(*stats), net)


VAL_LOSS_SPEC = register(
    Metric(
        keys.VAL_LOSS,
        higher_is_better=False,
        meaning="a classifier's loss on the validation half (influence target)",
        influence="SGD-influence on a classifier's validation loss (Hara et al.)",
        # Fitted when clearly below the loss of predicting the class frequencies
        # (docs/concepts.md, "The fit check").
        fit=FitRule("constant predictor", max_ratio=0.8),
        judged_by=keys.TEST_ACCURACY,  # the validation split chose the removals
    )
)
register(Metric(keys.VAL_ACCURACY, True, "a classifier's accuracy on the validation half"))
register(Metric(keys.TEST_LOSS, False, "a classifier's loss on the test half (never scored)"))
register(
    Metric(keys.TEST_ACCURACY, True, "a classifier's accuracy on the test half of held-out data")
)


@PROBLEMS.register("classifier")
class ClassifierProblem(Problem):
    """A classifier of labelled instances (vectors or images); target `val_loss`."""

    config_class = ClassifierConfig
    metric_class = ClassifierMetricConfig
    target_names = (keys.VAL_LOSS,)
    result_names = (keys.VAL_LOSS, keys.VAL_ACCURACY, keys.TEST_LOSS, keys.TEST_ACCURACY)
    loss_names = ("train_loss",)
    needs_labels = True

    def __init__(self, cfg, metric, x, x_eval, schedule, y=None, y_eval=None) -> None:
        super().__init__(cfg, metric, x, x_eval, schedule, y, y_eval)
        if self.y is None or self.y_eval is None:
            raise DataError(
                "a classifier needs class labels: this dataset version has none (y, y_eval); "
                "use a labelled source (digits, mnist_sample, images_npz with 'y')"
            )
        if len(self.x_eval) < 2:
            raise DataError("a classifier needs at least 2 held-out instances (validation, test)")
        # Classes come from both splits: cleansing never touches x_eval, so the number of outputs
        # (and the parameter shapes) stays the same along a version chain.
        self.n_classes = int(max(self.y.max(), self.y_eval.max())) + 1
        top = limit("classes")
        if not 2 <= self.n_classes <= top:
            raise DataError(
                f"class labels must lie in [0, {top:,}) with at least two classes "
                f"(raise it with {env_name('classes')}); the "
                f"largest label is {self.n_classes - 1}"
            )
        # With standardize: statistics of this version's training instances (a cleansed version:
        # of what remains). They are state too ("c_input", carried unchanged by every step), so
        # each checkpoint holds the whole model and a reloaded run uses the recorded statistics.
        self.net = build_network(
            cfg, tuple(self.x.shape[1:]), self.n_classes, self.dtype, self.device, self.x
        )
        self.x_val, self.y_val = self.x_eval[0::2], self.y_eval[0::2]
        self.x_test, self.y_test = self.x_eval[1::2], self.y_eval[1::2]
        net, opt_cfg = self.net, cfg.optim

        def batch_loss(p, fixed, w, x, y):
            logits = functional_call(net, {**p, **fixed}, (x,))
            return (w * F.cross_entropy(logits, y, reduction="none")).sum() / (x.shape[0])

        loss_grad = grad_and_value(batch_loss)

        def step(state: State, w: torch.Tensor, data: tuple[torch.Tensor, ...], t: int):
            x, y = data
            fixed = state.get("c_input", {})
            g, loss = loss_grad(state["c"], fixed, w, x, y)
            p, opt = optim.update(opt_cfg, state["c"], g, state["c_opt"], t)
            new = {"c": p, "c_opt": opt}
            if "c_input" in state:
                new["c_input"] = fixed
            return new, (loss.detach(),)

        self._step = step

    def step_data(self, t: int, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        assert self.y is not None
        return self.x[idx], self.y[idx]

    def step(self, state, w, data, t):
        return self._step(state, w, data, t)

    def initial_state(self) -> State:
        p = params_of(self.net)
        state: State = {"c": p, "c_opt": optim.init_state(self.cfg.optim, p)}
        if self.cfg.model.standardize:
            state["c_input"] = {k: v.detach().clone() for k, v in self.net.named_buffers()}
        return state

    def logits(self, state: State, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.net, {**state["c"], **state.get("c_input", {})}, (x,))

    def served(self, state: State) -> Served:
        shape = [int(s) for s in self.x.shape[1:]]
        params = {**state["c"], **state.get("c_input", {})}
        spec = {"data_shape": shape, "n_classes": self.n_classes}
        return Served(CLASSIFIER, self.net, params, spec)

    @classmethod
    def rebuild_served(cls, cfg, spec, params, device="cpu") -> Served:
        shape = tuple(int(s) for s in spec["data_shape"])
        net = build_network(cfg, shape, int(spec["n_classes"]), getattr(torch, cfg.dtype), device)
        return Served(CLASSIFIER, net, params, spec)

    def targets(self) -> dict[str, Target]:
        x_val, y_val = self.x_val, self.y_val

        def val_loss(state: State) -> torch.Tensor:
            return F.cross_entropy(self.logits(state, x_val), y_val)

        return {keys.VAL_LOSS: Target(VAL_LOSS_SPEC, val_loss)}

    def evaluate(self, state: State) -> dict[str, float]:
        out: dict[str, float] = {}
        with torch.no_grad():
            for split, x, y in (
                ("val", self.x_val, self.y_val),
                ("test", self.x_test, self.y_test),
            ):
                logits = self.logits(state, x)
                out[f"{split}_loss"] = float(F.cross_entropy(logits, y))
                out[f"{split}_accuracy"] = float((logits.argmax(1) == y).to(self.dtype).mean())
        return out

    def fit_references(self) -> dict[str, float]:
        """The validation loss of the constant predictor: the training labels' class
        frequencies (add-one smoothed, so a class missing from training costs a finite loss)
        for every instance. A model that learnt nothing from its inputs scores this."""
        assert self.y is not None
        counts = torch.bincount(self.y, minlength=self.n_classes).to(self.dtype) + 1
        log_p = (counts / counts.sum()).log()
        return {keys.VAL_LOSS: float(-log_p[self.y_val].mean())}

    def instance_losses(self, state: State) -> np.ndarray:
        """Cross-entropy of every training instance under `state`."""
        assert self.y is not None
        with torch.no_grad():
            losses = [
                F.cross_entropy(self.logits(state, xb), yb, reduction="none")
                for xb, yb in zip(self.x.split(1000), self.y.split(1000), strict=True)
            ]
        return torch.cat(losses).cpu().numpy()
