"""The seam between what is trained and the engine that records, replays and differentiates it.

A `Problem` owns the models, the pure step, the inputs of step t and the targets. The trainer,
the trajectory, the reverse pass, leave-one-out replays, validation, scores and cleanse only use
this interface, so an MLP GAN, a convolutional GAN or a classifier are new subclasses registered
in `problems.PROBLEMS`, not forks of the engine.

    step(state, w_batch, data, t) -> (state', aux)

`state` is a pytree (nested dicts of tensors) holding every network and optimizer state;
`w_batch` [B] weighs each slot's instance in the loss (1 in training, 0 for a removed instance);
`data` is the tuple `step_data(t, idx)` returns (a minibatch, latents, labels: opaque to the
engine); `aux` holds detached losses for logging.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ganinf_mlops.config import MetricConfig, TrainConfig, check_device
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.metrics.specs import Metric
from ganinf_mlops.problems.schedule import Schedule
from ganinf_mlops.registry import check_choice

State = dict[str, Any]

GENERATOR, CLASSIFIER = "generator", "classifier"  # the kinds of network a run serves


@dataclass(frozen=True)
class Served:
    """The network a run's logged model serves (tracking/models.py), with its final parameters.

    `kind` GENERATOR: latents [n, latent_dim] -> samples [n, *data_shape]; CLASSIFIER: instances
    [n, *data_shape] -> class logits [n, n_classes]. `spec` is what rebuilding `net` takes besides
    the train config (`Problem.rebuild_served`), so a logged model needs no dataset: data_shape,
    and latent_dim or n_classes.
    """

    kind: str
    net: nn.Module
    params: dict[str, torch.Tensor]
    spec: dict[str, Any]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # as the problem calls it: a pure function of the parameters
            return functional_call(self.net, self.params, (x,))


@dataclass(frozen=True)
class Target:
    """A registered metric's differentiable value V(final state); the metric's direction
    (`metrics.specs`) fixes harmfulness."""

    metric: Metric
    value: Callable[[State], torch.Tensor]

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def higher_is_better(self) -> bool:
        if self.metric.higher_is_better is None:
            raise ConfigError(f"metric {self.name!r} has no direction: it cannot be a target")
        return self.metric.higher_is_better

    def harmfulness(self, predicted_change: torch.Tensor) -> torch.Tensor:
        """Predicted improvement on removal, from the predicted change V(without) - V(all)."""
        return predicted_change if self.higher_is_better else -predicted_change


@dataclass(frozen=True)
class StepInputs:
    idx: torch.Tensor  # [B] positions into the dataset version's arrays
    mask: torch.Tensor  # [B] 1 = live slot, 0 = dropped by a counterfactual replay
    data: tuple[torch.Tensor, ...]  # what step() consumes besides the weights


class Problem(ABC):
    """A training problem on one dataset version's arrays, with its schedule, ready to replay."""

    # The kind's own config dataclass (a TrainConfig subclass): what `train:` holds for it.
    config_class: type[TrainConfig] = TrainConfig
    # Its metric config dataclass: what `metric:` holds for it (generated samples by default).
    metric_class: type = MetricConfig

    # Names of the targets `targets()` returns, for the methods registry and error messages.
    target_names: tuple[str, ...] = ()
    # Names of the numeric results `evaluate()` returns (run metrics.json keys).
    result_names: tuple[str, ...] = ()
    # Names of the losses `step()` returns as aux (losses.csv columns, MLflow step metrics).
    loss_names: tuple[str, ...] = ()
    # Whether it learns class labels (y, y_eval): checked against a user's file before a job.
    needs_labels: bool = False

    def __init__(
        self,
        cfg: Any,
        metric: Any,
        x: np.ndarray,
        x_eval: np.ndarray,
        schedule: Schedule,
        y: np.ndarray | None = None,
        y_eval: np.ndarray | None = None,
    ):
        if not isinstance(cfg, self.config_class):
            raise ConfigError(
                f"a {cfg.problem!r} run takes a {self.config_class.__name__}, "
                f"got a {type(cfg).__name__}"
            )
        if not isinstance(metric, self.metric_class):
            raise ConfigError(
                f"a {cfg.problem!r} run takes a {self.metric_class.__name__} as its metric "
                f"config, got a {type(metric).__name__}"
            )
        self.cfg, self.metric, self.schedule = cfg, metric, schedule
        check_device(cfg.device, available=True)
        self.device = torch.device(cfg.device)
        self.dtype: torch.dtype = getattr(torch, cfg.dtype)
        self.x = self.tensor(x)
        self.x_eval = self.tensor(x_eval)
        # Class labels of x / x_eval where the version has them (what a classifier learns).
        self.y = None if y is None else self.labels(y)
        self.y_eval = None if y_eval is None else self.labels(y_eval)

    def labels(self, arr: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(arr), dtype=torch.int64, device=self.device)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def tensor(self, arr: np.ndarray) -> torch.Tensor:
        """A copy of `arr` in the problem's dtype and device (npz arrays are read-only)."""
        return torch.tensor(np.asarray(arr), dtype=self.dtype, device=self.device)

    def inputs(self, t: int) -> StepInputs:
        """Everything step t consumes: the same for training, reverse pass and replays."""
        idx = self.schedule.indices[t].to(self.device)
        mask = self.schedule.mask[t].to(device=self.device, dtype=self.dtype)
        return StepInputs(idx, mask, self.step_data(t, idx))

    @abstractmethod
    def step_data(self, t: int, idx: torch.Tensor) -> tuple[torch.Tensor, ...]: ...

    @abstractmethod
    def step(
        self, state: State, w: torch.Tensor, data: tuple[torch.Tensor, ...], t: int
    ) -> tuple[State, tuple[torch.Tensor, ...]]: ...

    def step_with_all(
        self,
        state: State,
        w: torch.Tensor,
        w_all: torch.Tensor,
        data: tuple[torch.Tensor, ...],
        t: int,
    ) -> tuple[State, tuple[torch.Tensor, ...]]:
        """`step` plus a term for every training instance j weighted by `w_all[j]` (`w_all` [N],
        0 in training), normalised like a batch slot's: d state'/d w_all[j] is the step's response
        to j as if j were in this minibatch (the reverse pass's order-averaged influence)."""
        raise ConfigError(
            f"order-averaged influence is implemented for GANs; a {self.cfg.problem!r} run "
            "has no step with every instance"
        )

    @abstractmethod
    def initial_state(self) -> State: ...

    @abstractmethod
    def targets(self) -> dict[str, Target]: ...

    @abstractmethod
    def evaluate(self, state: State) -> dict[str, float]:
        """Every final metric of a state (no gradients): the run's metrics.json results."""

    def target(self, name: str) -> Target:
        check_choice(f"target of a {self.cfg.problem} run", name, self.target_names)
        return self.targets()[name]

    def fit_references(self) -> dict[str, float]:
        """What its metrics measure on the data itself, by metric name: the reference each
        fit rule (`metrics.specs.FitRule`) compares the trained model with. Cheap (no
        training) and deterministic (seeded by the metric config); {} where none exists."""
        return {}

    def halves(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training instances in two random halves (seeded by the metric config's seed):
        between them a metric measures what sampling alone costs, the data's floor."""
        g = torch.Generator().manual_seed(int(getattr(self.metric, "seed", 0)))
        perm = torch.randperm(self.n, generator=g).to(self.device)
        half = self.n // 2
        return self.x[perm[:half]], self.x[perm[half : 2 * half]]

    def features(self, x: np.ndarray) -> np.ndarray:
        """Instances [N, ...] in the feature space of the metrics (what baselines score):
        the flattened instances unless a problem has a feature map."""
        return np.asarray(x).reshape(len(x), -1)

    def provenance(self) -> dict[str, Any]:
        """What the problem depends on besides its config and data (a feature classifier's
        digest): recorded in the run's meta.json and compared when the run is used again."""
        return {}

    def check_version(self, version: Any) -> None:
        """Refuse a dataset version this problem cannot be trained or evaluated on."""
        return None

    def instance_losses(self, state: State) -> np.ndarray:
        """Each training instance's loss under `state` (the "loss" baseline: large = suspect)."""
        raise ConfigError(
            f"method 'loss' needs per-instance training losses; a {self.cfg.problem!r} run has none"
        )

    def samples(self, state: State) -> np.ndarray | None:
        """Generated samples of a state for figures, or None where a problem generates none."""
        return None

    def served(self, state: State) -> Served | None:
        """The network a logged model of the run serves, with `state`'s parameters (None: a kind
        that serves none)."""
        return None

    @classmethod
    def rebuild_served(
        cls, cfg: Any, spec: dict[str, Any], params: dict[str, torch.Tensor], device: str = "cpu"
    ) -> Served:
        """`served` again from what a logged model keeps: the train config, the spec and the
        parameters (no data, no optimizer state)."""
        raise ConfigError(f"a {cfg.problem!r} run serves no model")
