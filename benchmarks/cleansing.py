"""Does influence-based data cleansing improve the GAN more than the baselines? Measured per seed.

For each seed s (data seed s; training seeds s, s+1, ..., s+R-1):

  base     make the raw version and train R fresh runs on it, one per training seed, with the
           preset's budget (`pipeline.fresh_runs`, as the loop's iteration 0 does); run s is the
           one every method scores;
  methods  per method one iteration of the cleanse loop (`pipeline.run_iteration`): score run s
           with the method, cleanse under the selection policy (at most --frac removed; policy
           "positive" removes only instances predicted to help, so an influence method may remove
           fewer, or none), and retrain the cleansed version two ways:

    replay  run s's minibatch order, latents and initialisation with the removed instances
            dropped: the counterfactual the influence estimate predicts;
    fresh   R new runs on the cleansed version with the same R training seeds and the same number
            of optimizer steps as the base (less data is not also less training): what a
            production retraining gets, averaged over training seeds.

Every metric a run records (all and the Fréchet distance fd, the generator's mean and covariance
errors, the discriminator loss) is compared as the change of the seed MEAN (cleansed minus base,
over the same R training seeds); replay as the change against run s. Removal counts, predicted,
replayed and fresh changes of the scored metric are read with `report.summarize`, as `ganinf
evaluate` and the loop read them (the summary gives seed statistics for that metric only, so the
seed means of the others come from the runs' results; the two must agree on the scored metric,
which is checked). A seed where a method has nothing to remove (NothingToRemoveError) counts as no
cleanse: 0 removed, every change 0, and the output says so.

The verdict, per influence method M (fd: influence on fd; all: influence on ALL) on its own metric
(lower fd, higher ALL is better), fresh retraining, over seeds: (1) the mean change improves on the
uncleansed base; (2) M beats random, Isolation Forest and instance selection (DeVries et al.: the
lowest density under a Gaussian of the metric's features): paired one-sided t-test over seeds of
the improvement, p < 0.05 (Wilcoxon signed-rank shown as a check); (3) collapse check: the other
metric (all for fd, fd for all) does not worsen on average by more than its seed spread (the mean
over seeds of the base's standard deviation over training seeds). --chunks and --ensemble apply
to the influence methods only (a baseline's scores do not depend on the run, so neither has a
meaning for it); a baseline scores every instance positive, so "positive" is "top" for it.

Usage: python benchmarks/cleansing.py --preset default --seeds 10 --retrain-seeds 3 --frac 0.05
       [--methods fd,all,isolation_forest,instance_selection,random]
       [--policy positive|threshold|top [--threshold T]] [--chunks C] [--ensemble K]
       [--last-epochs K] [--average-order] [--jobs J | --executor ray] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from seeds import benchmarks_on_pythonpath, key_values

from ganinf_mlops import keys, report
from ganinf_mlops.cleanse import Agreement, recorded_agreement
from ganinf_mlops.config import (
    POLICIES,
    PRESETS,
    Preset,
    feature_classifier,
    get_preset,
    kind_fields,
)
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.errors import NothingToRemoveError
from ganinf_mlops.executor import EXECUTORS, executor_for, resolve
from ganinf_mlops.influence.methods import METHODS, influence_methods
from ganinf_mlops.io import write_json
from ganinf_mlops.layout import JobLayout
from ganinf_mlops.metrics.specs import direction_phrase
from ganinf_mlops.pipeline import fresh_runs, run_iteration, with_classifier
from ganinf_mlops.train.rundir import RunDir

MODES = ("replay", "fresh")
# The change each mode's row of `report.summarize` records for the row's metric.
MODE_CHANGE = {"replay": keys.ACTUAL_CHANGE, "fresh": keys.FRESH_CHANGE}
SHORT = {
    keys.ALL: "all",
    keys.FD: "fd",
    keys.FID: "fid",
    keys.IS: "is",
    keys.GEN_MEAN_ERROR: "mean_err",
    keys.GEN_COV_ERROR: "cov_err",
    keys.DISC_LOSS: "disc_loss",
}
ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class Profile:
    """What the study measures for one problem kind (the preset's train.problem)."""

    keys: tuple[str, ...]  # run results compared; the first two are printed per seed
    verdict_methods: tuple[str, ...]  # the influence methods the study is about
    collapse: dict[str, tuple[str, ...]]  # the other metric each must not worsen
    baselines: tuple[str, ...]  # the verdict's comparisons
    baseline_metric: str  # what a baseline's removal is judged on
    default_methods: tuple[str, ...]


PROFILES = {
    "gan": Profile(
        keys=(keys.ALL, keys.FD, keys.GEN_MEAN_ERROR, keys.GEN_COV_ERROR, keys.DISC_LOSS),
        verdict_methods=(keys.FD, keys.ALL),
        collapse={keys.FD: (keys.ALL,), keys.ALL: (keys.FD,)},
        baselines=("random", "isolation_forest", "instance_selection"),
        baseline_metric=keys.ALL,
        default_methods=(keys.FD, keys.ALL, "isolation_forest", "instance_selection", "random"),
    ),
    # Images: FID-influence against random, Isolation Forest and instance selection on
    # classifier features, and influence on the discriminator loss (the paper's baselines).
    "image_gan": Profile(
        keys=(keys.FID, keys.IS, keys.DISC_LOSS),
        verdict_methods=(keys.FID, keys.IS),
        collapse={keys.FID: (keys.IS,), keys.IS: (keys.FID,)},
        baselines=("random", "isolation_forest", "instance_selection", keys.DISC_LOSS),
        baseline_metric=keys.FID,
        default_methods=(
            keys.FID,
            keys.DISC_LOSS,
            "isolation_forest",
            "instance_selection",
            "random",
        ),
    ),
}
PROFILE = PROFILES["gan"]
KEYS = PROFILE.keys


def configure(preset_name: str) -> None:
    """Measure what the preset's problem kind records (in each worker process too)."""
    global PROFILE, KEYS
    PROFILE = PROFILES[get_preset(preset_name).train.problem]
    KEYS = PROFILE.keys


@dataclasses.dataclass(frozen=True)
class SeedJob:
    preset: str
    seed: int
    frac: float
    methods: tuple[str, ...]
    retrain_seeds: int
    policy: str
    threshold: float | None
    chunks: int
    ensemble: int
    min_agreement: float | None
    last_epochs: int | None
    average_order: bool
    work: str
    threads: int
    data: tuple[tuple[str, Any], ...] = ()  # --data-param overrides of the preset's data params


def own_metric(method: str) -> str:
    """The metric a method's removal is judged on: its influence target, or the profile's
    (ALL, FID) for a baseline; a baseline-role influence method (disc_loss for images) as well."""
    target = METHODS.get(method).target
    if target is None or method in PROFILE.baselines:
        return PROFILE.baseline_metric
    return target


def collapse_metrics(method: str) -> tuple[str, ...]:
    own = own_metric(method)
    return PROFILE.collapse.get(method, tuple(m for m in KEYS[:2] if m != own))


def sign(metric: str) -> float:
    """+1 where higher is better, -1 where lower is: sign * change is the improvement."""
    return 1.0 if keys.higher_is_better(metric) else -1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Cleansing benchmark: change of every metric after removing the instances "
        "a method flags, influence vs baselines, replayed and freshly retrained (mean over "
        "training seeds with the same step budget), paired tests over seeds.",
    )
    p.add_argument("--preset", default="default", choices=PRESETS.names())
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (data and training)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first..first+seeds-1")
    p.add_argument(
        "--retrain-seeds",
        type=int,
        default=3,
        help="fresh trainings per version (base and cleansed), training seeds s..s+R-1; the "
        "collapse check needs R >= 2 (default: %(default)s)",
    )
    p.add_argument("--frac", type=float, default=0.05, help="most removed, as a fraction of N")
    p.add_argument(
        "--policy",
        default=None,
        choices=POLICIES,
        help="cleanse selection policy (default: the preset's job.policy)",
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="harmfulness cut-off of --policy threshold"
    )
    p.add_argument(
        "--chunks",
        type=int,
        default=1,
        help="influence methods remove the budget in C re-scored chunks (default: %(default)s)",
    )
    p.add_argument(
        "--ensemble",
        type=int,
        default=1,
        help="influence methods average over K runs differing in the training seed "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--last-epochs",
        type=int,
        default=None,
        help="influence methods trace back only the last K epochs (default: the whole run)",
    )
    p.add_argument(
        "--average-order",
        action="store_true",
        help="influence methods average each instance's influence over minibatch orders "
        "(job.average_order)",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        help="with --ensemble K: influence methods cleanse only when this fraction of the "
        "members, each held out of the selection, predicts that it helps (default: no check; "
        "the agreement is recorded either way)",
    )
    p.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated, from {', '.join(METHODS.names())} (default: fd,all,"
        "isolation_forest,instance_selection,random for vector data; fid,disc_loss,"
        "isolation_forest,instance_selection,random for images)",
    )
    p.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    p.add_argument(
        "--executor",
        default="auto",
        choices=EXECUTORS,
        help="ray: each seed a Ray task (RAY_ADDRESS, else a local Ray instance; the same "
        "numbers); serial: here, --jobs at a time; auto: ray when RAY_ADDRESS is set "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads per process, 0 = torch's default (default: 1: as fast for "
        "these small models, and it does not collapse when other processes share the cores)",
    )
    p.add_argument(
        "--data-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a data parameter of the preset (VALUE as JSON), e.g. noise_frac=0",
    )
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    args = p.parse_args(argv)
    configure(args.preset)
    args.data_param = key_values(p, args.data_param, "--data-param")
    if args.methods is None:
        args.methods = ",".join(PROFILE.default_methods)
    args.methods = tuple(dict.fromkeys(m.strip() for m in args.methods.split(",") if m.strip()))
    if bad := [m for m in args.methods if m not in METHODS]:
        p.error(f"unknown method(s) {bad}; choose from {', '.join(METHODS.names())}")
    if not args.methods:
        p.error("--methods is empty")
    if args.seeds < 1 or args.jobs < 1 or args.first_seed < 0 or args.threads < 0:
        p.error("--seeds and --jobs must be >= 1, --first-seed and --threads >= 0")
    args.executor = resolve(args.executor)
    if args.executor == "ray" and args.jobs > 1:
        p.error("--jobs runs seeds in local processes; with --executor ray, Ray schedules them")
    if args.retrain_seeds < 1 or args.chunks < 1 or args.ensemble < 1:
        p.error("--retrain-seeds, --chunks and --ensemble must be >= 1")
    if not 0 < args.frac < 1:
        p.error("--frac must be in (0, 1)")
    if args.last_epochs is not None and args.last_epochs < 1:
        p.error("--last-epochs must be >= 1")
    if args.min_agreement is not None and (args.ensemble < 2 or not 0 < args.min_agreement <= 1):
        p.error("--min-agreement is a fraction in (0, 1] and needs --ensemble >= 2")
    if args.policy is None:
        args.policy = get_preset(args.preset).job.policy
    if (args.policy == "threshold") != (args.threshold is not None):
        p.error("--threshold goes with --policy threshold (and only with it)")
    return args


# --- one seed ----------------------------------------------------------------------------------


def run_numbers(run: Path) -> dict[str, float]:
    """What the benchmark keeps of a run: its results and the training time it records."""
    rd = RunDir(run)
    results = rd.results()
    numbers = {k: float(results[k]) for k in (*KEYS, keys.N_STEPS)}
    numbers[keys.TRAIN_SECONDS] = float(rd.metrics()[keys.TRAIN_SECONDS])
    return numbers


def seed_group(runs: list[Path]) -> dict[str, Any]:
    """The fresh runs of one version (one per training seed): each, their mean and std."""
    numbers = [run_numbers(r) for r in runs]
    return {
        "runs": numbers,
        "mean": {k: float(np.mean([n[k] for n in numbers])) for k in KEYS},
        # NaN with one training seed: no spread to compare with
        "std": {
            k: float(np.std([n[k] for n in numbers], ddof=1)) if len(numbers) > 1 else math.nan
            for k in KEYS
        },
        keys.N_STEPS: int(numbers[0][keys.N_STEPS]),
    }


def delta(new: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {k: new[k] - base[k] for k in KEYS}


def method_preset(preset: Preset, method: str, job: SeedJob) -> Preset:
    """The preset of one cleanse-loop iteration that scores with `method` at `job.seed`.

    The iteration is number 1 (it cleanses the raw version) and scores with `job.seed + 1`, so
    job.seed = seed - 1 makes the scores `score(run, raw, method, seed=seed)`: the baselines draw
    with the benchmark's seed (seed 0 with seed 1: a job's seed is >= 0). No leave-one-out
    validation; the whole run is traced back unless --last-epochs says otherwise. Chunks, the
    ensemble, last epochs and order averaging apply to influence methods only.
    """
    influence = METHODS.get(method).predicts_change
    options = dataclasses.replace(
        preset.job,
        method=method,
        remove_frac=job.frac,
        loo=0,
        last_epochs=job.last_epochs if influence else None,
        average_order=job.average_order and influence,
        seed=max(job.seed - 1, 0),
        policy=job.policy,
        threshold=job.threshold,
        retrain_seeds=job.retrain_seeds,
        retrain_budget="steps",
        chunks=job.chunks if influence else 1,
        ensemble=job.ensemble if influence else 1,
        min_agreement=job.min_agreement if influence else None,
    )
    return dataclasses.replace(preset, job=options)


def agreement_record(agree: Agreement | None) -> list[int] | None:
    """[agreeing, members] of an ensemble's cleanse (cleanse.agreement), None for one run."""
    return None if agree is None else [agree.agreeing, agree.members]


def nothing_removed(
    method: str, base: dict[str, Any], message: str, agree: Agreement | None = None
) -> dict[str, Any]:
    """The record of a method that removed nothing: the base itself, every change 0."""
    predicts = METHODS.get(method).predicts_change
    zero = dict.fromkeys(KEYS, 0.0)
    return {
        "nothing_to_remove": True,
        "message": message,
        "agreement": agreement_record(agree),
        "score_seconds": None,
        "iteration_seconds": None,
        keys.N_REMOVED: 0,
        "anomalies_removed": 0,
        "metric": own_metric(method),
        "predicted_change": 0.0 if predicts else None,
        "chunks": None,
        "fresh": {
            **base,
            "delta": zero,
            "change": 0.0,
            "change_se": None,
        },
        "replay": {
            "metrics": base["runs"][0],
            "delta": dict(zero),
            "change": 0.0 if predicts else None,
        },
    }


def run_seed(job: SeedJob) -> dict[str, Any]:
    """The whole pipeline for one seed in its own work dir; returns plain numbers only."""
    if job.threads > 0:
        torch.set_num_threads(job.threads)
    configure(job.preset)
    started = time.perf_counter()
    preset = get_preset(job.preset)
    preset = dataclasses.replace(
        preset,
        data_params={**preset.data_params, **dict(job.data), "seed": job.seed},
        train=dataclasses.replace(preset.train, seed=job.seed),
        job=dataclasses.replace(preset.job, retrain_seeds=job.retrain_seeds),
    )
    work = Path(job.work)
    raw = create_raw_version(JobLayout(work).version(0), preset.dataset, **preset.data_params)
    preset = with_classifier(preset, raw, work, force=False, progress=False)  # images: FID, IS
    base_runs = fresh_runs(raw, preset, JobLayout(work).run(0), progress=False)
    run = base_runs[0]  # the run every method scores and replays
    base = seed_group(base_runs)
    methods: dict[str, Any] = {}
    for method in job.methods:
        t0 = time.perf_counter()
        try:
            out = run_iteration(
                1,
                work / "methods" / method,
                method_preset(preset, method, job),
                raw,
                run,
                progress=False,
            )
        except NothingToRemoveError as exc:
            methods[method] = nothing_removed(method, base, str(exc), exc.agreement)
            shutil.rmtree(work / "methods" / method, ignore_errors=True)
            continue
        iteration_seconds = time.perf_counter() - t0
        row = report.summarize([*base_runs, *out.fresh], [out.replay])["iterations"]["1"]
        predicts = keys.PREDICTED_CHANGE in row  # absent for baselines
        fresh = seed_group(out.fresh)
        fresh_delta = delta(fresh["mean"], base["mean"])
        replay = run_numbers(out.replay)
        rec: dict[str, Any] = {
            "nothing_to_remove": False,
            "message": None,
            "agreement": agreement_record(recorded_agreement(out.version.manifest)),
            # the reverse pass's time as the iteration records it (0 for baselines)
            "score_seconds": out.scoring_seconds,
            # score, cleanse (chunks: their replays), replay and R fresh trainings
            "iteration_seconds": iteration_seconds,
            keys.N_REMOVED: row[keys.N_REMOVED],
            "anomalies_removed": row.get(keys.N_ANOMALIES_REMOVED, 0),
            "metric": row["metric"],  # what the summary's changes measure (baselines: all)
            "predicted_change": row[keys.PREDICTED_CHANGE] if predicts else None,
            "chunks": out.chunks,
            "fresh": {
                **fresh,
                "delta": fresh_delta,
                # the summary's change of the row's metric: the same difference of seed means
                "change": row.get(keys.FRESH_CHANGE),
                "change_se": row.get(keys.FRESH_CHANGE_SE),
            },
            "replay": {
                "metrics": replay,
                "delta": delta(replay, base["runs"][0]),
                # a replay of a baseline's cleanse records no change (nothing was predicted)
                "change": row.get(keys.ACTUAL_CHANGE),
            },
        }
        change = rec["fresh"]["change"]
        if change is None or not math.isclose(
            change, fresh_delta[row["metric"]], rel_tol=1e-9, abs_tol=1e-12
        ):
            raise RuntimeError(
                f"seed {job.seed}, {method}: report.summarize's fresh change {change} is not the "
                f"change of the seed means {fresh_delta[row['metric']]}"
            )
        methods[method] = rec
        shutil.rmtree(work / "methods" / method)  # keep the temp dir small: numbers are all we need
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seed": job.seed,
        "training_seeds": [job.seed + r for r in range(job.retrain_seeds)],
        "n": raw.n,
        "n_anomalies": len(raw.manifest.is_anomaly_ids or []),
        "base": base,
        "methods": methods,
        "seconds": time.perf_counter() - started,
    }


def run_all(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [
        SeedJob(
            args.preset,
            s,
            args.frac,
            args.methods,
            args.retrain_seeds,
            args.policy,
            args.threshold,
            args.chunks,
            args.ensemble,
            args.min_agreement,
            args.last_epochs,
            args.average_order,
            str(work / f"seed{s}"),
            args.threads,
            tuple(args.data_param.items()),
        )
        for s in seeds
    ]
    results: list[dict[str, Any]] = []
    if args.executor == "ray":  # each seed a task; its trainings run one after another in it
        benchmarks_on_pythonpath()  # the workers import these modules
        for res in executor_for("ray").map(run_seed, jobs):
            results.append(res)
            report_seed(res, args)
    elif args.jobs == 1:
        for job in jobs:
            results.append(run_seed(job))
            report_seed(results[-1], args)
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            for res in pool.map(run_seed, jobs):
                results.append(res)
                report_seed(res, args)
    return results


# --- statistics ----------------------------------------------------------------------------------


def values(results: list[dict[str, Any]], method: str, mode: str, key: str) -> np.ndarray:
    """Per seed: the change of `key` (fresh: of the seed mean) against the uncleansed base."""
    return np.array([r["methods"][method][mode]["delta"][key] for r in results])


def improvement(results: list[dict[str, Any]], method: str, mode: str, key: str) -> np.ndarray:
    """The change of `key` in its improvement direction (> 0: better)."""
    return sign(key) * values(results, method, mode, key)


def changes(results: list[dict[str, Any]], method: str, mode: str) -> np.ndarray:
    """The change of the method's scored metric per seed, as the summary records it."""
    return np.array([r["methods"][method][mode]["change"] for r in results], dtype=float)


def std(a: np.ndarray) -> float:
    return float(a.std(ddof=1)) if a.size > 1 else math.nan


def mean_std(a: np.ndarray) -> str:
    return f"{a.mean():+.4f} ± {std(a):.4f}"


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """One-sided: is `a` greater than `b`, pairing by seed?"""
    d = a - b
    out = {"mean_diff": float(d.mean()), "wins": int((d > 0).sum()), "n": int(d.size)}
    if d.size < 2 or np.all(d == d[0]):
        out["t_p"] = math.nan
    else:
        out["t_p"] = float(stats.ttest_rel(a, b, alternative="greater").pvalue)
    if not np.any(d != 0):  # identical removals (or none): nothing to rank
        out["wilcoxon_p"] = math.nan
        return out
    try:
        with warnings.catch_warnings():  # scipy warns on ties and tiny samples; p stays defined
            warnings.simplefilter("ignore", RuntimeWarning)
            out["wilcoxon_p"] = float(stats.wilcoxon(a, b, alternative="greater").pvalue)
    except ValueError:  # too few
        out["wilcoxon_p"] = math.nan
    return out


def one_sample_p(a: np.ndarray) -> float:
    """One-sided t-test: is the mean of `a` greater than 0?"""
    if a.size < 2 or np.all(a == a[0]):
        return math.nan
    return float(stats.ttest_1samp(a, 0.0, alternative="greater").pvalue)


def column(a: np.ndarray) -> dict[str, Any]:
    return {"mean": float(a.mean()), "std": std(a), "values": a.tolist()}


def verdict(
    results: list[dict[str, Any]], method: str, methods: tuple[str, ...], base_spread: dict
) -> dict[str, Any]:
    """Does influence method `method` improve its own metric, beat the baselines on it (paired
    one-sided t-test over seeds, p < ALPHA) and leave the other metric within its seed spread?"""
    own = own_metric(method)
    ours = improvement(results, method, "fresh", own)
    out: dict[str, Any] = {
        "metric": own,
        "higher_is_better": keys.higher_is_better(own),
        "change": column(values(results, method, "fresh", own)),
        "improvement": column(ours),
        "improved_seeds": int((ours > 0).sum()),
        "n_seeds": len(results),
        "t_p_vs_zero": one_sample_p(ours),
        "nothing_to_remove_seeds": [
            r["seed"] for r in results if r["methods"][method]["nothing_to_remove"]
        ],
    }
    out["improves"] = bool(ours.mean() > 0)
    out["vs"] = {}
    for b in PROFILE.baselines:
        if b not in methods:
            out["vs"][b] = None
            continue
        theirs = improvement(results, b, "fresh", own)
        t = paired_tests(ours, theirs)
        t["baseline_improvement"] = float(theirs.mean())
        t["beats"] = bool(t["mean_diff"] > 0 and t["t_p"] < ALPHA)  # NaN compares False
        t["wilcoxon_agrees"] = bool(t["wilcoxon_p"] < ALPHA)
        out["vs"][b] = t
    out["collapse"] = {}
    for other in collapse_metrics(method):
        d = values(results, method, "fresh", other)
        worsening = -sign(other) * float(d.mean())
        spread = base_spread[other]
        out["collapse"][other] = {
            "change": column(d),
            "worsening": worsening,  # > 0: the other metric got worse on average
            "base_seed_spread": spread,
            "worse_seeds": int((sign(other) * d < 0).sum()),
            "ok": None if math.isnan(spread) else bool(worsening <= spread),
        }
    checks = [out["improves"]]
    checks += [t["beats"] if t is not None else None for t in out["vs"].values()]
    checks += [c["ok"] for c in out["collapse"].values()]
    out["complete"] = None not in checks
    out["wins"] = bool(out["complete"] and all(checks))
    return out


def summarize(results: list[dict[str, Any]], methods: tuple[str, ...]) -> dict[str, Any]:
    # The base's spread over training seeds per metric, averaged over seeds: the collapse check's
    # yardstick. NaN with one training seed.
    base_spread = {k: float(np.mean([r["base"]["std"][k] for r in results])) for k in KEYS}
    summary: dict[str, Any] = {
        "base": {
            "seed_mean": {
                k: column(np.array([r["base"]["mean"][k] for r in results])) for k in KEYS
            },
            "seed_spread": base_spread,
        },
        "per_method": {},
        "tests": {},
        "verdict": {},
    }
    for method in methods:
        recs = [r["methods"][method] for r in results]
        summary["per_method"][method] = {
            mode: {key: column(values(results, method, mode, key)) for key in KEYS}
            for mode in MODES
        }
        summary["per_method"][method]["removal"] = {
            keys.N_REMOVED: [rec[keys.N_REMOVED] for rec in recs],
            "anomalies_removed": [rec["anomalies_removed"] for rec in recs],
            "nothing_to_remove_seeds": [
                r["seed"] for r, rec in zip(results, recs, strict=True) if rec["nothing_to_remove"]
            ],
        }
    studied = (m for m in methods if METHODS.get(m).predicts_change and m not in PROFILE.baselines)
    for method in studied:
        own = own_metric(method)
        ours = improvement(results, method, "fresh", own)
        summary["tests"][method] = {
            "metric": own,
            "vs": {
                b: paired_tests(ours, improvement(results, b, "fresh", own))
                for b in methods
                if b != method
            },
        }
        summary["verdict"][method] = verdict(results, method, methods, base_spread)
    return summary


# --- report --------------------------------------------------------------------------------------


def fmt_p(p: float) -> str:
    return "   n/a" if math.isnan(p) else f"{p:6.3f}"


def report_seed(r: dict[str, Any], args: argparse.Namespace) -> None:
    b, (k1, k2) = r["base"]["mean"], KEYS[:2]
    parts = [
        f"seed {r['seed']}: base (mean of {len(r['base']['runs'])}) {k1} {b[k1]:+.4f} "
        f"{k2} {b[k2]:.4f}; fresh Δ{k1}/Δ{k2}"
    ]
    for method in args.methods:
        rec = r["methods"][method]
        d = rec["fresh"]["delta"]
        note = " NOTHING REMOVED" if rec["nothing_to_remove"] else ""
        if rec.get("agreement"):
            note += " agree {}/{}".format(*rec["agreement"])
        parts.append(f"{method} ({rec[keys.N_REMOVED]}) {d[k1]:+.4f}/{d[k2]:+.4f}{note}")
    print(" | ".join(parts) + f"  ({r['seconds']:.0f} s)", flush=True)


def print_settings(preset: Preset, args: argparse.Namespace) -> None:
    cfg = preset.train
    print(f"cleansing benchmark: preset '{preset.name}' ({preset.description})")
    data = {**preset.data_params, **args.data_param}
    print(f"  dataset {preset.dataset} {json.dumps(data)} (seed replaced per run)")
    kind = ", ".join(f"{k} {v}" for k, v in kind_fields(cfg).items())
    print(
        f"  train ({cfg.problem}): {kind}; batch {cfg.batch_size}, "
        + (f"{cfg.steps} steps, " if cfg.steps is not None else f"epochs {cfg.epochs}, ")
        + f"{cfg.dtype}, {cfg.device} (seed replaced per run)"
    )
    if feature_classifier(preset.metric) is None:
        print(f"  metric: ALL n_gen={preset.metric.n_gen} bandwidth={preset.metric.bandwidth}; fd")
    else:
        print(
            f"  metric: FID and IS of n_gen={preset.metric.n_gen} generated images on a feature "
            "classifier trained per seed on the raw version's clean images"
        )
    seeds = f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    threshold = f" {args.threshold}" if args.threshold is not None else ""
    print(
        f"  seeds {seeds} (data seed s), {args.retrain_seeds} training seed(s) s..s+"
        f"{args.retrain_seeds - 1} per version, fresh retraining with the base's step budget"
    )
    print(
        f"  cleanse: at most {args.frac} of N, policy {args.policy}{threshold}; influence "
        f"methods: chunks {args.chunks}, ensemble {args.ensemble}, min agreement "
        f"{args.min_agreement}, last epochs {args.last_epochs or 'all'}, order "
        f"{'averaged' if args.average_order else 'as drawn'}"
    )
    print(f"  methods {', '.join(args.methods)}")
    threads = args.threads or torch.get_num_threads()
    print(
        f"  torch {torch.__version__}, {os.cpu_count()} cpus, executor {args.executor}, "
        f"jobs {args.jobs}, "
        f"{threads} torch thread(s) per job\n",
        flush=True,
    )


def print_summary(
    results: list[dict[str, Any]], summary: dict[str, Any], args: argparse.Namespace
) -> None:
    n = len(results)
    base = summary["base"]
    r0 = results[0]
    print(
        f"\nUncleansed base over {n} seeds (seed means over {args.retrain_seeds} training "
        f"seeds; spread = mean over seeds of the std over training seeds):"
    )
    for k in KEYS:
        c = base["seed_mean"][k]
        print(
            f"  {k:<15}{c['mean']:+.4f} ± {c['std']:.4f} over seeds, "
            f"spread over training seeds {base['seed_spread'][k]:.4f}  ({direction_phrase(k)})"
        )
    n_anom = np.mean([r["n_anomalies"] for r in results])
    print(f"N {r0['n']}, injected anomalies per seed {n_anom:g}")
    # Fresh retraining keeps the base's number of steps; the replay keeps the scored run's
    # schedule (its steps, the removed instances dropped from their minibatches).
    steps = {"base": r0["base"][keys.N_STEPS]}
    m0 = r0["methods"][args.methods[0]]
    steps["fresh"] = m0["fresh"][keys.N_STEPS]
    steps["replay"] = int(m0["replay"]["metrics"][keys.N_STEPS])
    listed = ", ".join(f"{k} {int(v)}" for k, v in steps.items())
    print(f"training steps (seed {r0['seed']}, method {args.methods[0]}): {listed}")

    head = f"{'method':<20}{'n_removed':>14}{'anomalies removed':>19}{'nothing removed':>17}"
    print(f"\nRemovals per seed (mean, min–max)\n{head}")
    print("-" * len(head))
    for method in args.methods:
        rem = summary["per_method"][method]["removal"]
        nr, an = np.array(rem[keys.N_REMOVED]), np.array(rem["anomalies_removed"])
        none = rem["nothing_to_remove_seeds"]
        print(
            f"{method:<20}{f'{nr.mean():.1f} ({nr.min()}–{nr.max()})':>14}"
            f"{f'{an.mean():.1f} ({an.min()}–{an.max()})':>19}"
            f"{f'{len(none)}/{n}':>17}" + (f"  seeds {none}" if none else "")
        )

    for mode, what in (
        (
            "fresh",
            f"fresh retraining: change of the mean over {args.retrain_seeds} training seeds "
            "vs the uncleansed base's",
        ),
        ("replay", "replay (the scored run's schedule): change vs that uncleansed run"),
    ):
        head = f"{'method':<20}" + "".join(f"{'Δ' + SHORT[k]:>19}" for k in KEYS)
        higher = ", ".join(k for k in KEYS if keys.higher_is_better(k))
        print(f"\n{what}, mean ± std over seeds ({higher}: higher is better; the rest: lower)")
        print(head)
        print("-" * len(head))
        for method in args.methods:
            print(
                f"{method:<20}"
                + "".join(f"{mean_std(values(results, method, mode, k)):>19}" for k in KEYS)
            )


def print_tests(summary: dict[str, Any]) -> None:
    for method, tests in summary["tests"].items():
        metric = tests["metric"]
        head = f"{'vs':<20}{'mean diff':>12}{'wins':>7}{'t-test p':>10}{'wilcoxon p':>12}"
        print(
            f"\nPaired one-sided tests over seeds, fresh: H1 improvement of {metric} "
            f"({direction_phrase(metric)}) by '{method}' > by the other method\n{head}"
        )
        print("-" * len(head))
        for other, t in tests["vs"].items():
            wins = f"{t['wins']}/{t['n']}"
            print(
                f"{other:<20}{t['mean_diff']:>+12.4f}{wins:>7}"
                f"{fmt_p(t['t_p']):>10}{fmt_p(t['wilcoxon_p']):>12}"
            )


def print_predicted(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Influence methods predict their own metric's change; the replay is the counterfactual."""
    predicting = influence_methods()
    for method in (m for m in args.methods if m in predicting):
        metric = own_metric(method)
        pred = np.array([r["methods"][method]["predicted_change"] for r in results], dtype=float)
        actual = {m: changes(results, method, m) for m in MODES}
        head = (
            f"{'seed':>6}{'removed':>9}{'predicted':>12}{'replay':>12}{'fresh (mean)':>14}"
            f"{'fresh se':>10}"
        )
        print(f"\nPredicted vs actual Δ{metric} for method '{method}' (sum over removed)\n{head}")
        print("-" * len(head))
        for i, r in enumerate(results):
            rec = r["methods"][method]
            se = rec["fresh"]["change_se"]
            se_s = "n/a" if se is None else f"{se:.5f}"
            note = "  nothing to remove" if rec["nothing_to_remove"] else ""
            print(
                f"{r['seed']:>6}{rec[keys.N_REMOVED]:>9}{pred[i]:>+12.5f}"
                f"{actual['replay'][i]:>+12.5f}{actual['fresh'][i]:>+14.5f}{se_s:>10}{note}"
            )
        if len(results) > 1:
            a = actual["replay"]
            signs = int((np.sign(a) == np.sign(pred)).sum())
            r_val = (
                float(np.corrcoef(pred, a)[0, 1])
                if pred.std() > 0 and a.std() > 0
                else float("nan")
            )
            ratio = a.mean() / pred.mean() if pred.mean() else float("nan")
            print(
                f"{'mean':>6}{'':>9}{pred.mean():>+12.5f}{a.mean():>+12.5f}"
                f"{actual['fresh'].mean():>+14.5f}   replay: sign agrees {signs}/{len(a)}, "
                f"Pearson r {r_val:.3f}, actual/predicted {ratio:.2f}"
            )
        chunked = [r["methods"][method]["chunks"] for r in results]
        if any(chunked):
            print("  chunks (mean over seeds that have them): n_removed, predicted, replay")
            most = max(len(c or []) for c in chunked)
            for c in range(most):
                recs = [ch[c] for ch in chunked if ch and len(ch) > c]
                col = {
                    k: np.array([x[k] for x in recs if x[k] is not None], dtype=float)
                    for k in (keys.N_REMOVED, keys.PREDICTED_CHANGE, keys.ACTUAL_CHANGE)
                }
                print(
                    f"  chunk {c + 1} ({len(recs)} seeds): {col[keys.N_REMOVED].mean():.1f}, "
                    f"{col[keys.PREDICTED_CHANGE].mean():+.5f}, "
                    f"{col[keys.ACTUAL_CHANGE].mean():+.5f}"
                )


def yes_no(flag: bool | None) -> str:
    return "n/a" if flag is None else ("YES" if flag else "NO")


def print_verdict(summary: dict[str, Any], args: argparse.Namespace) -> None:
    shown = [m for m in (*PROFILE.verdict_methods, *summary["verdict"]) if m in summary["verdict"]]
    if not shown:
        print("no influence method among --methods: no verdict")
        return
    print(
        f"Rule: fresh retraining, mean over {args.retrain_seeds} training seeds, {args.seeds} "
        f"seeds; improves = mean change of its own metric in the better direction; beats = "
        f"paired one-sided t-test p < {ALPHA} (Wilcoxon shown as a check); collapse ok = the "
        f"other metric worsens on average by no more than the base's seed spread."
    )
    for method in dict.fromkeys(shown):
        v = summary["verdict"][method]
        metric, imp, ch = v["metric"], v["improvement"], v["change"]
        print(f"\nVERDICT influence on {metric} (method '{method}'):")
        none = v["nothing_to_remove_seeds"]
        if none:
            print(f"  nothing to remove (counted as change 0) in seeds {none}")
        print(
            f"  improves {metric} ({direction_phrase(metric)}): {yes_no(v['improves'])} "
            f"(mean change {ch['mean']:+.5f} ± {ch['std']:.5f}, better in "
            f"{v['improved_seeds']}/{v['n_seeds']} seeds, t-test vs 0 p="
            f"{fmt_p(v['t_p_vs_zero']).strip()})"
        )
        for b, t in v["vs"].items():
            if t is None:
                print(f"  beats {b}: n/a ({b} not among --methods)")
                continue
            print(
                f"  beats {b} on {metric}: {yes_no(t['beats'])} (improvement "
                f"{imp['mean']:+.5f} vs {t['baseline_improvement']:+.5f}, wins "
                f"{t['wins']}/{t['n']}, t-test p={fmt_p(t['t_p']).strip()}, wilcoxon p="
                f"{fmt_p(t['wilcoxon_p']).strip()})"
            )
        for other, c in v["collapse"].items():
            spread = (
                "n/a (needs --retrain-seeds >= 2)"
                if math.isnan(c["base_seed_spread"])
                else f"{c['base_seed_spread']:.5f}"
            )
            print(
                f"  collapse check ({other}, {direction_phrase(other)}): "
                f"{'n/a' if c['ok'] is None else ('ok' if c['ok'] else 'NOT ok')} (mean change "
                f"{c['change']['mean']:+.5f} ± {c['change']['std']:.5f}, worsening "
                f"{c['worsening']:+.5f} vs base seed spread {spread}; worse in "
                f"{c['worse_seeds']}/{v['n_seeds']} seeds)"
            )
        if v["complete"]:
            print(f"  => {'WINS' if v['wins'] else 'DOES NOT WIN'}")
        else:
            print("  => incomplete (a baseline or the seed spread is missing): no overall verdict")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM as SystemExit, so the temp dir is still removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    preset = get_preset(args.preset)
    print_settings(preset, args)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="ganinf-bench-cleansing-"))
    try:
        results = run_all(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(results, args.methods)
    print_summary(results, summary, args)
    print_tests(summary)
    print_predicted(results, args)
    print()
    print_verdict(summary, args)
    total = time.perf_counter() - started
    print(f"\nbenchmark wall time: {total:.0f} s")
    if args.json is not None:
        out = {
            "preset": preset.name,
            "data_params": {**preset.data_params, **args.data_param},
            "train_config": dataclasses.asdict(preset.train),
            "settings": {
                "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
                "retrain_seeds": args.retrain_seeds,
                "retrain_budget": "steps",
                "frac": args.frac,
                "policy": args.policy,
                "threshold": args.threshold,
                "chunks": args.chunks,
                "ensemble": args.ensemble,
                "min_agreement": args.min_agreement,
                "last_epochs": args.last_epochs,
                "average_order": args.average_order,
                "methods": list(args.methods),
                "jobs": args.jobs,
                "executor": args.executor,
                "alpha": ALPHA,
            },
            "results": results,
            "summary": summary,
            "benchmark_seconds": total,
        }
        write_json(args.json, out)  # strict JSON: an undefined p-value (NaN) as null
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
