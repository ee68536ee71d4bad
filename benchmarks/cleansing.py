"""Does influence-based data cleansing improve the GAN more than the baselines? Measured per seed.

For each seed s (data seed and training seed both s): make the raw version, train, then per method
run one iteration of the cleanse loop (`pipeline.run_iteration`): score with the method, remove the
same fraction of top-ranked instances, and retrain the cleansed version two ways:

  replay  the parent run's minibatch order, latents and initialisation with the removed
          instances dropped: the counterfactual the influence estimate predicts;
  fresh   a new run with the same config and seed on the cleansed data (a new schedule): what a
          production retraining would get.

Reported per method and mode: the change of ALL (higher is better) against the uncleansed run, the
changes of the generator's mean and covariance errors (a collapse shows up there first), paired
one-sided tests of `all` against every baseline over seeds, and for the influence methods the
predicted change next to the replayed one. The numbers are read with `report.summarize`, as
`ganinf evaluate` and the loop read them.

Usage: python benchmarks/cleansing.py --preset default --seeds 5 --frac 0.05 [--json OUT]
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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from ganinf_mlops import keys, report
from ganinf_mlops.config import PRESETS, Preset, get_preset
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.influence.methods import METHODS, influence_methods
from ganinf_mlops.pipeline import run_iteration
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import train

MODES = ("replay", "fresh")
# The change each mode's row of `report.summarize` records for the scored metric.
MODE_CHANGE = {"replay": keys.ACTUAL_CHANGE, "fresh": keys.FRESH_CHANGE}
KEYS = (keys.ALL, keys.DISC_LOSS, keys.GEN_MEAN_ERROR, keys.GEN_COV_ERROR)
INFLUENCE = keys.ALL  # the influence-on-ALL method
BASELINES = ("random", "isolation_forest")  # the verdict's comparisons
DEFAULT_METHODS = (keys.ALL, keys.DISC_LOSS, "isolation_forest", "random")


@dataclasses.dataclass(frozen=True)
class SeedJob:
    preset: str
    seed: int
    frac: float
    methods: tuple[str, ...]
    modes: tuple[str, ...]
    work: str
    threads: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Cleansing benchmark: ALL change after removing top-scored instances, "
        "influence vs baselines, replayed and freshly retrained, over seeds.",
    )
    p.add_argument("--preset", default="default", choices=PRESETS.names())
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (data and training)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first..first+seeds-1")
    p.add_argument("--frac", type=float, default=0.05, help="fraction removed by every method")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from {', '.join(METHODS.names())} (default: %(default)s)",
    )
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma-separated: replay, fresh; which are reported (a loop iteration always "
        "trains both)",
    )
    p.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads per process, 0 = torch's default (default: 1: as fast for "
        "these small models, and it does not collapse when other processes share the cores)",
    )
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    args = p.parse_args(argv)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    args.modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if bad := [m for m in args.methods if m not in METHODS]:
        p.error(f"unknown method(s) {bad}; choose from {', '.join(METHODS.names())}")
    if bad := [m for m in args.modes if m not in MODES]:
        p.error(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    if args.seeds < 1 or args.jobs < 1 or args.first_seed < 0 or args.threads < 0:
        p.error("--seeds and --jobs must be >= 1, --first-seed and --threads >= 0")
    if not 0 < args.frac < 1:
        p.error("--frac must be in (0, 1)")
    return args


# --- one seed ----------------------------------------------------------------------------------


def run_numbers(results: dict[str, Any], run: Path) -> dict[str, float]:
    """What the benchmark keeps of a run: its results (as `report.summarize` gives them) and the
    training time its run directory records."""
    numbers = {k: float(results[k]) for k in (*KEYS, keys.N_STEPS)}
    numbers[keys.TRAIN_SECONDS] = float(RunDir(run).metrics()[keys.TRAIN_SECONDS])
    return numbers


def delta(new: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {k: new[k] - base[k] for k in KEYS}


def method_preset(preset: Preset, method: str, frac: float, seed: int) -> Preset:
    """The preset of one cleanse-loop iteration that scores with `method` at `seed`.

    The iteration is number 1 (it cleanses the raw version) and scores with `job.seed + 1`, so
    job.seed = seed - 1 makes the scores `score(run, raw, method, seed=seed)`: the baselines draw
    with the benchmark's seed. No leave-one-out validation; the whole run is traced back.
    """
    job = dataclasses.replace(
        preset.job, method=method, remove_frac=frac, loo=0, last_epochs=None, seed=seed - 1
    )
    return dataclasses.replace(preset, job=job)


def run_seed(job: SeedJob) -> dict[str, Any]:
    """The whole pipeline for one seed in its own work dir; returns plain numbers only."""
    if job.threads > 0:
        torch.set_num_threads(job.threads)
    started = time.perf_counter()
    preset = get_preset(job.preset)
    preset = dataclasses.replace(
        preset,
        data_params={**preset.data_params, "seed": job.seed},
        train=dataclasses.replace(preset.train, seed=job.seed),
    )
    work = Path(job.work)
    raw = create_raw_version(work / "data" / "v0", preset.dataset, **preset.data_params)
    run = train(raw, preset.train, preset.metric, work / "runs" / "r0", progress=False)
    base = run_numbers(RunDir(run).results(), run)
    methods: dict[str, Any] = {}
    for method in job.methods:
        t0 = time.perf_counter()
        out = run_iteration(
            1,
            work / "methods" / method,
            method_preset(preset, method, job.frac, job.seed),
            raw,
            run,
            progress=False,
        )
        iteration_seconds = time.perf_counter() - t0
        row = report.summarize([run, out.fresh], [out.replay])["iterations"]["1"]
        predicts = keys.PREDICTED_CHANGE in row  # absent for baselines
        rec: dict[str, Any] = {
            # the reverse pass's time as the iteration records it (0 for baselines)
            "score_seconds": out.scoring_seconds,
            "iteration_seconds": iteration_seconds,  # score, cleanse, replay and fresh training
            "n_removed": row[keys.N_REMOVED],
            "anomalies_removed": row.get(keys.N_ANOMALIES_REMOVED, 0),
            "predicted_metric": row["metric"] if predicts else None,
            "predicted_change": row[keys.PREDICTED_CHANGE] if predicts else None,
        }
        trained = {"replay": (row["replay"], out.replay), "fresh": (row, out.fresh)}
        for mode in job.modes:
            metrics = run_numbers(*trained[mode])
            rec[mode] = {
                "metrics": metrics,
                "delta": delta(metrics, base),
                # the change of the scored metric (baselines: ALL); a replay of a baseline's
                # cleanse records none (nothing was predicted)
                "change": row.get(MODE_CHANGE[mode]),
            }
        methods[method] = rec
        shutil.rmtree(work / "methods" / method)  # keep the temp dir small: numbers are all we need
    return {
        "seed": job.seed,
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
            args.modes,
            str(work / f"seed{s}"),
            args.threads,
        )
        for s in seeds
    ]
    results: list[dict[str, Any]] = []
    if args.jobs == 1:
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
    return np.array([r["methods"][method][mode]["delta"][key] for r in results])


def changes(results: list[dict[str, Any]], method: str, mode: str) -> np.ndarray:
    """The change of the method's scored metric per seed, as the summary records it."""
    return np.array([r["methods"][method][mode]["change"] for r in results], dtype=float)


def mean_std(a: np.ndarray) -> str:
    std = float(a.std(ddof=1)) if a.size > 1 else float("nan")
    return f"{a.mean():+.5f} ± {std:.5f}"


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """One-sided: is `a` greater than `b`, pairing by seed?"""
    d = a - b
    out = {"mean_diff": float(d.mean()), "wins": int((d > 0).sum()), "n": int(d.size)}
    if d.size < 2 or np.all(d == d[0]):
        out["t_p"] = float("nan")
    else:
        out["t_p"] = float(stats.ttest_rel(a, b, alternative="greater").pvalue)
    try:
        out["wilcoxon_p"] = float(stats.wilcoxon(a, b, alternative="greater").pvalue)
    except ValueError:  # all differences zero, or too few
        out["wilcoxon_p"] = float("nan")
    return out


def summarize(results: list[dict[str, Any]], methods: tuple[str, ...], modes: tuple[str, ...]):
    summary: dict[str, Any] = {"per_method": {}, "tests": {}, "verdict": {}}
    for method in methods:
        for mode in modes:
            summary["per_method"][f"{method}/{mode}"] = {
                key: {
                    "mean": float(values(results, method, mode, key).mean()),
                    "std": float(values(results, method, mode, key).std(ddof=1))
                    if len(results) > 1
                    else None,
                    "values": values(results, method, mode, key).tolist(),
                }
                for key in KEYS
            }
    if INFLUENCE not in methods:
        return summary
    for mode in modes:
        ours = values(results, INFLUENCE, mode, keys.ALL)
        for base in methods:
            if base != INFLUENCE:
                theirs = values(results, base, mode, keys.ALL)
                summary["tests"][f"{mode}/{base}"] = paired_tests(ours, theirs)
        compared = [b for b in BASELINES if b in methods]
        if compared:
            summary["verdict"][mode] = all(
                summary["tests"][f"{mode}/{b}"]["mean_diff"] > 0 for b in compared
            )
    return summary


# --- report --------------------------------------------------------------------------------------


def fmt_p(p: float) -> str:
    return "   n/a" if math.isnan(p) else f"{p:6.3f}"


def report_seed(r: dict[str, Any], args: argparse.Namespace) -> None:
    b = r["base"]
    parts = [
        f"seed {r['seed']}: ALL {b[keys.ALL]:+.4f}, mean err {b[keys.GEN_MEAN_ERROR]:.3f}, "
        f"cov err {b[keys.GEN_COV_ERROR]:.3f}; ΔALL ({'/'.join(args.modes)})"
    ]
    for method in args.methods:
        deltas = " ".join(
            f"{r['methods'][method][mode]['delta'][keys.ALL]:+.5f}" for mode in args.modes
        )
        parts.append(f"{method} {deltas}")
    print(" | ".join(parts) + f"  ({r['seconds']:.0f} s)", flush=True)


def print_settings(preset: Preset, args: argparse.Namespace) -> None:
    cfg = preset.train
    print(f"cleansing benchmark: preset '{preset.name}' ({preset.description})")
    print(f"  dataset {preset.dataset} {json.dumps(preset.data_params)} (seed replaced per run)")
    print(
        f"  train: G {cfg.model.g_hidden} D {cfg.model.d_hidden}, {cfg.d_optim.name} "
        f"lr D {cfg.d_optim.lr} G {cfg.g_optim.lr}, batch {cfg.batch_size}, epochs {cfg.epochs}, "
        f"{cfg.update}, {cfg.dtype}, {cfg.device} (seed replaced per run)"
    )
    print(f"  metric: ALL n_gen={preset.metric.n_gen} bandwidth={preset.metric.bandwidth}")
    seeds = f"{args.first_seed}..{args.first_seed + args.seeds - 1}"
    print(f"  seeds {seeds} (data seed = training seed), remove frac {args.frac}")
    print(f"  methods {', '.join(args.methods)}; modes {', '.join(args.modes)}")
    threads = args.threads or torch.get_num_threads()
    print(
        f"  torch {torch.__version__}, {os.cpu_count()} cpus, jobs {args.jobs}, "
        f"{threads} torch thread(s) per job\n",
        flush=True,
    )


def print_summary(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    n = len(results)
    base_all = np.array([r["base"][keys.ALL] for r in results])
    k = results[0]["methods"][args.methods[0]]["n_removed"]
    n_anom = np.mean([r["n_anomalies"] for r in results])
    print(
        f"\nUncleansed ALL over {n} seeds: {base_all.mean():+.4f} ± "
        f"{base_all.std(ddof=1) if n > 1 else float('nan'):.4f}; "
        f"removed {k} of {results[0]['n']} per method; injected anomalies per seed {n_anom:g}"
    )
    # Fresh retraining keeps the epochs, so less data means fewer steps: a confound to keep in view.
    steps = {"uncleansed": results[0]["base"][keys.N_STEPS]}
    for mode in args.modes:
        steps[mode] = results[0]["methods"][args.methods[0]][mode]["metrics"][keys.N_STEPS]
    listed = ", ".join(f"{k} {int(v)}" for k, v in steps.items())
    print(f"training steps (seed {results[0]['seed']}): {listed}")
    head = (
        f"{'method':<17}{'mode':<8}{'ΔALL mean ± std':>22}{'ALL up':>8}"
        f"{'Δmean_err':>22}{'Δcov_err':>22}{'anom. removed':>15}"
    )
    print(
        f"\nChange vs the uncleansed run (ALL: higher is better; errors: lower is better)\n{head}"
    )
    print("-" * len(head))
    for method in args.methods:
        anom = np.mean([r["methods"][method]["anomalies_removed"] for r in results])
        for mode in args.modes:
            d_all = values(results, method, mode, keys.ALL)
            up = f"{int((d_all > 0).sum())}/{n}"
            print(
                f"{method:<17}{mode:<8}{mean_std(d_all):>22}{up:>8}"
                f"{mean_std(values(results, method, mode, keys.GEN_MEAN_ERROR)):>22}"
                f"{mean_std(values(results, method, mode, keys.GEN_COV_ERROR)):>22}"
                f"{anom:>15.1f}"
            )


def print_tests(summary: dict[str, Any], args: argparse.Namespace) -> None:
    if not summary["tests"]:
        return
    head = (
        f"{'mode':<8}{'all vs':<18}{'mean diff ΔALL':>16}{'wins':>7}"
        f"{'t-test p':>10}{'wilcoxon p':>12}"
    )
    print(f"\nPaired one-sided tests over seeds, H1: ΔALL(all) > ΔALL(baseline)\n{head}")
    print("-" * len(head))
    for key, t in summary["tests"].items():
        mode, base = key.split("/")
        wins = f"{t['wins']}/{t['n']}"
        print(
            f"{mode:<8}{base:<18}{t['mean_diff']:>+16.4f}{wins:>7}"
            f"{fmt_p(t['t_p']):>10}{fmt_p(t['wilcoxon_p']):>12}"
        )


def print_predicted(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Influence methods predict their own metric's change; the replay is the counterfactual."""
    predicting = influence_methods()
    for method in (m for m in args.methods if m in predicting):
        metric = results[0]["methods"][method]["predicted_metric"]
        pred = np.array([r["methods"][method]["predicted_change"] for r in results], dtype=float)
        cols = list(args.modes)
        head = f"{'seed':>6}{'predicted':>12}" + "".join(f"{'actual ' + m:>15}" for m in cols)
        print(f"\nPredicted vs actual Δ{metric} for method '{method}' (sum over removed)\n{head}")
        print("-" * len(head))
        actual = {m: changes(results, method, m) for m in cols}
        for i, r in enumerate(results):
            row = "".join(f"{actual[m][i]:>+15.5f}" for m in cols)
            print(f"{r['seed']:>6}{pred[i]:>+12.5f}{row}")
        if "replay" in actual and len(results) > 1:
            a = actual["replay"]
            signs = int((np.sign(a) == np.sign(pred)).sum())
            r_val = (
                float(np.corrcoef(pred, a)[0, 1])
                if pred.std() > 0 and a.std() > 0
                else float("nan")
            )
            print(
                f"{'mean':>6}{pred.mean():>+12.5f}"
                + "".join(f"{actual[m].mean():>+15.5f}" for m in cols)
                + f"   replay: sign agrees {signs}/{len(a)}, Pearson r {r_val:.3f}, "
                f"actual/predicted {a.mean() / pred.mean() if pred.mean() else float('nan'):.2f}"
            )


def print_verdict(summary: dict[str, Any], args: argparse.Namespace) -> None:
    per = summary["per_method"]
    compared = [b for b in BASELINES if b in args.methods]
    for mode, ok in summary["verdict"].items():
        ours = per[f"{INFLUENCE}/{mode}"][keys.ALL]
        print(
            f"VERDICT [{mode}]: influence-based removal ({INFLUENCE}) beats "
            f"{' and '.join(compared)} on mean ΔALL: {'YES' if ok else 'NO'}"
        )
        for b in compared:
            t = summary["tests"][f"{mode}/{b}"]
            significant = max(t["t_p"], t["wilcoxon_p"]) < 0.05
            print(
                f"  vs {b}: {ours['mean']:+.5f} vs {per[f'{b}/{mode}'][keys.ALL]['mean']:+.5f}, "
                f"t-test p={fmt_p(t['t_p']).strip()}, wilcoxon p={fmt_p(t['wilcoxon_p']).strip()}"
                f" (both < 0.05: {'yes' if significant else 'no'})"
            )
        # Beating the baselines is relative; say too whether cleansing helped at all.
        ups = sum(v > 0 for v in ours["values"])
        print(
            f"  ALL itself improves on the uncleansed run: {'YES' if ours['mean'] > 0 else 'NO'} "
            f"(mean ΔALL {ours['mean']:+.5f}, up in {ups}/{len(ours['values'])} seeds)"
        )


def json_safe(obj: Any) -> Any:
    """NaN (an undefined p-value) as null: strict JSON, readable by any parser."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


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
    summary = summarize(results, args.methods, args.modes)
    print_summary(results, args)
    print_tests(summary, args)
    print_predicted(results, args)
    print()
    print_verdict(summary, args)
    total = time.perf_counter() - started
    print(f"\nbenchmark wall time: {total:.0f} s")
    if args.json is not None:
        out = {
            "preset": preset.name,
            "data_params": preset.data_params,
            "train_config": dataclasses.asdict(preset.train),
            "settings": {
                "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
                "frac": args.frac,
                "methods": list(args.methods),
                "modes": list(args.modes),
                "jobs": args.jobs,
            },
            "results": results,
            "summary": summary,
            "benchmark_seconds": total,
        }
        args.json.write_text(json.dumps(json_safe(out), indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
