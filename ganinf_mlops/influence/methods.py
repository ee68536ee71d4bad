"""Scoring methods by name: trajectory influence on a metric, and the baselines.

all               influence on ALL (average log-likelihood), Terashita et al.
disc_loss         influence on the discriminator loss (their baseline)
isolation_forest  anomaly score of the training points (no trajectory needed)
random            uniform random scores
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.baselines import isolation_forest_harmfulness, random_harmfulness
from ganinf_mlops.influence.reverse import first_traced_step, reverse_pass
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.influence.targets import TARGET_NAMES, Target, create_targets
from ganinf_mlops.train.problem import Problem
from ganinf_mlops.train.trajectory import Trajectory

log = logging.getLogger(__name__)

BASELINES = ("isolation_forest", "random")
METHODS = (*TARGET_NAMES, *BASELINES)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")


def problem_and_target(
    traj: Trajectory, version: DatasetVersion, metric: str
) -> tuple[Problem, Target]:
    """The replayable problem of a run and one of its targets, checked against the version."""
    if metric not in TARGET_NAMES:
        raise ConfigError(f"unknown metric {metric!r}; choose from: {', '.join(TARGET_NAMES)}")
    traj.check_dataset(version.digest, f" than {version.path}")
    problem = Problem.create(traj.train_config, version.x, traj.schedule)
    targets = create_targets(
        problem.gen,
        problem.disc,
        problem.tensor(version.x_eval),
        traj.metric_config,
        traj.train_config.model.latent_dim,
    )
    return problem, targets[metric]


def score(
    run: str | Path,
    version: DatasetVersion,
    method: str,
    *,
    last_epochs: int | None = None,
    checkpointed: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> ScoreTable:
    """Score every instance of `version` (the data of `run`) with `method`."""
    check_method(method)
    traj = Trajectory(run)
    traj.check_dataset(version.digest, f" than {version.path}")
    run_ref = str(run)
    if method in BASELINES:
        harm = (
            isolation_forest_harmfulness(version.x, seed)
            if method == "isolation_forest"
            else random_harmfulness(len(version.ids), seed)
        )
        return ScoreTable(
            version.ids,
            harm,
            np.full(len(harm), np.nan),
            method,
            None,
            version.digest,
            run_ref,
            {"seed": seed},
        )
    problem, target = problem_and_target(traj, version, method)
    start = time.perf_counter()
    result = reverse_pass(
        problem,
        traj,
        target,
        first_step=first_traced_step(traj, last_epochs),
        checkpointed=checkpointed,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    change = -result.grad_w  # first-order V(without j) - V(all)
    log.info("influence on %s of %d instances in %.1fs", method, len(change), seconds)
    return ScoreTable(
        version.ids,
        target.harmfulness(change).cpu().numpy(),
        change.cpu().numpy(),
        method,
        method,
        version.digest,
        run_ref,
        {
            "value": result.value,
            "first_step": result.first_step,
            "n_steps": traj.n_steps,
            "last_epochs": last_epochs,
            "checkpointed": checkpointed,
            "seconds": seconds,
            "higher_is_better": target.higher_is_better,
        },
    )
