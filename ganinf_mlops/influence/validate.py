"""Check influence estimates against real leave-one-out retraining of chosen instances.

The instances: the `k/4` most harmful, the `k/4` least harmful and `k/2` drawn at random from the
rest. Their true change V(without j) - V(all) comes from replaying the run with w_j = 0 (loo.py).
Reported: Kendall's tau and Pearson r between estimated and true changes over all of them and
over the random ones alone (the extremes make tau easy), and the Jaccard index of the top-k sets
(k = number of top instances) by estimated and by true harmfulness. With `group_subsets` > 0 the
report also holds the group fidelity of the estimate (groups.py) under "groups".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, pearsonr

from ganinf_mlops import keys
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.executor import Executor
from ganinf_mlops.influence.groups import group_fidelity, group_metrics
from ganinf_mlops.influence.loo import mean_removal_changes
from ganinf_mlops.influence.methods import problem_and_target
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.train.rundir import RunDir


def select(harmfulness: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Positions of the top, bottom and random instances, and their group labels."""
    n = len(harmfulness)
    if k < 4 or k > n:
        raise ConfigError(f"--loo must be between 4 and the number of instances ({n}), got {k}")
    n_ext = k // 4
    order = np.argsort(-harmfulness, kind="stable")
    top, bottom = order[:n_ext], order[n - n_ext :]
    rest = order[n_ext : n - n_ext]
    rnd = np.random.default_rng(seed).choice(rest, size=k - 2 * n_ext, replace=False)
    groups = ["top"] * n_ext + ["bottom"] * n_ext + ["random"] * len(rnd)
    return np.concatenate([top, bottom, rnd]), groups


def _agreement(est: np.ndarray, true: np.ndarray) -> dict[str, float]:
    if len(est) < 3:
        return {keys.KENDALL_TAU: float("nan"), keys.PEARSON_R: float("nan")}
    return {
        keys.KENDALL_TAU: float(kendalltau(est, true)[0]),
        keys.PEARSON_R: float(pearsonr(est, true)[0]),
    }


def validate(
    run: str | Path,
    version: DatasetVersion,
    table: ScoreTable,
    *,
    k: int = 40,
    seed: int = 0,
    group_subsets: int = 0,
    progress: bool = True,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Check `table` (scores of `run`, or of an ensemble) against replays without instances
    (module docstring); each run's replays run on `executor` (default: here)."""
    if table.metric is None or np.isnan(table.predicted_change).any():
        raise ConfigError(
            f"scores of method {table.method!r} predict no metric change; "
            "validate needs the scores of an influence method"
        )
    if table.dataset_digest != version.digest:
        raise DataError(f"scores were computed for another dataset version than {version.path}")
    harmfulness, change = table.aligned_to(version.ids)
    # An ensemble's estimate is of the change averaged over its runs' seeds: so is the truth.
    runs = table.extra.get("ensemble") or [run]
    target = problem_and_target(RunDir(runs[0]), version, table.metric)[1]
    positions, groups = select(harmfulness, k, seed)
    start = time.perf_counter()
    true = mean_removal_changes(
        runs, version, table.metric, [[p] for p in positions.tolist()], desc="leave-one-out",
        progress=progress, executor=executor,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    est = change[positions]
    rnd = np.array([g == "random" for g in groups])
    n_top = groups.count("top")
    sign = 1.0 if target.higher_is_better else -1.0
    top_est = set(np.argsort(-sign * est, kind="stable")[:n_top])
    top_true = set(np.argsort(-sign * true, kind="stable")[:n_top])
    overall, random_only = _agreement(est, true), _agreement(est[rnd], true[rnd])
    report: dict[str, Any] = {
        "run": str(run),
        "dataset_digest": version.digest,
        "metric": table.metric,
        "method": table.method,
        "n_instances": len(positions),
        "n_runs": len(runs),
        keys.KENDALL_TAU: overall[keys.KENDALL_TAU],
        keys.PEARSON_R: overall[keys.PEARSON_R],
        keys.KENDALL_TAU_RANDOM: random_only[keys.KENDALL_TAU],
        keys.PEARSON_R_RANDOM: random_only[keys.PEARSON_R],
        keys.JACCARD_TOP_K: len(top_est & top_true) / len(top_est | top_true),
        "top_k": n_top,
        "loo_seconds": seconds,
        "instances": [
            {
                "id": int(version.ids[p]),
                "group": g,
                "estimated_change": float(e),
                "true_change": float(t),
            }
            for p, g, e, t in zip(positions, groups, est, true, strict=True)
        ],
    }
    if group_subsets > 0:

        def actual(subsets: list[np.ndarray]) -> np.ndarray:
            return mean_removal_changes(
                runs, version, table.metric, subsets, desc="group replays", progress=progress,
                executor=executor,
            )  # fmt: skip

        report["groups"] = group_fidelity(
            version.n, actual, harmfulness, change, n_subsets=group_subsets, seed=seed
        )
        report.update(group_metrics(report["groups"]))
        report["group_seconds"] = report["groups"]["group_seconds"]
    return report
