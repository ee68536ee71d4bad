"""MLflow integration: run logging, figures, the run-context plugin and the DVC dataset source.

Nothing under ganinf_mlops/ outside this package imports mlflow: tracking wraps the math.
"""
