"""Wall time of a job's independent trainings, one after another here vs as Ray tasks.

The trainings are those of the job's first iteration that do not depend on each other: the
retraining seeds on the raw version (`pipeline.fresh_runs`) and the ensemble's other seed
siblings (`trainer.seed_siblings`), job.retrain_seeds + job.ensemble - 1 ... in all, counted
once (the siblings reuse the retraining seeds' runs). Both executors train the same list into
their own directories; the script checks that every run's results are identical, then prints
both wall times and their ratio.

    python benchmarks/fanout.py --preset default                 # local Ray with --ray-cpus
    RAY_ADDRESS=head:6379 python benchmarks/fanout.py --preset default --work /shared/fanout

`--steps` shortens every training (the count of trainings stays the job's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ganinf_mlops.config import get_preset, with_train_options
from ganinf_mlops.data.version import create_raw_version
from ganinf_mlops.executor import SERIAL, executor_for
from ganinf_mlops.pipeline import fresh_runs
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import seed_siblings


def trainings(preset, work: Path, executor) -> tuple[float, list[Path]]:
    """Iteration 0's independent trainings under `work` on `executor`: seconds, the runs."""
    raw = create_raw_version(work / "data" / "v0", preset.dataset, **preset.data_params)
    start = time.perf_counter()
    runs = fresh_runs(raw, preset, work / "runs" / "r0", progress=False, executor=executor)
    members = seed_siblings(runs[0], raw, preset.job.ensemble, progress=False, executor=executor)
    seconds = time.perf_counter() - start
    return seconds, list(dict.fromkeys([*runs, *members]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--steps", type=int, help="steps per training (default: the preset's)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads of the serial trainings, 0 = torch's default (Ray gives each task "
        "one: OMP_NUM_THREADS=1)",
    )
    p.add_argument("--work", type=Path, help="where the runs go (default: a temp dir, removed)")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    os.environ.setdefault("GANINF_TRACKING", "0")
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    if args.steps is not None:
        train = with_train_options(preset.train, steps=args.steps)
        preset = dataclasses.replace(preset, train=train)
    work = args.work or Path(tempfile.mkdtemp(prefix="ganinf-fanout-"))
    try:
        ray = executor_for("ray")
        list(ray.map(str, [0]))  # connect (or start Ray) before the clock starts
        t_serial, serial = trainings(preset, work / "serial", SERIAL)
        t_ray, on_ray = trainings(preset, work / "ray", ray)
        same = all(
            RunDir(a).results() == RunDir(b).results() for a, b in zip(serial, on_ray, strict=True)
        )
        if not same:
            print("error: the Ray runs' results differ from the serial runs'", file=sys.stderr)
            return 1
        import ray as ray_module

        cpus = ray_module.cluster_resources().get("CPU", 0)
        out = {
            "preset": args.preset,
            "steps": preset.train.steps,
            "trainings": len(serial),
            "ray_cpus": cpus,
            "serial_threads": args.threads or "torch default",
            "serial_seconds": t_serial,
            "ray_seconds": t_ray,
            # the training loops alone (each run's train_seconds), summed: what is not overhead
            "serial_train_seconds": sum(RunDir(r).train_seconds for r in serial),
            "ray_train_seconds": sum(RunDir(r).train_seconds for r in on_ray),
            "speedup": t_serial / t_ray,
            "identical_results": same,
        }
        print(
            f"{args.preset}: {len(serial)} trainings of {preset.train.steps} steps; serial "
            f"({args.threads or 'default'} torch threads) {t_serial:.1f} s, Ray ({cpus:g} CPUs) "
            f"{t_ray:.1f} s: x{t_serial / t_ray:.2f}; their training loops "
            f"{out['serial_train_seconds']:.1f} s and {out['ray_train_seconds']:.1f} s in all; "
            "results identical"
        )
        if args.json is not None:
            args.json.write_text(json.dumps(out, indent=2) + "\n")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
