"""Find the MLflow runs that produced and used a dataset version (by digest tags)."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import ViewType

from ganinf_mlops.tracking import tags


def experiment_ids(client: MlflowClient) -> list[str]:
    """Every experiment of the store, deleted ones included (their runs still hold lineage)."""
    return [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]


def runs_for_digest(client: MlflowClient, digest: str) -> dict[str, list[str]]:
    """{"produced_by": run ids that wrote the version, "used_by": run ids that read it}."""
    experiments = experiment_ids(client)
    if not experiments:
        return {"produced_by": [], "used_by": []}

    def ids(tag: str) -> list[str]:
        runs = client.search_runs(
            experiments,
            filter_string=f"tags.`{tag}` = '{digest}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
        )
        return sorted(r.info.run_id for r in runs)

    return {"produced_by": ids(tags.OUTPUT_DIGEST), "used_by": ids(tags.DATASET_DIGEST)}
