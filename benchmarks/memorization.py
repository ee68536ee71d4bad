"""Does memorization rejection (Bai et al.) reduce data copying? C_T with and without it.

A GAN on very few training images, trained long, drifts towards copying them. Per seed s (data
seed s picks the --train-size training images; training seed s) this trains the image preset's
GAN twice on the same version with the same schedule:

  plain     no rejection;
  rejected  `train.reject_threshold` = the --quantile of the held-out real images' cosine
            distances to their nearest training image (in --embedding space): a generated sample
            closer to the training set than that fraction of fresh real images is rejected from
            the generator's update;

and reports Meehan et al.'s C_T (`copying_ct`, the run's result: strongly negative = copying, 0 =
as far from the training set as fresh data), FID, and the mean rejection rate of the rejected run
over its last epoch. The paired difference of C_T over seeds is tested one-sided (t-test;
Wilcoxon as a check).

Usage: python benchmarks/memorization.py [--preset digits] [--train-size 20] [--steps 3000]
       [--seeds 2-6] [--quantile 0.1] [--embedding classifier|pixels] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import ttest_rel, wilcoxon
from seeds import per_seed

from ganinf_mlops import keys
from ganinf_mlops.config import get_preset
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.features.artifact import fit_classifier
from ganinf_mlops.train.rundir import LOSSES, RunDir
from ganinf_mlops.train.trainer import train


def rejection_threshold(problem: Any, quantile: float) -> float:
    """The `quantile` of held-out images' cosine distances to their nearest training image."""
    with torch.no_grad():
        bank = F.normalize(problem.embedding(problem.x), dim=1)
        held = F.normalize(problem.embedding(problem.x_eval), dim=1)
        dist = 1 - (held @ bank.T).max(dim=1).values
    return float(torch.quantile(dist, quantile))


def last_epoch_rate(run: RunDir) -> float:
    rows = (run.path / LOSSES).read_text().splitlines()
    rates = [float(r.split(",")[-1]) for r in rows[1:]][-run.steps_per_epoch :]
    return float(np.mean(rates))


def run_seed(args: argparse.Namespace, seed: int, work: Path) -> dict[str, Any]:
    preset = get_preset(args.preset)
    params = {**preset.data_params, "noise_frac": 0.0, "train_size": args.train_size, "seed": seed}
    raw = create_raw_version(work / "v0", preset.dataset, **params)
    fit_classifier(raw, work / "clf", progress=False)
    metric = dataclasses.replace(preset.metric, classifier=str(work / "clf"))
    batch = min(preset.train.batch_size, args.train_size // 2)
    cfg = dataclasses.replace(
        preset.train, seed=seed, steps=args.steps, batch_size=batch, reject_embedding=args.embedding
    )
    plain = RunDir(train(raw, cfg, metric, work / "plain", progress=False))
    threshold = rejection_threshold(plain.problem(raw), args.quantile)
    rejected = RunDir(
        train(raw, dataclasses.replace(cfg, reject_threshold=threshold), metric,
              work / "rejected", progress=False)
    )  # fmt: skip
    out: dict[str, Any] = {"seed": seed, "threshold": threshold}
    for name, run in (("plain", plain), ("rejected", rejected)):
        r = run.results()
        out[name] = {k: r[k] for k in (keys.COPYING_CT, keys.FID, keys.IS)}
    out["reject_rate_last_epoch"] = last_epoch_rate(rejected)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="digits")
    ap.add_argument("--train-size", type=int, default=20)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", default="2-6")
    ap.add_argument("--quantile", type=float, default=0.1)
    ap.add_argument("--embedding", choices=("classifier", "pixels"), default="classifier")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    for row in per_seed(args.seeds, lambda seed, work: run_seed(args, seed, work)):
        rows.append(row)
        print(
            f"seed {row['seed']}: threshold {row['threshold']:.4f}  C_T plain "
            f"{row['plain'][keys.COPYING_CT]:+.2f} rejected {row['rejected'][keys.COPYING_CT]:+.2f}"
            f"  FID {row['plain'][keys.FID]:.3f} -> {row['rejected'][keys.FID]:.3f}  "
            f"rejection rate (last epoch) {row['reject_rate_last_epoch']:.2f}",
            flush=True,
        )
    a = np.array([r["rejected"][keys.COPYING_CT] for r in rows])
    b = np.array([r["plain"][keys.COPYING_CT] for r in rows])
    print(
        f"\n{args.preset}, {args.train_size} training images, {args.steps} steps, "
        f"{args.embedding} embedding, threshold quantile {args.quantile}, seeds {args.seeds}:"
    )
    print(f"C_T plain {b.mean():+.2f} +- {b.std(ddof=1) if len(b) > 1 else 0:.2f}, "
          f"rejected {a.mean():+.2f} +- {a.std(ddof=1) if len(a) > 1 else 0:.2f}")  # fmt: skip
    if len(rows) > 1 and (a - b).any():
        print(
            f"rejected - plain: {np.mean(a - b):+.2f}, paired t-test p = "
            f"{ttest_rel(a, b, alternative='greater').pvalue:.3g} (Wilcoxon "
            f"{wilcoxon(a - b, alternative='greater').pvalue:.3g})"
        )
    fid = [(r["plain"][keys.FID], r["rejected"][keys.FID]) for r in rows]
    print(
        f"FID plain {np.mean([f[0] for f in fid]):.3f}, rejected {np.mean([f[1] for f in fid]):.3f}"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
