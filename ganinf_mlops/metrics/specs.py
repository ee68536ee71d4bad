"""Metric specs: the one owner of a metric's direction, MLflow name and wording.

A metric registers its `Metric` once, in the module that computes it (`metrics/all.py` registers
ALL beside `average_log_likelihood`; a problem kind registers the results it computes inline,
e.g. `disc_loss`, `val_loss`). Everything else derives from `METRICS`: `keys.higher_is_better`,
`keys.improvement`, `keys.tracking_name` and `keys.LOWER_IS_BETTER`; a problem's `Target`
(direction = its metric's); the influence methods and the CLI's choices (one per target of a
problem kind); and the words of figures, notes, reports and benchmarks (`direction_phrase`,
`axis_label`). Adding a metric = its value function and `register(...)` in one file, plus its
`Target` (and name in `target_names` / `result_names`) in the problem kind.

This module is pure: no torch, mlflow or click, and it does not import `keys` (keys imports it).
The lookups below import `ganinf_mlops.problems` first: the problem kinds import every module
that computes one of their results, so after that import every metric is registered.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

from ganinf_mlops.registry import Registry

# Imported before a lookup: its import registers every metric (module docstring).
REGISTERING_PACKAGE = "ganinf_mlops.problems"


@dataclass(frozen=True)
class FitRule:
    """When a trained model has fitted its data, judged by one metric against a reference the
    data itself gives (the problem kind computes it: `Problem.fit_references`, cheap and
    seeded). `ratio` says how many times worse than the reference the model is (1 = as good):
    value / reference for a lower-is-better metric, reference / value for a higher-is-better
    one, exp(reference - value) for a log-likelihood (`log`: a gap in nats as a likelihood
    ratio). Fitted when the ratio is at most `max_ratio` (chosen by measurement: docs,
    concepts.md, "The fit check")."""

    reference: str  # the reference in words: "data floor", "constant predictor"
    max_ratio: float
    log: bool = False

    def ratio(self, value: float, reference: float, higher_is_better: bool) -> float | None:
        """How many times worse than `reference` the `value` is; None where no ratio exists (a
        zero or negative reference, a non-finite value)."""
        if not (math.isfinite(value) and math.isfinite(reference)):
            return None
        if self.log:
            gap = reference - value if higher_is_better else value - reference
            return math.exp(min(gap, 700.0))
        num, den = (reference, value) if higher_is_better else (value, reference)
        return num / den if num > 0 and den > 0 else None


@dataclass(frozen=True)
class Metric:
    """A result of a run: its key, which way is better, and how people read it."""

    name: str  # the result key (keys.py): metrics.json, MLflow, DVC and score tables
    higher_is_better: bool | None  # None: no monotone direction, see `best`
    meaning: str  # one line for the MLflow glossary
    tracking_name: str = ""  # the MLflow name where `name` misleads without context ("" = name)
    influence: str = ""  # the influence method on it, described, where it is a target
    best: str = ""  # what is best when there is no direction (e.g. "near 0")
    fit: FitRule | None = None  # how it says whether a model fitted (None: it cannot)
    # The held-out result a cleanse scored on this metric is judged by ("" = itself): a metric
    # the selection was made on cannot also judge it.
    judged_by: str = ""

    @property
    def better(self) -> str:
        """'higher', 'lower', or `best` for an undirected metric."""
        if self.higher_is_better is None:
            return self.best
        return "higher" if self.higher_is_better else "lower"


METRICS: Registry[Metric] = Registry("metric")


def register(metric: Metric) -> Metric:
    """Add `metric` under its name (a second registration of a name is refused); returns it."""
    return METRICS.add(metric.name, metric)


def registered() -> Registry[Metric]:
    """`METRICS` with every metric of every problem kind registered."""
    importlib.import_module(REGISTERING_PACKAGE)
    return METRICS


def spec(name: str) -> Metric | None:
    """The registered metric called `name`, or None (a count, a change, a baseline's name)."""
    metrics = registered()
    return metrics.get(name) if name in metrics else None


def lower_is_better() -> frozenset[str]:
    return frozenset(n for n, m in registered().items() if m.higher_is_better is False)


def higher_is_better(name: str) -> bool:
    """Whether larger values of `name` are better: false only for a registered lower-is-better
    metric (an undirected or unregistered name counts as higher-is-better)."""
    return name not in lower_is_better()


def improvement(name: str, change: float) -> float:
    """A change of `name` as an improvement: positive when the metric got better."""
    return change if higher_is_better(name) else -change


def tracking_names() -> dict[str, str]:
    """{result key: its MLflow name} where they differ."""
    return {n: m.tracking_name for n, m in registered().items() if m.tracking_name}


def tracking_name(key: str) -> str:
    """The MLflow metric name of a result key (its suffixed forms too: all_raw, all_best)."""
    for old, new in tracking_names().items():
        if key == old or key.startswith(old + "_"):
            return new + key[len(old) :]
    return key


def direction_phrase(name: str, higher: bool | None = None) -> str:
    """'higher is better' or 'lower is better' for `name` (its registered direction unless
    `higher` is given)."""
    higher = higher_is_better(name) if higher is None else higher
    return "higher is better" if higher else "lower is better"


def axis_label(name: str) -> str:
    """A figure axis showing `name`: 'fd (lower is better)'."""
    return f"{name} ({direction_phrase(name)})"
