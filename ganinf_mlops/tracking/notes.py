"""What the MLflow UI shows in words: run descriptions (`mlflow.note.content`, markdown), the
experiment's glossary of metric names and directions, version labels and the score table.

Pure functions of summaries, versions and score tables; `mlflow_runs` logs what they return.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.metrics.specs import direction_phrase, registered
from ganinf_mlops.report import headline_text
from ganinf_mlops.tracking import tags

NOTE = "mlflow.note.content"  # MLflow's description field, of runs and of experiments

# The glossary's terms that are not run metrics (those come from their registrations).
OTHER_TERMS: dict[str, tuple[str, str]] = {
    keys.HEADLINE: ("tag", "the job's scored metric (tag ganinf.headline_metric), mean over "
                    "training seeds: the one number of every job and iteration"),
    keys.IMPROVEMENT: ("higher", "the headline's change from the previous iteration, signed so "
                       "that > 0 is better whatever the metric"),
    keys.TOTAL_IMPROVEMENT: ("higher", "the same from the raw data to the last iteration"),
    keys.PREDICTED_CHANGE: ("sign", "first-order change of the metric the cleanse predicted"),
    keys.ACTUAL_CHANGE: ("sign", "the change under counterfactual replay (same order, seeds)"),
    keys.FRESH_CHANGE: ("sign", "the change under fresh retraining (what production gets)"),
    keys.N_REMOVED: ("count", "instances removed by this iteration's cleanse"),
    keys.N_AGREEING: ("count", "ensemble members that, held out of the choice, predict it helps"),
    keys.KENDALL_TAU: ("higher", "rank agreement of the estimate with leave-one-out retraining"),
}  # fmt: skip


def glossary_terms() -> dict[str, tuple[str, str]]:
    """{name as MLflow shows it: (which value is better, meaning)}: every registered metric
    (in report column order, then by name), then the other terms."""
    order = {k: i for i, k in enumerate(keys.RUN_METRIC_ORDER)}
    metrics = sorted(registered().items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return {keys.tracking_name(n): (m.better, m.meaning) for n, m in metrics} | OTHER_TERMS


def glossary() -> str:
    """The experiment description: how to read the runs and what each metric means."""
    rows = "\n".join(
        f"| `{name}` | {better} | {meaning} |"
        for name, (better, meaning) in glossary_terms().items()
    )
    return (
        "ganinf: influence-based data cleansing. A **job** run holds one nested run per "
        "iteration: iteration 0 trains on the raw version, iteration i scores the instances of "
        "version i-1, removes the most harmful into version i and retrains. Summary metrics of "
        "iteration i are logged at step i; `ganinf.input_version` / `ganinf.output_version` "
        "name the versions (short digests).\n\n"
        "| metric | better | meaning |\n|---|---|---|\n" + rows
    )


# The runs table's default columns, as an MLflow "shared view" stored in an experiment tag:
# open the experiment with `ui_path` to see them (MLflow has no other server-side default).
VIEW_KEY = "ganinf"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_METRICS = (
    keys.HEADLINE, keys.HEADLINE_STD, keys.IMPROVEMENT, keys.TOTAL_IMPROVEMENT, keys.N_INSTANCES,
    keys.N_REMOVED,
)  # fmt: skip
VIEW_TAGS = (tags.HEADLINE_METRIC, tags.VERDICT)


def view_state() -> str:
    """The shared view: the dataset column and the headline metrics of every problem kind."""
    columns = [
        "attributes.`Dataset`",
        *(f"tags.`{t}`" for t in VIEW_TAGS),
        *(f"metrics.`{m}`" for m in VIEW_METRICS),
    ]
    return json.dumps({"selectedColumns": columns})


def ui_path(experiment_id: str, shared_view: bool = True) -> str:
    """The UI route of an experiment's runs table (not MLflow 3's GenAI overview), with our
    default columns; append it to the server's address."""
    view = f"&viewStateShareKey={VIEW_KEY}" if shared_view else ""
    return f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning{view}"


def version_label(version: DatasetVersion) -> str:
    """`v1 (07f90fab65c1)`: the directory name and a short digest, matched by eye in the UI."""
    return f"{version.path.name} ({version.digest[:12]})"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:+.4g}"


def headline_line(row: dict[str, Any], metric: str) -> str:
    """`- headline `fd` (lower is better): 0.155 ± 0.021 (3 seeds)`."""
    return (
        f"- headline `{keys.tracking_name(metric)}` ({direction_phrase(metric)}): "
        f"{headline_text(row)}"
    )


def iteration_note(
    row: dict[str, Any],
    previous: dict[str, Any] | None,
    before: DatasetVersion,
    after: DatasetVersion,
    helped: int,
) -> str:
    """An iteration run's description: versions, removals, the headline before and after with
    the ± its verdict rests on, and the scored metric's predicted and replayed change."""
    metric = row["metric"]
    anomalies = ""
    if keys.N_ANOMALIES in row:
        total = row[keys.N_ANOMALIES] + row[keys.N_ANOMALIES_REMOVED]
        anomalies = f" ({row[keys.N_ANOMALIES_REMOVED]} of {total} injected anomalies)"
    lines = [
        f"**Iteration {row[keys.ITERATION]}**: {version_label(before)} → {version_label(after)}",
        f"- removed {row[keys.N_REMOVED]} of {before.n} instances{anomalies} by "
        f"`{row.get('method', metric)}`",
    ]
    if previous is not None and keys.HEADLINE in previous:
        spread = previous.get(keys.HEADLINE_STD)
        rests = (
            f"change {row[keys.IMPROVEMENT]:+.3g} as improvement, seed spread ±{spread:.2g}"
            if spread is not None
            else f"change {row[keys.IMPROVEMENT]:+.3g} as improvement, one seed: no spread"
        )
        lines.append(
            f"- headline `{keys.tracking_name(metric)}` ({direction_phrase(metric)}): "
            f"{headline_text(previous)} → {headline_text(row)}: **{row[keys.VERDICT]}** under "
            f"fresh retraining ({rests})"
        )
    lines.append(
        f"- scored `{keys.tracking_name(metric)}`: predicted change "
        f"{_fmt(row.get(keys.PREDICTED_CHANGE))}, replay {_fmt(row.get(keys.ACTUAL_CHANGE))}"
    )
    if helped:
        lines.append(
            f"- ⚠ {helped} removed instances were predicted to *help* the metric "
            "(harmfulness ≤ 0): the removal budget exceeded the harmful ones"
        )
    return "\n".join(lines)


def lineage_text(summary: dict[str, Any]) -> str:
    """`v0 (8e3d98f5c1a2) → v1 (440d857ece83)`: the chain of versions a job made."""
    its = summary["iterations"]
    steps = [f"v0 ({summary['job']['raw_digest'][:12]})"] if "raw_digest" in summary["job"] else []
    for k in sorted(its, key=int)[1:]:
        digest = its[k].get("cleansed_digest")
        if digest:
            steps.append(f"v{k} ({digest[:12]})")
    return " → ".join(steps)


def job_note(summary: dict[str, Any], verdict_line: str) -> str:
    """The job run's description: the verdict, the lineage, then one line per iteration with
    its headline."""
    its = summary["iterations"]
    lines = [f"**{verdict_line}**", ""]
    metric = summary.get(keys.HEADLINE_METRIC)
    if metric is not None:
        lines.append(
            f"headline `{keys.tracking_name(metric)}` ({direction_phrase(metric)}), mean over "
            "training seeds ± their spread"
        )
    lineage = lineage_text(summary)
    if lineage:
        lines.append(f"data: {lineage}")
    lines.append("")
    for k in sorted(its, key=int):
        row = its[k]
        what = "raw data" if k == "0" else f"removed {row.get(keys.N_REMOVED, 0)}"
        shown = f", headline {headline_text(row)}" if keys.HEADLINE in row else ""
        state = f": {row[keys.VERDICT]}" if row.get(keys.VERDICT) else ""
        lines.append(f"- iteration {k}: {what}, {row[keys.N_INSTANCES]} instances{shown}{state}")
    return "\n".join(lines)


def score_columns(table: ScoreTable, version: DatasetVersion) -> dict[str, list[Any]]:
    """The score table as the UI shows it: sorted by rank, the instances' coordinates (vectors
    of up to 3 dimensions) and anomaly flag, and only columns that say something new."""
    harm, change = table.aligned_to(version.ids)
    order = np.argsort(-harm, kind="stable")
    cols: dict[str, list[Any]] = {
        keys.RANK: list(range(1, len(order) + 1)),
        keys.ID: version.ids[order].tolist(),
        keys.HARMFULNESS: harm[order].tolist(),
    }
    # predicted_change is +-harmfulness for an influence method and NaN for a baseline.
    if not (np.isnan(change).all() or np.allclose(np.abs(change), np.abs(harm))):
        cols[keys.PREDICTED_CHANGE] = change[order].tolist()
    if version.x.ndim == 2 and version.x.shape[1] <= 3:
        for d in range(version.x.shape[1]):
            cols[f"x{d}"] = version.x[order, d].tolist()
    mask = version.anomaly_mask()
    if mask is not None:
        cols["injected_anomaly"] = mask[order].tolist()
    return cols
