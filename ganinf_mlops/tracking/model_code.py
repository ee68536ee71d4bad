"""What MLflow runs to load a logged ganinf model (`tracking/models.py`): a model from code, so
loading unpickles nothing; the model's artifacts say which network it serves."""

from mlflow.models import set_model

from ganinf_mlops.tracking.models import GaninfModel

set_model(GaninfModel())
