"""The fit check: did a trained model fit its data at all, judged by one metric?

A model that never fitted (too few steps, a learning rate far too small) still yields influence
scores, but they rank seed noise: cleansing by them removes arbitrary instances. The check
compares the run's metric with a reference its own data gives: for a distance, its floor (the
metric between two halves of the training data: what sampling alone costs); for a
classifier's loss, the constant predictor's. Each metric's rule (`specs.FitRule`: the
reference's name and the largest acceptable ratio) lives in its registration; the problem kind
computes the references (`Problem.fit_references`). A run records every check in its meta.json
(`fit`); scores carry the check of the model they came from, and cleansing refuses an unfitted
one unless asked (`job.allow_unfitted`, `--allow-unfitted`).

Pure: no torch, no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ganinf_mlops.errors import UnfittedError
from ganinf_mlops.metrics.specs import spec

log = logging.getLogger(__name__)

FITTED, UNFITTED = "fitted", "unfitted"
ADVICE = "raise train.steps{now} or the learning rate"


@dataclass(frozen=True)
class FitCheck:
    """One metric's verdict: `value` against the reference `floor` (named `reference`),
    `ratio` times worse, fitted when at most `max_ratio`."""

    fit: str  # FITTED | UNFITTED
    metric: str
    value: float
    floor: float
    ratio: float
    max_ratio: float
    reference: str

    @property
    def fitted(self) -> bool:
        return self.fit == FITTED

    def record(self) -> dict[str, Any]:
        """As a run's meta.json, a score table and summary.json hold it."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any) -> FitCheck | None:
        """A recorded check, or None where there is none (a run from before the check) or it
        does not read as one."""
        try:
            check = cls(**record)
        except TypeError:
            return None
        return check if check.fit in (FITTED, UNFITTED) else None

    def line(self, n_steps: int | None = None) -> str:
        """One line for a person: the verdict, the numbers and, unfitted, what to change."""
        numbers = (
            f"{self.metric} {self.value:.4g} vs {self.reference} {self.floor:.4g} "
            f"(x{self.ratio:.3g}; fitted within x{self.max_ratio:g})"
        )
        if self.fitted:
            return f"model fitted: {numbers}"
        now = f" (now {n_steps})" if n_steps is not None else ""
        return f"model did not fit: {numbers}; {ADVICE.format(now=now)}"


def fit_check(metric: str, value: float, reference: float) -> FitCheck | None:
    """The check of `metric` at `value` against the data's `reference`; None where the metric
    has no fit rule or no ratio exists (e.g. a zero floor)."""
    s = spec(metric)
    if s is None or s.fit is None or s.higher_is_better is None:
        return None
    ratio = s.fit.ratio(value, reference, s.higher_is_better)
    if ratio is None:
        return None
    fit = FITTED if ratio <= s.fit.max_ratio else UNFITTED
    return FitCheck(fit, metric, value, reference, ratio, s.fit.max_ratio, s.fit.reference)


def fit_checks(results: Mapping[str, Any], references: Mapping[str, float]) -> dict[str, Any]:
    """Every check the references allow, as records by metric (a run's meta.json `fit`)."""
    out = {}
    for name, ref in references.items():
        if name in results:
            check = fit_check(name, float(results[name]), float(ref))
            if check is not None:
                out[name] = check.record()
    return out


def fit_metric(target_names: tuple[str, ...], method: str | None = None) -> str | None:
    """The metric a run's fit is judged by: `method` where it is one of the targets with a
    fit rule (the metric being scored), else the first such target (baselines score no
    metric); None when no target has a rule."""
    ruled = [n for n in target_names if (s := spec(n)) is not None and s.fit is not None]
    if method in ruled:
        return method
    return ruled[0] if ruled else None


def check_fitted(check: FitCheck | None, allow_unfitted: bool, n_steps: int | None = None) -> None:
    """Refuse to cleanse by the scores of a model that did not fit (UnfittedError, a
    NothingToRemoveError: nothing is written), unless `allow_unfitted`; None (no check
    recorded: a run from before it) passes."""
    if check is None or check.fitted:
        return
    if allow_unfitted:
        log.warning("%s; cleansing anyway (allow_unfitted)", check.line(n_steps))
        return
    raise UnfittedError(
        f"nothing cleansed: the {check.line(n_steps)}; or cleanse anyway with "
        "--allow-unfitted (job.allow_unfitted: true)",
        check=check,
    )
