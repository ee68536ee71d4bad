"""Classifier cleansing under label noise: does SGD-influence find the flipped labels, and does
removing what it flags raise test accuracy more than removing random or high-loss instances?

Per seed s (data seed s: which labels are flipped; training seed s):

  base      the raw version (the preset's dataset, e.g. digits with 10% of the labels flipped)
            and one run on it, trained with `train.storage: checkpoints` (exact influence);
            the same run again with `storage: final` (the initial and final states only);
  methods   val_loss         SGD-influence on the validation loss, exact reverse pass;
            val_loss_se      Suzuki et al.'s storage-efficient estimate (last epoch linearised at
                             the final state) from the `final` run;
            loss             the final model's training loss of each instance (the usual
                             label-noise heuristic);
            instance_selection  DeVries et al.'s instance selection: the lowest density under
                             a Gaussian of the inputs (standardised: its covariance is shrunk
                             towards the diagonal), blind to the labels;
            random           uniform scores;
  removal   per method the top k are removed (`cleanse`, policy top; k = round(remove_frac * n)
            with the preset's job.remove_frac or --remove-frac: the number of flipped labels
            when it equals the label noise) and the classifier retrained fresh on the rest,
            --retrain-seeds times
            (training seeds s, s+1000, ...) with the base's number of steps: test accuracy and
            test loss, seed means, against the same seeds' fresh runs on the raw version;
  fidelity  Kendall tau of the exact and storage-efficient predicted changes against real
            leave-one-out retraining (`influence.loo`) on --loo random instances, and of the two
            estimates against each other over every instance;
  storage   bytes of each run's checkpoints, and of the per-step parameter history that
            SGD-influence without replay (Hara et al.) would keep.

Precision = fraction of flipped labels among the k removed, recall = fraction of the flipped
labels among them. The paired tests (t-test, Wilcoxon signed-rank as a check) compare val_loss's
test accuracy after removal, and its precision, with each other method's over the seeds. Report
on seeds nothing was chosen on (digits-labelnoise: chosen on 100-104, default 1-10; the tables:
chosen on 0-4, reported on 100-109). --preset takes several, comma-separated: one table.

Usage: python benchmarks/classifier_cleansing.py [--preset digits-labelnoise] [--seeds 1-10]
       [--loo 40] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, ttest_rel, wilcoxon
from seeds import per_seed

from ganinf_mlops import keys
from ganinf_mlops.cleanse import cleanse
from ganinf_mlops.config import get_preset, with_train_options
from ganinf_mlops.data.datasets import round_half_up
from ganinf_mlops.data.version import DatasetVersion, create_raw_version
from ganinf_mlops.influence.loo import loo_changes
from ganinf_mlops.influence.methods import score
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.scores import write_scores
from ganinf_mlops.train.rundir import CHECKPOINTS, RunDir, flatten_state
from ganinf_mlops.train.trainer import train

METHODS = ("val_loss", "val_loss_se", "loss", "instance_selection", "random")
OTHERS = ("random", "loss", "instance_selection", "val_loss_se")  # what val_loss is compared with


def bytes_of(run: Path) -> int:
    return sum(f.stat().st_size for f in (run / CHECKPOINTS).iterdir())


def fresh_results(
    version: DatasetVersion, cfg: Any, metric: Any, seeds: list[int], work: Path, name: str
) -> dict[str, float]:
    """Results of fresh runs on `version`, one per training seed, averaged over the seeds."""
    runs = [
        RunDir(train(version, dataclasses.replace(cfg, seed=s), metric, work / f"{name}-{s}",
                     progress=False)).results()
        for s in seeds
    ]  # fmt: skip
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def train_config(args: argparse.Namespace, preset: Any, seed: int) -> Any:
    """The preset's training config with the command line's overrides and training seed."""
    cfg = with_train_options(
        preset.train, seed=seed, lr=args.lr, optimizer=args.optimizer, epochs=args.epochs,
        batch_size=args.batch_size,
    )  # fmt: skip
    model = {"arch": args.arch, "hidden": args.hidden}
    model = {k: v for k, v in model.items() if v is not None}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model))


def run_seed(args: argparse.Namespace, name: str, seed: int, work: Path) -> dict[str, Any]:
    preset = get_preset(name)
    params = {**preset.data_params, "seed": seed}
    raw = create_raw_version(work / "v0", preset.dataset, **params)
    flipped = set(raw.manifest.is_anomaly_ids)
    frac = preset.job.remove_frac if args.remove_frac is None else args.remove_frac
    k = round_half_up(frac * raw.n)
    cfg = train_config(args, preset, seed)
    last = preset.job.last_epochs if args.last_epochs is None else args.last_epochs or None
    n_loo = args.loo
    # Training seeds of the fresh runs every version is judged by (the scored run's first).
    seeds = [seed + 1000 * i for i in range(args.retrain_seeds)]
    t0 = time.perf_counter()
    exact_run = train(raw, cfg, preset.metric, work / "exact", progress=False)
    train_s = time.perf_counter() - t0
    final_run = train(
        raw, dataclasses.replace(cfg, storage="final"), preset.metric, work / "final",
        progress=False,
    )  # fmt: skip
    steps = RunDir(exact_run).n_steps
    budget = dataclasses.replace(cfg, steps=steps)  # fresh runs take the scored run's steps
    base = fresh_results(raw, budget, preset.metric, seeds, work, "base")
    opts = ScoringOptions(keys.VAL_LOSS, last_epochs=last, progress=False)
    tables = {
        "val_loss": score(exact_run, raw, opts),
        "val_loss_se": score(
            final_run, raw, ScoringOptions(keys.VAL_LOSS, storage_efficient=True, progress=False)
        ),
        "loss": score(exact_run, raw, ScoringOptions("loss", progress=False)),
        "instance_selection": score(
            exact_run, raw, ScoringOptions("instance_selection", progress=False)
        ),
        "random": score(exact_run, raw, ScoringOptions("random", seed=seed, progress=False)),
    }
    out: dict[str, Any] = {
        "preset": name, "seed": seed, "k": k, "flipped": len(flipped), "n": raw.n, "base": base,
        "methods": {},
    }  # fmt: skip
    out["influence_seconds"] = {m: tables[m].extra["seconds"] for m in ("val_loss", "val_loss_se")}
    out["train_seconds"] = train_s
    for method, table in tables.items():
        top = table.ids[np.argsort(-table.harmfulness, kind="stable")[:k]]
        scores_path = work / f"{method}.csv"
        write_scores(scores_path, table)
        child = cleanse(raw, scores_path, work / f"v_{method}", remove_count=k, policy="top")
        res = fresh_results(child, budget, preset.metric, seeds, work, method)
        hits = len(flipped & set(top.tolist()))
        out["methods"][method] = {
            "precision_at_k": hits / k,
            "recall_at_k": hits / max(len(flipped), 1),
            keys.TEST_ACCURACY: res[keys.TEST_ACCURACY],
            keys.TEST_LOSS: res[keys.TEST_LOSS],
            keys.VAL_LOSS: res[keys.VAL_LOSS],
        }
    out["fidelity"] = fidelity(raw, RunDir(exact_run), tables, n_loo, seed) if n_loo else {}
    state_bytes = sum(
        t.numel() * t.element_size()
        for t in flatten_state(RunDir(exact_run).load_state(steps)).values()
    )
    out["storage"] = {
        "exact_checkpoints": bytes_of(exact_run),
        "final_only": bytes_of(final_run),
        "final_state": state_bytes,
        "every_step_history": state_bytes * (steps + 1),
    }
    return out


def fidelity(
    raw: DatasetVersion, run: RunDir, tables: dict[str, Any], n_loo: int, seed: int
) -> dict[str, float]:
    problem = run.problem(raw)
    picks = np.random.default_rng(seed).choice(raw.n, size=min(n_loo, raw.n), replace=False)
    true = loo_changes(problem, run, problem.target(keys.VAL_LOSS), picks, progress=False).numpy()
    out = {
        f"tau_{m}": float(kendalltau(tables[m].predicted_change[picks], true).statistic)
        for m in ("val_loss", "val_loss_se")
    }
    # The two estimates against each other, over every instance.
    se, exact = tables["val_loss_se"].predicted_change, tables["val_loss"].predicted_change
    out["tau_se_vs_exact"] = float(kendalltau(se, exact).statistic)
    return out


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """One-sided p-values of "a > b" over paired seeds (1.0 where they never differ)."""
    diff = a - b
    if not diff.any():
        return {"t_test_p_one_sided": 1.0, "wilcoxon_p_one_sided": 1.0}
    return {
        "t_test_p_one_sided": float(ttest_rel(a, b, alternative="greater").pvalue),
        "wilcoxon_p_one_sided": float(wilcoxon(diff, alternative="greater").pvalue),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def col(method: str, key: str) -> np.ndarray:
        return np.array([r["methods"][method][key] for r in rows])

    base_acc = np.array([r["base"][keys.TEST_ACCURACY] for r in rows])
    summary: dict[str, Any] = {
        "n_seeds": len(rows),
        "base_test_accuracy": float(base_acc.mean()),
        "base_test_loss": float(np.mean([r["base"][keys.TEST_LOSS] for r in rows])),
    }
    for m in METHODS:
        acc = col(m, keys.TEST_ACCURACY)
        summary[m] = {
            "precision_at_k": float(col(m, "precision_at_k").mean()),
            "recall_at_k": float(col(m, "recall_at_k").mean()),
            "test_accuracy": float(acc.mean()),
            "test_accuracy_gain": float((acc - base_acc).mean()),
            "test_loss": float(col(m, keys.TEST_LOSS).mean()),
        }
    for other in OTHERS:
        a, b = col("val_loss", keys.TEST_ACCURACY), col(other, keys.TEST_ACCURACY)
        summary[f"val_loss_vs_{other}"] = {
            "mean_accuracy_difference": float((a - b).mean()),
            **paired(a, b),
            "precision": paired(col("val_loss", "precision_at_k"), col(other, "precision_at_k")),
        }
    for key in ("tau_val_loss", "tau_val_loss_se", "tau_se_vs_exact"):
        if all(r["fidelity"] for r in rows):
            summary[key] = float(np.mean([r["fidelity"][key] for r in rows]))
    for key in ("exact_checkpoints", "final_only", "final_state", "every_step_history"):
        summary[f"bytes_{key}"] = int(np.mean([r["storage"][key] for r in rows]))
    summary["influence_over_training"] = float(
        np.mean([r["influence_seconds"]["val_loss"] / r["train_seconds"] for r in rows])
    )
    return summary


def print_summary(s: dict[str, Any], name: str, args: argparse.Namespace) -> None:
    print(f"{name}: {s['n_seeds']} seeds, raw data: test accuracy {s['base_test_accuracy']:.4f}, "
          f"test loss {s['base_test_loss']:.4f}")  # fmt: skip
    for other in OTHERS:
        r = s[f"val_loss_vs_{other}"]
        print(
            f"  val_loss vs {other}: accuracy {r['mean_accuracy_difference']:+.4f}, one-sided "
            f"paired t-test p = {r['t_test_p_one_sided']:.3g} (Wilcoxon "
            f"{r['wilcoxon_p_one_sided']:.3g}); precision p = "
            f"{r['precision']['t_test_p_one_sided']:.3g} (Wilcoxon "
            f"{r['precision']['wilcoxon_p_one_sided']:.3g})"
        )
    if "tau_val_loss" in s:
        print(
            f"  Kendall tau vs leave-one-out ({args.loo} instances): exact "
            f"{s['tau_val_loss']:.3f}, storage-efficient {s['tau_val_loss_se']:.3f}; "
            f"storage-efficient vs exact over all instances {s['tau_se_vs_exact']:.3f}"
        )
    print(
        f"  bytes: exact checkpoints {s['bytes_exact_checkpoints']:,}, final-only run "
        f"{s['bytes_final_only']:,} (influence needs the final state, {s['bytes_final_state']:,}),"
        f" every-step history {s['bytes_every_step_history']:,} "
        f"(= {s['bytes_every_step_history'] / s['bytes_final_state']:.0f}x the final state)"
    )
    print(f"  influence time / training time: {s['influence_over_training']:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="digits-labelnoise", help="one or several, a,b")
    ap.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,2,3")
    ap.add_argument("--loo", type=int, default=40, help="leave-one-out retrainings per seed")
    ap.add_argument("--retrain-seeds", type=int, default=3, help="fresh runs per version")
    ap.add_argument("--remove-frac", type=float, help="override job.remove_frac (k removed)")
    ap.add_argument("--last-epochs", type=int, help="override job.last_epochs (0: whole run)")
    ap.add_argument("--arch", help="override train.model.arch (logreg, mlp, cnn)")
    ap.add_argument(
        "--hidden", type=lambda t: tuple(int(w) for w in t.split(",")),
        help="override train.model.hidden, e.g. 32 or 64,64",
    )  # fmt: skip
    ap.add_argument("--optimizer", help="override the optimizer (sgd, momentum, adam)")
    ap.add_argument("--lr", type=float, help="override the learning rate")
    ap.add_argument("--epochs", type=int, help="override the epochs")
    ap.add_argument("--batch-size", type=int, help="override the batch size")
    ap.add_argument("--json", type=Path, help="write every number here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # small models: several times faster than 2 threads on a busy machine
    names = args.preset.split(",")
    for name in names:
        get_preset(name)  # an unknown name fails before any work
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for name in names:
        for row in per_seed(args.seeds, lambda seed, work, n=name: run_seed(args, n, seed, work)):
            rows[name].append(row)
            m = row["methods"]
            print(
                f"{name} seed {row['seed']}: k={row['k']} ({row['flipped']} flipped)  base acc "
                f"{row['base'][keys.TEST_ACCURACY]:.4f}  "
                + "  ".join(
                    f"{meth}: P {m[meth]['precision_at_k']:.2f} "
                    f"acc {m[meth][keys.TEST_ACCURACY]:.4f}"
                    for meth in METHODS
                )
                + (
                    f"  tau exact {row['fidelity']['tau_val_loss']:.2f} "
                    f"se {row['fidelity']['tau_val_loss_se']:.2f}"
                    if row["fidelity"]
                    else ""
                ),
                flush=True,
            )
    summaries = {name: summarize(r) for name, r in rows.items()}
    print(f"\n{vars(args)}")
    print(f"{'preset':<26} {'method':<18} {'precision':>9} {'recall':>7} {'test acc':>9} "
          f"{'gain':>8} {'test loss':>10}")  # fmt: skip
    for name, s in summaries.items():
        print(f"{name:<26} {'raw data':<18} {'':>9} {'':>7} {s['base_test_accuracy']:>9.4f} "
              f"{'':>8} {s['base_test_loss']:>10.4f}")  # fmt: skip
        for m in METHODS:
            r = s[m]
            print(
                f"{name:<26} {m:<18} {r['precision_at_k']:>9.3f} {r['recall_at_k']:>7.3f} "
                f"{r['test_accuracy']:>9.4f} {r['test_accuracy_gain']:>+8.4f} "
                f"{r['test_loss']:>10.4f}"
            )
    for name, s in summaries.items():
        print_summary(s, name, args)
    if args.json:
        out = {"rows": rows, "summary": summaries}
        if len(names) == 1:  # the one-preset layout of earlier runs
            out = {"rows": rows[names[0]], "summary": summaries[names[0]]}
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
