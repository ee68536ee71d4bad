"""MLflow integration: run logging, figures, the run-context plugin and the DVC dataset source.

Nothing under ganinf_mlops/ outside this package imports mlflow: tracking wraps the math. This
package registers its tracking backends in `observer.OBSERVERS`; a backend's factory imports its
module (and mlflow) only when the backend is chosen, so importing the package stays cheap.
"""

from __future__ import annotations

from ganinf_mlops.observer import OBSERVERS, Observer


@OBSERVERS.register("mlflow")
def _mlflow(experiment: str) -> Observer:
    from ganinf_mlops.tracking.mlflow_runs import MlflowTracker

    return MlflowTracker(experiment=experiment)
