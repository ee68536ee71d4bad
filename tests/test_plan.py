"""The plan line (`ganinf_mlops.plan`): counts and time estimates from options and records."""

from __future__ import annotations

import pytest

from ganinf_mlops.config import JobOptions
from ganinf_mlops.plan import duration, job_plan, scoring_plan, validation_plan


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (21.0, "21 s"), (253.0, "4 min 13 s"), (3900.0, "1 h 05 min")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_an_ensemble_plans_its_missing_siblings_timed_by_the_run():
    plan = scoring_plan(
        "runs/r0", "fd", predicts_change=True, ensemble=8, missing=7, seconds_each=3.0
    )
    assert str(plan) == (
        "plan: trains 7 seed siblings of runs/r0 (about 21 s, from its 3.0 s training) and 8 "
        "reverse passes; --ensemble 1 skips the siblings"
    )
    assert (plan.trainings, plan.seconds, plan.passes) == (7, 21.0, 8)
    # no recorded training time: counts only
    untimed = scoring_plan(
        "runs/r0", "fd", predicts_change=True, ensemble=3, missing=1, seconds_each=None
    )
    assert "(about" not in str(untimed) and untimed.seconds is None
    assert str(untimed).startswith("plan: trains 1 seed sibling of runs/r0 and 3 reverse passes")


def test_a_kept_ensemble_a_single_run_and_a_baseline_train_nothing():
    kept = scoring_plan("r", "all", predicts_change=True, ensemble=4, missing=0, seconds_each=2.0)
    alone = scoring_plan("r", "all", predicts_change=True, ensemble=1, missing=0, seconds_each=2.0)
    base = scoring_plan(
        "r", "random", predicts_change=False, ensemble=1, missing=0, seconds_each=2.0
    )
    for plan, passes in ((kept, 4), (alone, 1), (base, 0)):
        assert str(plan).endswith("trains nothing") and plan.trainings == 0
        assert plan.passes == passes
    assert str(alone) == "plan: 1 reverse pass over r; trains nothing"


def test_validation_counts_its_replays_per_ensemble_run():
    plan = validation_plan(
        "r", scoring=False, loo=12, group_replays=16, n_runs=3, n_steps=50, seconds_each=0.5
    )
    assert (plan.passes, plan.replays, plan.trainings) == (0, 84, 0)
    assert "12 leave-one-out and 16 group-removal replays of r of each of its 3" in str(plan)
    computed = validation_plan(
        "r", scoring=True, loo=4, group_replays=0, n_runs=1, n_steps=50, seconds_each=None
    )
    assert str(computed).startswith("plan: 1 reverse pass, then 4 leave-one-out replays of r")
    assert computed.replays == 4


def test_the_job_plan_counts_every_training():
    # The default preset's job: 3 runs of the raw data; per iteration 5 seed siblings (the
    # retraining seeds are members 0-2 already), the replay and 3 fresh retrainings.
    job = JobOptions(method="fd", loo=0, group_subsets=0, iterations=1, retrain_seeds=3,
                     ensemble=8)  # fmt: skip
    plan = job_plan(job, predicts_change=True, group_replays=0)
    assert (plan.trainings, plan.passes, plan.replays, plan.seconds) == (12, 8, 0, None)
    assert "(3 on the raw data, then per iteration 5 seed siblings, 1 replay, 3 fresh" in str(plan)
    rest = job_plan(job, predicts_change=True, group_replays=0, seconds_each=2.0, first="w/r0")
    assert (rest.trainings, rest.seconds) == (9, 18.0)
    assert "at most 9 runs (about 18 s, from w/r0's 2.0 s training)" in str(rest)
    # chunks replay every member per chunk and re-score; validation replays per member
    chunked = JobOptions(iterations=2, ensemble=2, chunks=2, loo=4, group_subsets=0)
    plan = job_plan(chunked, predicts_change=True, group_replays=0)
    assert (plan.trainings, plan.passes, plan.replays) == (1 + 2 * (1 + 4 + 1 + 1), 8, 16)
    # a baseline: no siblings, passes or validation
    base = job_plan(JobOptions(method="random", iterations=2), predicts_change=False,
                    group_replays=154)  # fmt: skip
    assert (base.trainings, base.passes, base.replays) == (1 + 2 * 2, 0, 0)
