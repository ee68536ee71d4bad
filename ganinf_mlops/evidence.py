"""Whether a removal is worth making: the evidence of an ensemble's members.

A selection (at most k instances, chosen by a policy from the members' mean estimate) is judged
by cross-validation: member m is held out, the selection is made from the mean of the other K-1,
and m predicts the improvement of that set. The K held-out improvements say whether the set helps
beyond seed noise: a set that helps only on the runs that chose it is an artefact of their
seeds, and removing it does not help a fresh retraining.

The evidence *holds* when at least `min_agreement` of the members predict an improvement and
their mean predicted improvement is above its noise: a one-sided t-test of the K held-out
improvements against 0 at level `ALPHA` (their mean at least t_{0.95, K-1} standard errors above
0). One run's scores carry no such evidence (`evidence` returns None): their selection is
unverified.

Improvements are sign-normalised (positive = better) in the metric's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ganinf_mlops import keys
from ganinf_mlops.errors import DataError
from ganinf_mlops.influence.scores import ScoreTable, positions

# "Beyond noise": the held-out improvements' one-sided t-test level. On the default preset's
# tuning seeds, clean data's sets reached agreement (6 of 8) by chance but not this test
# (docs/benchmarks/decisions.md).
ALPHA = 0.05


@dataclass(frozen=True)
class Evidence:
    """What an ensemble's members, each held out of the selection, predict for it."""

    held_out: tuple[float, ...]  # member m's predicted improvement of the set chosen without m
    selected: np.ndarray  # ids chosen from all members' mean
    predicted: float  # the mean's predicted improvement of `selected`

    @property
    def members(self) -> int:
        return len(self.held_out)

    @property
    def agreeing(self) -> int:
        return sum(v > 0 for v in self.held_out)

    @property
    def mean(self) -> float:
        return float(np.mean(self.held_out))

    @property
    def spread(self) -> float:
        """Standard deviation of the held-out improvements (the members' seed noise)."""
        return float(np.std(self.held_out, ddof=1)) if self.members > 1 else math.nan

    @property
    def p_value(self) -> float:
        """One-sided t-test of the held-out improvements against 0 (1 when they are all
        equal and not positive, 0 when all equal and positive)."""
        if not self.spread > 0:
            return 0.0 if self.mean > 0 else 1.0
        t = self.mean / (self.spread / math.sqrt(self.members))
        return float(stats.t.sf(t, self.members - 1))

    def needed(self, min_agreement: float) -> int:
        return math.ceil(min_agreement * self.members - 1e-9)

    def holds(self, min_agreement: float) -> bool:
        return self.agreeing >= self.needed(min_agreement) and self.p_value < ALPHA

    def why_not(self, min_agreement: float) -> str:
        """Why the evidence does not hold (for messages); empty when it does."""
        if self.holds(min_agreement):
            return ""
        if self.agreeing < self.needed(min_agreement):
            return (
                f"only {self.agreeing} of {self.members} ensemble members, each held out of the "
                f"selection, predict that removing it helps (min_agreement {min_agreement:g} "
                f"needs {self.needed(min_agreement)})"
            )
        return (
            f"{self.agreeing} of {self.members} held-out members agree, but their mean predicted "
            f"improvement {self.mean:.3g} (sd {self.spread:.3g}) is not beyond its noise "
            f"(one-sided t-test p = {self.p_value:.2g}, needs < {ALPHA:g})"
        )


def member_changes(table: ScoreTable) -> np.ndarray | None:
    """Each ensemble member's predicted change, [K, n] aligned with `table.ids`; None for the
    scores of one run or of a baseline."""
    members = table.extra.get(keys.MEMBERS)
    if members is None:
        return None
    try:
        ids = np.asarray(members["ids"], dtype=np.int64)
        change = np.asarray(members["change"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise DataError("score table: ensemble members are not {ids, change} arrays") from None
    if change.ndim != 2 or change.shape[0] < 2 or change.shape[1] != ids.size:
        raise DataError(f"score table: ensemble members of shape {change.shape} for {ids.size} ids")
    if not np.isfinite(change).all():
        raise DataError("score table: an ensemble member's predicted change is not finite")
    pos = positions(ids, table.ids)
    if pos is None:
        raise DataError("score table: the ensemble members' ids differ from the table's")
    return change[:, pos]


def metric_sign(table: ScoreTable) -> float:
    """+1 when the table's metric is higher-is-better, -1 when lower-is-better."""
    higher = table.higher_is_better()
    if higher is None:
        raise DataError(
            f"score table: the direction of {table.metric!r} is unknown (not a registered "
            "metric, and the table records no higher_is_better)"
        )
    return 1.0 if higher else -1.0


def top_set(
    gain: np.ndarray,
    ids: np.ndarray,
    k: int,
    policy: str = "positive",
    threshold: float | None = None,
) -> np.ndarray:
    """Positions of the at most `k` largest gains that `policy` keeps (ties: the smaller id
    first, as `ScoreTable.order` ranks them): the selection of `cleanse.select_removals`, on
    any gain vector (a held-out mean has no table of its own)."""
    order = np.lexsort((ids, -gain))[:k]
    if policy == "positive":
        order = order[gain[order] > 0]
    elif policy == "threshold":
        order = order[gain[order] > threshold]
    return order


def evidence(
    table: ScoreTable, k: int, policy: str = "positive", threshold: float | None = None
) -> Evidence | None:
    """The held-out evidence for removing at most `k` instances of `table` (module docstring);
    None for scores that are not an ensemble's."""
    changes = member_changes(table)
    if changes is None:
        return None
    gains = metric_sign(table) * changes  # [K, n], positive = removal improves
    held_out = []
    for m in range(gains.shape[0]):
        chosen = top_set(np.delete(gains, m, axis=0).mean(axis=0), table.ids, k, policy, threshold)
        held_out.append(float(gains[m, chosen].sum()))
    mean = gains.mean(axis=0)
    chosen = top_set(mean, table.ids, k, policy, threshold)
    return Evidence(tuple(held_out), table.ids[chosen], float(mean[chosen].sum()))
