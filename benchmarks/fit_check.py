"""The fit check's margins: how far from its data's reference does each preset end, and a run
that never fitted?

Each case trains on its preset's own data (data seed 0) once per training seed and reads the
run's fit checks (metrics/fit.py): the scored metric's value, the reference (the data's floor,
the real images' IS, the constant predictor's loss) and their ratio. The failing cases are the
user's (400 points of the default's data, 200 steps: what 50 epochs gave before presets stated
steps) and learning rates far too small. A rule's max_ratio is chosen on the tuning seeds
(0, 1) and reported on held-out ones (2, 3).

Usage: python benchmarks/fit_check.py [--cases default,tiny,...] [--seeds 0-3] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.seeds import parse_seeds  # noqa: E402
from ganinf_mlops.config import Preset, get_preset, with_train_options  # noqa: E402
from ganinf_mlops.data.version import create_raw_version  # noqa: E402
from ganinf_mlops.pipeline import with_classifier  # noqa: E402
from ganinf_mlops.train.rundir import RunDir  # noqa: E402
from ganinf_mlops.train.trainer import train  # noqa: E402


def _case(preset: str, data: dict[str, Any] | None = None, **train_options: Any) -> Preset:
    p = get_preset(preset)
    return dataclasses.replace(
        p,
        data_params={**p.data_params, **(data or {})},
        train=with_train_options(p.train, **train_options),
    )


# name -> (preset with changes, expected: fitted?)
CASES: dict[str, tuple[Any, bool]] = {
    "default": (lambda: _case("default"), True),
    "ring-2d": (lambda: _case("ring-2d"), True),
    "linear-2d": (lambda: _case("linear-2d"), True),
    "tiny": (lambda: _case("tiny"), True),
    "paper-2d": (lambda: _case("paper-2d"), True),
    "digits-labelnoise": (lambda: _case("digits-labelnoise"), True),
    "digits-tiny": (lambda: _case("digits-tiny"), True),
    "digits": (lambda: _case("digits"), True),
    # The user's run: 400 points, the default's GAN for 50 epochs of them (200 steps).
    "default-400pts-200steps": (lambda: _case("default", {"n": 400}, steps=200), False),
    "default-lr1e-4": (lambda: _case("default", lr=1e-4), False),
    "labelnoise-lr1e-4": (lambda: _case("digits-labelnoise", lr=1e-4), False),
    "digits-tiny-lr1e-5": (lambda: _case("digits-tiny", lr=1e-5), False),
}


def measure(name: str, seed: int, work: Path) -> dict[str, Any]:
    build, expected = CASES[name]
    p = build()
    p = dataclasses.replace(p, train=dataclasses.replace(p.train, seed=seed))
    d = work / f"{name}-{seed}"
    version = create_raw_version(d / "v0", p.dataset, **p.data_params)
    p = with_classifier(p, version, d, force=False, progress=False)
    start = time.perf_counter()
    run = RunDir(train(version, p.train, p.metric, d / "r0", progress=False))
    check = run.fit(p.job.method)
    assert check is not None, name
    return {
        "case": name,
        "seed": seed,
        "expected_fitted": expected,
        "steps": run.n_steps,
        "seconds": round(time.perf_counter() - start, 1),
        **check.record(),
        "all_checks": run.meta["fit"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            for seed in parse_seeds(args.seeds):
                r = measure(name, seed, Path(tmp))
                rows.append(r)
                print(
                    f"{r['case']:<24} seed {seed}  {r['metric']:>8} {r['value']:>10.4g}  "
                    f"{r['reference']} {r['floor']:.4g}  x{r['ratio']:.3g}  {r['fit']:<8} "
                    f"(expected {'fitted' if r['expected_fitted'] else 'unfitted'}; "
                    f"{r['steps']} steps, {r['seconds']} s); all: "
                    + ", ".join(
                        f"{m} {c['value']:.4g}/{c['floor']:.4g} x{c['ratio']:.3g}"
                        for m, c in r["all_checks"].items()
                    ),
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
