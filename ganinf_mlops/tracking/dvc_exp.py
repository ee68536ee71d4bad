"""One MLflow parent run per DVC experiment (`dvc exp run`, queued or not).

DVC runs each stage of an experiment as its own process, with DVC_EXP_NAME and
DVC_EXP_BASELINE_REV in the environment. Each stage's run is nested under the experiment's parent
run, found by those two tags (created by the first stage, with params.yaml as its params); after
each stage the parent takes the stage's latest metrics as `<stage>/<metric>` and the stage's end
status and time, so MLflow compares experiments row by row as `dvc exp show` does.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from ganinf_mlops.tracking import tags as T

EXP_NAME = "DVC_EXP_NAME"
EXP_BASELINE = "DVC_EXP_BASELINE_REV"
STAGE = "DVC_STAGE"
_METRIC_NAME = re.compile(r"[^\w\-. /]")  # characters MLflow refuses in a metric name


def experiment() -> tuple[str, str] | None:
    """(name, baseline rev) of the DVC experiment this process runs in, or None."""
    name, base = os.environ.get(EXP_NAME), os.environ.get(EXP_BASELINE)
    return (name, base or "") if name else None


def nest(client: MlflowClient, experiment_id: str) -> tuple[str | None, dict[str, str]]:
    """(parent run id, tags for the stage's run) in a DVC experiment; (None, {}) outside one, or
    inside `mlflow run`, whose own run is the parent."""
    exp = experiment()
    if exp is None or os.environ.get("MLFLOW_RUN_ID"):
        return None, {}
    name, base = exp
    # The stage runs in the experiment's workspace, whose params.yaml has its -S values.
    parent = parent_run(client, experiment_id, name, base, params_of(Path.cwd()))
    child = {"mlflow.parentRunId": parent, T.DVC_EXPERIMENT: name, T.DVC_BASELINE: base}
    if os.environ.get(STAGE):
        child[T.DVC_STAGE] = os.environ[STAGE]
    return parent, child


def parent_run(
    client: MlflowClient, experiment_id: str, name: str, base: str, params: dict[str, Any]
) -> str:
    """The run id of the parent run of DVC experiment `name` started from `base`, created with
    `params` by its first stage."""
    key = experiment_key(name, base)
    found = client.search_runs(
        [experiment_id],
        f"tags.`{T.DVC_EXPERIMENT_KEY}` = '{key}'",
        max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"dvc exp {name}",
        tags={
            T.STAGE: "dvc-experiment", T.DVC_EXPERIMENT: name, T.DVC_BASELINE: base,
            T.DVC_EXPERIMENT_KEY: key,
        },
    )  # fmt: skip
    items = sorted(params.items())
    for i in range(0, len(items), 100):  # log_batch takes at most 100 params
        client.log_batch(
            run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in items[i : i + 100]]
        )
    return run.info.run_id


def stage_done(client: MlflowClient, parent: str, child: str, status: str) -> None:
    """Carry a finished stage's latest metrics and its status to the parent run."""
    run = client.get_run(child)
    stage = _METRIC_NAME.sub(".", os.environ.get(STAGE) or run.info.run_name or "stage")
    ts = run.info.end_time or run.info.start_time
    metrics = [Metric(f"{stage}/{k}", v, ts, 0) for k, v in sorted(run.data.metrics.items())]
    for i in range(0, len(metrics), 1000):
        client.log_batch(parent, metrics=metrics[i : i + 1000])
    client.log_batch(parent, tags=[RunTag(T.DVC_LAST_STAGE, stage)])
    client.set_terminated(parent, status)


def params_of(root: Path) -> dict[str, Any]:
    """params.yaml at `root` flattened to dotted keys ({} when absent or unreadable)."""
    from ganinf_mlops.errors import GaninfError
    from ganinf_mlops.params import load_params, preset_to_params
    from ganinf_mlops.tracking.run_log import flatten

    try:
        return flatten(preset_to_params(load_params(root / "params.yaml")))
    except (GaninfError, OSError):
        return {}


def experiment_key(name: str, base: str) -> str:
    """A filter-safe key of a DVC experiment (hex only, whatever its name holds)."""
    return hashlib.sha256(f"{name}\0{base}".encode()).hexdigest()
