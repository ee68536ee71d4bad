"""Load: N cleanse loops at once against one MLflow tracking server on PostgreSQL and S3.

Starts a throwaway PostgreSQL cluster, an S3 API (moto_server) for the artifacts and
`mlflow server` on loopback (tests/tracking/servers.py),
runs N `ganinf loop` processes concurrently (tiny preset by default), each in its own directory,
then reads the server back: every run FINISHED, every iteration run with its trajectory artifacts
and dataset inputs, and each input's source naming that loop's own directory. Prints runs
finished / expected and the wall time.

Usage: python benchmarks/load.py [--loops 4] [--preset tiny] [--iterations 1]
                                 [--artifacts s3|local] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "tracking"))

import contextlib  # noqa: E402

from servers import mlflow_server, moto_s3, postgres  # noqa: E402

from ganinf_mlops.tracking.datasets import input_source  # noqa: E402

GANINF = str(Path(sys.executable).parent / "ganinf")


def run_loops(uri: str, work: Path, loops: int, preset: str, iterations: int) -> dict[str, Any]:
    """Start the loops together, wait for all; return what the server holds about them."""
    env = {**os.environ, "GANINF_TRACKING": "1", "MLFLOW_TRACKING_URI": uri}
    start = time.monotonic()
    procs = []
    for i in range(loops):
        d = work / f"loop{i}"
        d.mkdir(parents=True)
        cmd = [GANINF, "-q", "loop", "--preset", preset, "--iterations", str(iterations),
               "--loo", "0", "--out", "job", "--experiment", "load"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=d, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True))  # fmt: skip
    errors = [p.communicate()[1] for p in procs]
    errors = [e for p, e in zip(procs, errors, strict=True) if p.returncode]
    wall = time.monotonic() - start
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("load")
    runs = client.search_runs([exp.experiment_id]) if exp else []
    others = {
        e.name: [(r.info.run_name, r.data.tags.get("ganinf.stage")) for r in
                 client.search_runs([e.experiment_id])]
        for e in client.search_experiments()
        if e.name != "load"
    }
    expected = loops * (1 + 1 + iterations)  # job, iteration 0, iterations
    finished = [r for r in runs if r.info.status == "FINISHED"]
    problems = []
    for r in runs:
        if r.data.tags.get("ganinf.stage") != "iteration":
            continue
        arts = {a.path for a in client.list_artifacts(r.info.run_id)}
        if "trajectory" not in arts:
            problems.append(f"{r.info.run_name}: no trajectory artifacts")
        # Each run's own directory (a dataset entry keeps the first run's source: loops on the
        # same data share one entry per name and digest).
        sources = [input_source(d).to_dict()["uri"] for d in r.inputs.dataset_inputs]
        owners = {Path(s).parts[len(work.parts)] for s in sources if s.startswith(str(work))}
        if len(owners) != 1:
            problems.append(f"{r.info.run_name}: inputs from loops {sorted(owners)}")
    return {
        "loops": loops,
        "exit_codes": [p.returncode for p in procs],
        "errors": ["\n".join(e.strip().splitlines()[-12:]) for e in errors if e.strip()],
        "runs_expected": expected,
        "runs_finished": len(finished),
        "runs_total": len(runs),
        "problems": problems,
        "statuses": sorted(r.info.status for r in runs),
        "runs_in_other_experiments": {k: v for k, v in others.items() if v},
        "wall_seconds": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loops", type=int, default=4)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument(
        "--artifacts", choices=["s3", "local"], default="s3",
        help="where the server keeps artifacts: S3 (moto on loopback) or a local directory",
    )  # fmt: skip
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp).resolve()
        backend = stack.enter_context(postgres())
        if args.artifacts == "s3":
            endpoint = stack.enter_context(moto_s3())
            server = mlflow_server(backend, "s3://mlflow/load", s3_endpoint=endpoint, log_dir=work)
        else:
            server = mlflow_server(backend, work / "artifacts")
        uri = stack.enter_context(server)
        result = run_loops(uri, work / "loops", args.loops, args.preset, args.iterations)
    store = "PostgreSQL + S3" if args.artifacts == "s3" else "PostgreSQL"
    print(
        f"{result['loops']} concurrent loops ({args.preset}, {args.iterations} iteration(s)) "
        f"against MLflow on {store}: runs finished {result['runs_finished']} / expected "
        f"{result['runs_expected']}, exit codes {result['exit_codes']}, wall time "
        f"{result['wall_seconds']:.1f} s"
    )
    for p in result["problems"] + result["errors"]:
        print("  problem:", p)
    if result["runs_finished"] != result["runs_expected"]:
        print("  statuses:", result["statuses"], "elsewhere:", result["runs_in_other_experiments"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["runs_finished"] == result["runs_expected"] and not result["problems"]
    return 0 if ok and not any(result["exit_codes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
