"""Screenshots of MLflow's UI on a store of two jobs, for the docs (docs/ui/*.png).

Usage: .venv/bin/python scripts/ui_screenshots.py [--presets default,digits-tiny] [--work DIR]
       [--out docs/ui]
Runs `ganinf run` for each preset with tracking into DIR/mlflow.db (unless DIR/job-<preset>
exists), serves the store with `mlflow server`, and captures with headless Chromium (Debian's
`chromium`), scaled down to small PNGs: the runs table, the first job's run page and its
iteration 1, the compare view of the two jobs (different scored metrics, lined up on the
headline), and the first job's registered model.
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
    # two jobs whose scored metrics differ (fd on 2D points, FID on images): Compare lines them
    # up on the headline
    ap.add_argument("--presets", default="default,digits-tiny")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ganinf-ui"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    ap.add_argument("--width", type=int, default=900, help="width of the saved PNGs")
    args = ap.parse_args()
    presets = args.presets.split(",")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "GANINF_TRACKING": "1"}
    for preset in presets:
        if not (work / f"job-{preset}").exists():
            ganinf = str(Path(sys.executable).parent / "ganinf")
            subprocess.run(
                [ganinf, "-q", "run", "--preset", preset, "--out", f"job-{preset}"], cwd=work,
                env=env, check=True,
            )  # fmt: skip
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("ganinf")
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs([exp.experiment_id])}
    jobs = [next(v for k, v in runs.items() if k.startswith(f"{p} ") and " · job " in k)
            for p in presets]  # fmt: skip
    first_it1 = next(v for k, v in runs.items() if k.startswith(f"{presets[0]} ") and " · it1" in k)
    run_page = f"/#/experiments/{exp.experiment_id}/runs/{{}}?workflowType=machine_learning"
    args.out.mkdir(parents=True, exist_ok=True)
    with mlflow_server(uri, work / "artifacts", ui_host=UI_HOST) as server:
        base = server.replace("127.0.0.1", UI_HOST)
        ids = urllib.parse.quote(str(jobs)).replace("%27", "%22")
        pages = {
            "runs_table": base + notes.ui_path(exp.experiment_id),
            "job_run": base + run_page.format(jobs[0]),
            "iteration_run": base + run_page.format(first_it1),
            "compare": f"{base}/#/compare-runs?runs={ids}&experiments=%5B%22"
            f"{exp.experiment_id}%22%5D&workflowType=machine_learning",
        }
        models = client.search_registered_models()
        if models:
            pages["registered_model"] = f"{base}/#/models/{urllib.parse.quote(models[0].name)}"
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
