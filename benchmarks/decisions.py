"""Decisions on held-out data seeds: does the job cleanse only when its evidence holds, and does
the gate pass clean data and fail contaminated data?

For each data seed and each condition (`contaminated`: the preset's own data; `clean`: the same
with the corruption turned off by --clean KEY=VALUE), the preset's whole job runs (`run_job`:
train, score with its ensemble, cleanse, retrain fresh) with the evidence check off, so that
every seed shows what its cleanse does under fresh retraining. The job's decision is a function
of its scores alone (`evidence(...).holds(min_agreement)`, what `cleanse.check_agreement` applies),
so it is computed from the same scores: per seed the script prints whether the job cleanses or
abstains at `--min-agreement`, the ensemble's held-out agreement and t-test, the change under
fresh retraining (for an abstaining seed: what the cleanse it refused would have done), and the
gate's answer on the job's own scores (`ganinf gate --scores`: nothing is scored twice). Then the
rates: how often the gate passes clean data and fails contaminated data, how often the job
cleanses, and the seeds (if any) where it removes data while its members disagree.

    python benchmarks/decisions.py --seeds 300-309 --jobs 2             # held out, 2D default
    python benchmarks/decisions.py --seeds 0-2                          # tuning seeds
    RAY_ADDRESS=head:6379 python benchmarks/decisions.py --seeds 300-309  # a job per Ray task
    python benchmarks/decisions.py --preset digits --clean noise_frac=0.0 --seeds 300-309 \
        --job ensemble=8 --job last_epochs=1 --job average_order=true --job retrain_seeds=3

`--work DIR` keeps the jobs (and reuses finished ones: a rerun only analyses); `--json FILE`
writes every number.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from seeds import benchmarks_on_pythonpath, key_values, parse_seeds

from ganinf_mlops import keys
from ganinf_mlops.cleanse import removal_count
from ganinf_mlops.config import DEFAULT_MIN_AGREEMENT, Preset, get_preset
from ganinf_mlops.evidence import ALPHA, evidence
from ganinf_mlops.executor import EXECUTORS, executor_for, resolve
from ganinf_mlops.gate import set_report
from ganinf_mlops.influence.scores import read_scores
from ganinf_mlops.io import read_json, write_json


@dataclasses.dataclass(frozen=True)
class Case:
    condition: str  # "clean" or "contaminated"
    seed: int
    preset: Preset
    work: Path


def case_preset(base: Preset, condition: str, seed: int, args: argparse.Namespace) -> Preset:
    data = {**base.data_params, "seed": seed}
    if condition == "clean":
        data |= args.clean
    # Each job's own trainings run one after another: the cases are what runs in parallel.
    changes = {**args.job, "min_agreement": None, "iterations": 1, "executor": "serial"}
    if args.ensemble:
        changes["ensemble"] = args.ensemble
    job = dataclasses.replace(base.job, **changes)
    return dataclasses.replace(base, data_params=data, job=job)


def run_case(case: Case) -> Path:
    """The job of one case in its own directory (kept: a finished one is not rerun)."""
    import torch

    from ganinf_mlops.pipeline import run_job

    torch.set_num_threads(1)
    if not (case.work / "summary.json").exists():
        run_job(case.work, case.preset, force=True, progress=False)
    return case.work


def analyse(case: Case, max_frac: float, min_agreement: float) -> dict[str, Any]:
    """One finished job: its decision at `min_agreement`, its evidence, the fresh change of its
    cleanse and the gate's answer."""
    summary = read_json(case.work / "summary.json", "job summary")
    its = summary["iterations"]
    scores = sorted((case.work / "scores").glob("it1_*.csv"))
    table = read_scores(scores[0])
    k = removal_count(table.n, case.preset.job.remove_frac, None)
    ev = evidence(table, k, case.preset.job.policy, case.preset.job.threshold)
    if ev is None:
        raise SystemExit(f"{scores[0]}: not an ensemble's scores (job.ensemble is 1)")
    gate = set_report(table, max_frac, min_agreement)
    row: dict[str, Any] = {
        "condition": case.condition,
        "seed": case.seed,
        "cleansed": ev.holds(min_agreement),
        "agreeing": ev.agreeing,
        "p_value": ev.p_value,
        "members": ev.members,
        "held_out_mean": ev.mean,
        "held_out_spread": ev.spread,
        keys.PREDICTED_IMPROVEMENT: ev.predicted,
        "gate_passed": gate["passed"],
        "gate_agreeing": gate["set"][keys.N_AGREEING],
        "metric": table.metric,
    }
    if "1" in its:  # the cleanse, made whatever the evidence (the check was off)
        it = its["1"]
        metric = it["metric"]
        row |= {
            "fresh_improvement": keys.improvement(metric, it[keys.FRESH_CHANGE]),
            "fresh_se": it.get(keys.FRESH_CHANGE_SE),
            "n_removed": it[keys.N_REMOVED],
            "anomalies_removed": it.get(keys.N_ANOMALIES_REMOVED),
        }
    return row


def fmt(v: Any, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'condition':<13}{'seed':>5}  {'agree':>6}  {'held-out mean ± sd':>22} {'p':>7}  "
        f"{'decision':<9}{'removed (inj.)':>15}  {'fresh improvement':>22}  gate"
    )
    for r in rows:
        removed = f"{r['n_removed']} ({fmt(r['anomalies_removed'], 'd')})"
        fresh = f"{r['fresh_improvement']:+.3g} ± {fmt(r['fresh_se'], '.2g')}"
        if not r["cleansed"]:  # what the refused cleanse would have done
            removed, fresh = f"[{removed}]", f"[{fresh}]"
        print(
            f"{r['condition']:<13}{r['seed']:>5}  {r['agreeing']:>2} of {r['members']:<2} "
            f"{r['held_out_mean']:>+11.3g} ± {r['held_out_spread']:<8.2g} {r['p_value']:>7.3f}  "
            f"{'cleanse' if r['cleansed'] else 'abstain':<9}{removed:>15}  {fresh:>22}  "
            f"{'pass' if r['gate_passed'] else 'FAIL'}"
        )


def rates(rows: list[dict[str, Any]], min_agreement: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cond in ("clean", "contaminated"):
        rs = [r for r in rows if r["condition"] == cond]
        if not rs:
            continue
        cleansed = [r for r in rs if r["cleansed"]]
        fresh = np.array([r["fresh_improvement"] for r in cleansed], dtype=float)
        refused = np.array([r["fresh_improvement"] for r in rs if not r["cleansed"]], dtype=float)
        out[cond] = {
            "seeds": len(rs),
            "gate_pass": sum(r["gate_passed"] for r in rs),
            "cleansed": len(cleansed),
            "abstained": len(rs) - len(cleansed),
            "fresh_improved": int((fresh > 0).sum()),
            "fresh_mean": float(fresh.mean()) if fresh.size else None,
            "refused_improved": int((refused > 0).sum()),
            "refused_mean": float(refused.mean()) if refused.size else None,
        }
        need = [int(np.ceil(min_agreement * r["members"] - 1e-9)) for r in cleansed]
        out[cond]["cleansed_while_disagreeing"] = [
            r["seed"] for r, n in zip(cleansed, need, strict=True) if r["agreeing"] < n
        ]
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="default")
    p.add_argument("--seeds", default="300-309", help="data seeds, '300-309' or '1,2,3'")
    p.add_argument(
        "--clean",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data parameters that turn the corruption off (default for gaussian2d: "
        "anomaly_frac=0.0)",
    )
    p.add_argument("--conditions", default="clean,contaminated", help="which conditions to run")
    p.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help="the job's and the gate's min_agreement judged",
    )
    p.add_argument("--max-harmful-frac", type=float, default=0.05, help="the gate's F")
    p.add_argument("--ensemble", type=int, help="the job's ensemble (default: the preset's)")
    p.add_argument(
        "--job",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="job settings replacing the preset's, e.g. --job last_epochs=1",
    )
    p.add_argument("--jobs", type=int, default=1, help="jobs at once (one CPU thread each)")
    p.add_argument(
        "--executor",
        default="auto",
        choices=EXECUTORS,
        help="ray: each job a Ray task (RAY_ADDRESS, else a local Ray instance; --work must be "
        "on storage every node mounts at the same path); serial: here, --jobs at a time; auto: "
        "ray when RAY_ADDRESS is set",
    )
    p.add_argument("--work", type=Path, default=Path("decisions-work"))
    p.add_argument("--json", type=Path, help="write every number here")
    args = p.parse_args(argv)
    args.clean = key_values(p, args.clean, "--clean") or {"anomaly_frac": 0.0}
    args.job = key_values(p, args.job, "--job")
    args.executor = resolve(args.executor)
    if args.executor == "ray" and args.jobs > 1:
        p.error("--jobs runs jobs in local processes; with --executor ray, Ray schedules them")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = get_preset(args.preset)
    cases = [
        Case(cond, seed, case_preset(base, cond, seed, args), args.work / f"{cond}-{seed}")
        for seed in parse_seeds(args.seeds)
        for cond in args.conditions.split(",")
    ]
    os.environ.setdefault("GANINF_TRACKING", "0")
    if args.executor == "ray":
        benchmarks_on_pythonpath()  # the workers import this module
        list(executor_for("ray").map(run_case, cases))
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            list(pool.map(run_case, cases))
    rows = [analyse(c, args.max_harmful_frac, args.min_agreement) for c in cases]
    print(
        f"preset {args.preset}, seeds {args.seeds}, clean = {args.clean}; min_agreement "
        f"{args.min_agreement:g} (job and gate), t-test level {ALPHA:g}; gate: at most "
        f"{args.max_harmful_frac:g} of N; [..]: the cleanse an abstaining job refused"
    )
    print_rows(rows)
    summary = rates(rows, args.min_agreement)
    for cond, r in summary.items():
        line = (
            f"{cond}: gate passes {r['gate_pass']} of {r['seeds']}; the job cleanses "
            f"{r['cleansed']}, abstains {r['abstained']}"
        )
        if r["cleansed"]:
            line += (
                f"; cleansed: fresh retraining improved {r['fresh_improved']} of "
                f"{r['cleansed']} (mean {r['fresh_mean']:+.3g})"
            )
        if r["abstained"]:
            line += (
                f"; refused cleanses would have improved {r['refused_improved']} of "
                f"{r['abstained']} (mean {r['refused_mean']:+.3g})"
            )
        if r.get("cleansed_while_disagreeing"):
            line += f"; REMOVED WHILE MEMBERS DISAGREED: seeds {r['cleansed_while_disagreeing']}"
        print(line)
    if args.json:
        write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                               "rates": summary})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
