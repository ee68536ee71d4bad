"""How far does the first-order estimate carry? Measured per seed on seeds no test uses.

For each optimizer variant of a preset and each seed s (data and training seed s):

  leave-one-out   Kendall tau between the estimated and the replayed change of removing one
                  instance (k instances: 1/4 top, 1/4 bottom, 1/2 random; `validate`).
  chaos floor     the change of the metric when one random instance's weight is set to 1 - eps
                  (a perturbation whose first-order effect is eps of its removal), divided by
                  eps * the derivative: 1 where training responds linearly, >> 1 where a tiny
                  perturbation changes the final model as much as a removal (chaotic dynamics:
                  one trajectory's leave-one-out change is then mostly a butterfly effect).
  group score     Spearman over random removal sets (5%, 20% of N) between the summed estimate
                  and the replayed change, for one trajectory and for an ensemble of K runs that
                  differ in the training seed, each against replays averaged over the same runs.
  ceiling         with an ensemble: Spearman between the replays averaged over one half of the K
                  runs and over the other half. Where it is low, the seed-averaged change of a set
                  is itself mostly seed noise, and no estimate can score high against it.

Usage: python benchmarks/fidelity.py --preset default --seeds 10 --first-seed 100
       [--average-order] [--last-epochs K]
       python benchmarks/fidelity.py --variants adam,momentum,alternating --seeds 5 --ensemble 4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from seeds import key_values

from ganinf_mlops.config import PRESETS, Preset, get_preset, with_train_options
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.influence.loo import removal_changes
from ganinf_mlops.influence.methods import METHODS, score, score_ensemble
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.validate import validate
from ganinf_mlops.io import write_json
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.pipeline import with_classifier
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import seed_siblings, train

# Optimizer variants of the preset's training (the settings the issue reports, for comparison).
VARIANTS = {
    "preset": {},
    "sgd": {"opt": OptimConfig("sgd", lr=0.01)},
    "momentum": {"opt": OptimConfig("momentum", lr=0.005, momentum=0.9)},
    "adam": {"opt": OptimConfig("adam", lr=1e-3, beta1=0.5)},
    "alternating": {"update": "alternating"},
}
GROUP_FRACS = (0.05, 0.2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="default", choices=PRESETS.names())
    p.add_argument("--variants", default="preset", help=f"from {', '.join(VARIANTS)}")
    p.add_argument("--method", default="fd", choices=METHODS.names())
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=100, help="seeds first..first+seeds-1")
    p.add_argument("--loo", type=int, default=40, help="leave-one-out replays per seed (0: skip)")
    p.add_argument("--group", type=int, default=20, help="random sets per fraction (0: skip)")
    p.add_argument("--ensemble", type=int, default=1, help="runs per ensemble (1: skip)")
    p.add_argument("--chaos", type=int, default=8, help="instances perturbed by eps (0: skip)")
    p.add_argument("--eps", type=float, default=1e-3)
    p.add_argument(
        "--average-order",
        action="store_true",
        help="score with influence averaged over minibatch orders (the chaos floor keeps the "
        "plain derivative, whose linearity it measures)",
    )
    p.add_argument(
        "--last-epochs", type=int, default=None, help="score only the last K epochs' influence"
    )
    p.add_argument(
        "--dtype", choices=("float64", "float32"), default=None, help="override the preset's"
    )
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument(
        "--train-size", type=int, default=None, help="images datasets: training images kept"
    )
    p.add_argument(
        "--train-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a training field of the preset (VALUE as JSON), e.g. r1=1 or lr=0.02",
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    args.train_param = key_values(p, args.train_param, "--train-param")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if bad := [v for v in args.variants if v not in VARIANTS]:
        p.error(f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)}")
    return args


def variant_preset(preset: Preset, name: str, seed: int) -> Preset:
    v = VARIANTS[name]
    train_cfg = dataclasses.replace(preset.train, seed=seed)
    if "opt" in v:
        train_cfg = dataclasses.replace(train_cfg, d_optim=v["opt"], g_optim=v["opt"])
    if "update" in v:
        train_cfg = dataclasses.replace(train_cfg, update=v["update"])
    data = {**preset.data_params, "seed": seed}
    return dataclasses.replace(preset, train=train_cfg, data_params=data)


def with_overrides(preset: Preset, args: argparse.Namespace) -> Preset:
    """--dtype, --epochs, --train-size and --train-param applied to the preset."""
    train_cfg = with_train_options(
        preset.train, dtype=args.dtype, epochs=args.epochs, **args.train_param
    )
    data = dict(preset.data_params)
    if args.train_size is not None:
        data["train_size"] = args.train_size
    return dataclasses.replace(preset, train=train_cfg, data_params=data)


def chaos_ratio(run: Path, version, method: str, table, n: int, eps: float, seed: int) -> float:
    """Median over n random instances of |dV(w_j = 1 - eps)| / (eps |dV/dw_j|)."""
    rd = RunDir(run)
    problem = rd.problem(version)
    target = problem.target(METHODS.get(method).target)
    rng = np.random.default_rng(seed)
    pos = rng.choice(version.n, size=n, replace=False)
    dv = removal_changes(problem, rd, target, [[p] for p in pos], weight=1 - eps, progress=False)
    _, change = table.aligned_to(version.ids)
    return float(np.median(np.abs(dv.numpy()) / (eps * np.abs(change[pos]) + 1e-300)))


def random_sets(n: int, m: int, seed: int) -> list[tuple[float, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (f, rng.choice(n, size=max(1, round(f * n)), replace=False))
        for f in GROUP_FRACS
        for _ in range(m)
    ]


def set_replays(runs: list[Path], version, target: str, sets) -> np.ndarray:
    """[len(runs), len(sets)] replayed changes of removing each set, per run."""
    out = []
    for run in runs:
        rd = RunDir(run)
        problem = rd.problem(version)
        out.append(
            removal_changes(
                problem, rd, problem.target(target), [s for _, s in sets], progress=False
            ).numpy()
        )
    return np.array(out)


def per_fraction(a: np.ndarray, b: np.ndarray, sets, prefix: str) -> dict[str, float]:
    """Spearman between two per-set vectors, over the sets of each removal fraction."""
    out = {}
    for f in GROUP_FRACS:
        rows = [i for i, (g, _) in enumerate(sets) if g == f]
        out[f"{prefix}_{f * 100:g}pct"] = float(spearmanr(a[rows], b[rows])[0])
    return out


def group_scores(est: np.ndarray, actual: np.ndarray, sets, prefix: str) -> dict[str, float]:
    pred = np.array([est[s].sum() for _, s in sets])
    return per_fraction(pred, actual, sets, prefix)


def run_seed(preset: Preset, variant: str, seed: int, args: argparse.Namespace, work: Path):
    p = variant_preset(preset, variant, seed)
    version = create_raw_version(work / "raw", p.dataset, **p.data_params)
    p = with_classifier(p, version, work, force=False, progress=False)  # images: FID, IS
    t0 = time.perf_counter()
    run = train(version, p.train, p.metric, work / "run", progress=False)
    out: dict[str, Any] = {"seed": seed, "train_seconds": time.perf_counter() - t0}
    how = {"last_epochs": args.last_epochs, "average_order": args.average_order}
    table = score(run, version, ScoringOptions(args.method, progress=False, **how))
    plain = table if table.extra["first_step"] == 0 and not args.average_order else None
    out[args.method] = RunDir(run).metrics()[METHODS.get(args.method).target]
    if args.loo:
        rep = validate(run, version, table, k=args.loo, seed=seed, group_subsets=0, progress=False)
        out["tau"] = rep["kendall_tau"]
    if args.chaos:
        if plain is None:  # the chaos floor measures the plain derivative's linearity
            plain = score(run, version, ScoringOptions(args.method, progress=False))
        out["chaos"] = chaos_ratio(run, version, args.method, plain, args.chaos, args.eps, seed)
    if not args.group:
        return out
    target = METHODS.get(args.method).target
    _, single = table.aligned_to(version.ids)
    sets = random_sets(version.n, args.group, seed)
    members = (
        seed_siblings(run, version, args.ensemble, progress=False) if args.ensemble > 1 else [run]
    )
    actual = set_replays(members, version, target, sets)  # [K, sets]
    out.update(group_scores(single, actual[0], sets, "single"))
    if args.ensemble > 1:
        ens = score_ensemble(members, version, ScoringOptions(args.method, progress=False, **how))
        _, mean_est = ens.aligned_to(version.ids)
        avg = actual.mean(0)
        out.update(group_scores(single, avg, sets, "single_vs_avg"))
        out.update(group_scores(mean_est, avg, sets, "ensemble_vs_avg"))
        out.update(ceiling(actual, sets))
    return out


def ceiling(actual: np.ndarray, sets) -> dict[str, float]:
    """Split-half reliability of the seed-averaged replays: Spearman between the mean over the
    first and the second half of the runs. No estimate can agree with the seed average better
    than the seed average agrees with itself, so this bounds the ensemble's group score."""
    half = len(actual) // 2
    return per_fraction(actual[:half].mean(0), actual[half : 2 * half].mean(0), sets, "ceiling")


def summarize(rows: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for key in rows[0]:
        if key == "seed":
            continue
        vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        if vals:
            out[key] = (
                f"median {statistics.median(vals):.3f}  min {min(vals):.3f}  max {max(vals):.3f}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    preset = with_overrides(get_preset(args.preset), args)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="ganinf-fidelity-") as tmp:
        for variant in args.variants:
            results[variant] = []
            for s in seeds:
                row = run_seed(preset, variant, s, args, Path(tmp) / variant / f"seed{s}")
                results[variant].append(row)
                print(f"{variant:12} seed {s}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in row.items() if k != "seed"), flush=True)  # fmt: skip
    print(
        f"\nmethod {args.method}, preset {args.preset}, seeds {seeds.start}..{seeds.stop - 1}, "
        f"last epochs {args.last_epochs or 'all'}, order "
        f"{'averaged' if args.average_order else 'as drawn'}"
    )
    for variant, rows in results.items():
        print(f"\n{variant}:")
        for key, text in summarize(rows).items():
            print(f"  {key:22} {text}")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
