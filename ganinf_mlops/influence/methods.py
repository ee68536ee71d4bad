"""Scoring methods by name (`METHODS`): trajectory influence on a target, and the baselines.

all               influence on ALL (average log-likelihood), Terashita et al.
fd                influence on the Fréchet distance of generated vs held-out data (FID's form)
fid               influence on FID: the Fréchet distance on feature-classifier features (images)
is                influence on the Inception Score on the feature classifier's softmax (images)
disc_loss         influence on the discriminator loss (their baseline)
val_loss          a classifier's SGD-influence on its validation loss (Hara et al. 2019)
loss              each instance's training loss under the final model (classifiers; the usual
                  label-noise heuristic: a large loss is suspect)
isolation_forest  anomaly score of the training instances in the metrics' feature space
                  (coordinates of vectors, classifier features of images; no trajectory needed)
random            uniform random scores
injected          1 for the instances the dataset source injected (manifest), else 0: what a
                  perfect detector of the injected corruption removes, the reference an
                  experiment compares the other methods with (policy `positive` removes only them)

An influence method names a target of the run's problem (`Problem.targets()`): there is one per
name in a problem kind's `target_names`, described by its metric's registration
(`metrics.specs`), so a new target needs nothing here. A baseline is a function of the instances'
features (`Problem.features`) and a seed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.executor import Executor
from ganinf_mlops.influence.baselines import (
    instance_selection_harmfulness,
    isolation_forest_harmfulness,
    random_harmfulness,
)
from ganinf_mlops.influence.last_epoch import last_epoch_pass
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.reverse import first_traced_step, reverse_pass
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.metrics.specs import METRICS
from ganinf_mlops.plan import Plan, scoring_plan
from ganinf_mlops.problems import PROBLEMS, Problem, Target
from ganinf_mlops.registry import Registry, check_choice
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import missing_siblings, seed_siblings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """A scoring method: influence on a target of the run's problem, or a baseline."""

    description: str
    target: str | None = None  # influence on this target of the run's problem
    baseline: Callable[[np.ndarray, int], np.ndarray] | None = None  # (features, seed) -> harm
    final_losses: bool = False  # harm = the final model's loss on each instance
    injected: bool = False  # harm = 1 for the version's recorded injected instances

    @property
    def predicts_change(self) -> bool:
        return self.target is not None

    @property
    def uses_model(self) -> bool:
        """Whether its scores come from the trained model (and are only as good as its fit)."""
        return self.target is not None or self.final_losses


METHODS: Registry[Method] = Registry("method")
# One influence method per target of a problem kind, described by its registered metric.
for _target in sorted({t for _, kind in PROBLEMS.items() for t in kind.target_names}):
    METHODS.add(_target, Method(METRICS.get(_target).influence, target=_target))
METHODS.add(
    "loss", Method("training loss of each instance under the final model", final_losses=True)
)
METHODS.add(
    "isolation_forest",
    Method(
        "Isolation Forest anomaly score", baseline=lambda f, s: isolation_forest_harmfulness(f, s)
    ),
)
METHODS.add(
    "instance_selection",
    Method(
        "instance selection (DeVries et al.): low density under a Gaussian of the metric's "
        "features",
        baseline=lambda f, s: instance_selection_harmfulness(f, s),
    ),
)
METHODS.add(
    "random", Method("uniform random scores", baseline=lambda f, s: random_harmfulness(len(f), s))
)
METHODS.add(
    "injected",
    Method("the injected instances recorded in the manifest (a reference)", injected=True),
)


def influence_methods() -> list[str]:
    return [name for name, m in METHODS.items() if m.predicts_change]


def check_scorable(run: str | Path, version: DatasetVersion, method: str) -> None:
    """What `score` refuses, checked without building the problem: the run was trained on
    `version`, and an influence method is a target of the run's problem kind."""
    traj = RunDir(run)
    traj.check_dataset(version.digest, f" than {version.path}")
    target = METHODS.get(method).target
    if target is not None:
        problem = traj.train_config.problem
        check_choice(f"target of a {problem} run", target, PROBLEMS.get(problem).target_names)


def problem_and_target(run: RunDir, version: DatasetVersion, target: str) -> tuple[Problem, Target]:
    """The run's replayable problem on its version and one of its targets."""
    problem = run.problem(version)
    return problem, problem.target(target)


def score(run: str | Path, version: DatasetVersion, options: ScoringOptions) -> ScoreTable:
    """Score every instance of `version` (the data of `run`) with `options.method`. With
    `storage_efficient`, influence is Suzuki et al.'s estimate from the final state alone over the
    last `last_epochs` epochs (default 1; `last_epoch.last_epoch_pass`). With `average_order`,
    the exact influence averaged over minibatch orders (`reverse.reverse_pass`). `ensemble` is
    `score_run`'s: this scores one run."""
    o = options
    m = METHODS.get(o.method)
    traj = RunDir(run)
    traj.check_dataset(version.digest, f" than {version.path}")
    run_ref = str(run)
    if m.target is None:  # a baseline or the injected reference: scores, no predicted change
        harm, extra = _harm(m, o.method, traj, version, o.seed)
        if m.final_losses:  # the trained model's losses: as good as its fit
            extra = {**extra, **_fit_extra(traj, None)}
        nan = np.full(len(harm), np.nan)
        return ScoreTable(version.ids, harm, nan, o.method, None, version.digest, run_ref, extra)
    problem, target = problem_and_target(traj, version, m.target)
    start = time.perf_counter()
    if o.storage_efficient and o.average_order:
        raise ConfigError("order averaging needs the recorded trajectory: drop --storage-efficient")
    if o.storage_efficient:
        result = last_epoch_pass(
            problem, traj, target, epochs=o.last_epochs or 1, progress=o.progress
        )
    else:
        result = reverse_pass(
            problem,
            traj,
            target,
            first_step=first_traced_step(traj, o.last_epochs),
            checkpointed=o.checkpointed,
            average_order=o.average_order,
            progress=o.progress,
        )
    seconds = time.perf_counter() - start
    change = -result.grad_w  # first-order V(without j) - V(all)
    log.info("influence on %s of %d instances in %.1fs", m.target, len(change), seconds)
    return ScoreTable(
        version.ids,
        target.harmfulness(change).cpu().numpy(),
        change.cpu().numpy(),
        o.method,
        m.target,
        version.digest,
        run_ref,
        {
            "value": result.value,
            "first_step": result.first_step,
            "n_steps": traj.n_steps,
            "last_epochs": o.last_epochs,
            "checkpointed": o.checkpointed,
            "storage_efficient": o.storage_efficient,
            "average_order": o.average_order,
            "seconds": seconds,
            "higher_is_better": target.higher_is_better,
            **_fit_extra(traj, m.target),
        },
    )


def _fit_extra(traj: RunDir, metric: str | None) -> dict[str, Any]:
    """What scores record of the fit of the model they came from (metrics/fit.py; nothing for a
    run from before the check): a cleanse refuses an unfitted one unless asked."""
    check = traj.fit(metric)
    return {} if check is None else {keys.FIT: check.record()}


def _worst_fit(tables: list[ScoreTable]) -> dict[str, Any]:
    fits = [t.extra[keys.FIT] for t in tables if keys.FIT in t.extra]
    return {keys.FIT: max(fits, key=lambda f: f["ratio"])} if fits else {}


def _harm(
    m: Method, method: str, traj: RunDir, version: DatasetVersion, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Harmfulness of a method that predicts no change, and the table's extra settings."""
    if m.injected:  # read from the manifest: no problem to build
        mask = version.anomaly_mask()
        if mask is None:
            raise ConfigError(
                f"method {method!r} needs a version whose source recorded the instances it "
                f"injected (e.g. anomaly_frac, noise_frac, label_noise); {version.path} has none"
            )
        return mask.astype(np.float64), {}
    problem = traj.problem(version)
    if m.final_losses:
        harm = problem.instance_losses(traj.load_state(traj.n_steps, problem.device))
    else:
        assert m.baseline is not None
        harm = m.baseline(problem.features(version.x), seed)
    return harm, {"seed": seed}


def _ensemble(options: ScoringOptions) -> int:
    """The runs `score_run` scores: a baseline scores the run alone (no influence to average)."""
    return options.ensemble if METHODS.get(options.method).predicts_change else 1


def scoring_plan_of(
    run: str | Path, options: ScoringOptions, members: str | Path | None = None
) -> Plan:
    """The plan of `score_run(run, ..., options, members=members)`: the seed siblings it will
    train (each about as long as the run's recorded training) and the reverse passes."""
    k = _ensemble(options)
    missing = len(missing_siblings(run, k, members))
    return scoring_plan(
        str(run), options.method, predicts_change=METHODS.get(options.method).predicts_change,
        ensemble=k, missing=missing, seconds_each=RunDir(run).train_seconds if missing else None,
    )  # fmt: skip


def score_run(
    run: str | Path,
    version: DatasetVersion,
    options: ScoringOptions,
    *,
    members: str | Path | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    executor: Executor | None = None,
) -> ScoreTable:
    """`score` of one run, or with `options.ensemble` > 1 `score_ensemble` over the run and its
    seed siblings (trained where missing; in the directory `members` if given, else beside the
    run): what `influence --ensemble` and `job.ensemble` mean. A baseline scores the run alone:
    there is no influence to average. `on_plan` is handed the plan (`scoring_plan_of`) once
    the options are checked, before anything is trained; the siblings train on `executor`."""
    ensemble = _ensemble(options)
    if ensemble > 1 and options.storage_efficient:
        raise ConfigError(
            f"an ensemble of {ensemble} runs (--ensemble, job.ensemble) averages exact influence; "
            "--storage-efficient needs --ensemble 1"
        )
    if ensemble > 1 or members is not None:  # `members` exists afterwards even for one run
        check_scorable(run, version, options.method)  # before training K - 1 siblings for it
    if on_plan is not None:
        on_plan(scoring_plan_of(run, options, members))
    if ensemble > 1 or members is not None:
        runs = seed_siblings(
            run, version, ensemble, members=members, progress=options.progress, executor=executor
        )
    else:
        runs = [Path(run)]
    return score_runs(runs, version, options)


def score_runs(
    runs: list[str | Path], version: DatasetVersion, options: ScoringOptions
) -> ScoreTable:
    """`score` of one run, `score_ensemble` of several (`seed` and `storage_efficient` apply to
    one run only: an ensemble averages exact influence)."""
    if len(runs) > 1:
        return score_ensemble(runs, version, options)
    return score(runs[0], version, options)


def score_ensemble(
    runs: list[str | Path], version: DatasetVersion, options: ScoringOptions
) -> ScoreTable:
    """Influence averaged over runs on `version` that differ in their training seed.

    One trajectory's derivative answers "what if j had been left out of *this* run"; a user
    retrains with a fresh seed, so the quantity to act on is the expected change over seeds,
    which the mean over K recorded runs estimates (ensembling, as in TRAK). Each member is
    scored with exact influence (`storage_efficient` and `seed` do not apply).
    """
    if not METHODS.get(options.method).predicts_change:
        raise ConfigError(f"an ensemble averages influence; {options.method!r} is a baseline")
    if len(runs) < 2:
        raise ConfigError("an ensemble needs at least two runs")
    each = dataclasses.replace(options, storage_efficient=False, seed=0)
    tables = [score(r, version, each) for r in runs]
    members = np.stack([t.aligned_to(version.ids)[1] for t in tables])
    change = members.mean(axis=0)
    first = tables[0]
    sign = 1.0 if first.higher_is_better() else -1.0
    extra = {
        "ensemble": [str(r) for r in runs],
        "value": float(np.mean([t.extra["value"] for t in tables])),
        "seconds": float(sum(t.extra["seconds"] for t in tables)),
        "higher_is_better": first.higher_is_better(),
        "last_epochs": options.last_epochs,
        "checkpointed": options.checkpointed,
        "average_order": options.average_order,
        # the member that fitted least: an ensemble is as good as its worst-fitted model
        **_worst_fit(tables),
        # each run's own estimate, for the cleanse's check that the members agree
        keys.MEMBERS: {"ids": version.ids.tolist(), "change": members.tolist()},
    }
    return ScoreTable(
        version.ids, sign * change, change, options.method, first.metric, version.digest,
        str(runs[0]), extra,
    )  # fmt: skip
