"""Screenshots of MLflow's UI on a job's store, for the README (docs/ui/*.png).

Usage: .venv/bin/python scripts/ui_screenshots.py [--preset ring-2d] [--work DIR] [--out docs/ui]
Runs `ganinf run` with tracking into DIR/mlflow.db (unless DIR/job exists), serves the store with
`mlflow server`, and captures the runs table, iteration 1's page and the compare view of the
iterations with headless Chromium (Debian's `chromium`), scaled down to small PNGs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "tracking")]  # the tests' server and browser

from browser import UI_HOST, screenshot  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's dependency)
from servers import mlflow_server  # noqa: E402

from ganinf_mlops.tracking import notes  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # ring-2d: a job of two iterations, so the compare view has something to line up
    ap.add_argument("--preset", default="ring-2d")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ganinf-ui"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    ap.add_argument("--width", type=int, default=900, help="width of the saved PNGs")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "GANINF_TRACKING": "1"}
    if not (work / "job").exists():
        ganinf = str(Path(sys.executable).parent / "ganinf")
        subprocess.run(
            [ganinf, "-q", "run", "--preset", args.preset, "--out", "job"], cwd=work, env=env,
            check=True,
        )  # fmt: skip
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("ganinf")
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs([exp.experiment_id])}
    iterations = sorted(k for k in runs if k.startswith("iteration"))
    args.out.mkdir(parents=True, exist_ok=True)
    with mlflow_server(uri, work / "artifacts", ui_host=UI_HOST) as server:
        base = server.replace("127.0.0.1", UI_HOST)
        ids = urllib.parse.quote(str([runs[k] for k in iterations])).replace("%27", "%22")
        pages = {
            "runs_table": base + notes.ui_path(exp.experiment_id),
            "iteration_run": f"{base}/#/experiments/{exp.experiment_id}/runs/"
            f"{runs['iteration 1']}?workflowType=machine_learning",
            "compare": f"{base}/#/compare-runs?runs={ids}&experiments=%5B%22"
            f"{exp.experiment_id}%22%5D&workflowType=machine_learning",
        }
        for name, url in pages.items():
            png = screenshot(url, work / f"{name}.png")
            image = Image.open(png).convert("RGB")
            height = round(image.height * args.width / image.width)
            image.resize((args.width, height), Image.LANCZOS).save(
                args.out / f"{name}.png", optimize=True
            )
            print(f"{args.out / name}.png  <- {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
