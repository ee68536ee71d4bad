"""Tracking backends by name: the registry, how the CLI chooses one, and no mlflow in the engine."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ganinf_mlops.tracking  # noqa: F401  (registers "mlflow")
from ganinf_mlops.cli.common import make_observer
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.observer import OBSERVERS, Observer


def test_backends_by_name_and_unknown_refused() -> None:
    assert OBSERVERS.names() == ["mlflow", "none"]
    assert type(OBSERVERS.get("none")("ganinf")) is Observer
    with pytest.raises(
        ConfigError, match=r"^unknown tracking backend 'wandb'; choose from: mlflow, none$"
    ):
        OBSERVERS.get("wandb")


class _Fake(Observer):
    def __init__(self, experiment: str) -> None:
        self.experiment = experiment


@pytest.mark.parametrize(
    ("flag", "env", "chosen"),
    [
        (None, None, "mlflow"),  # on by default
        (None, "1", "mlflow"),
        (None, "yes", "mlflow"),  # any value but 0 turns tracking on, as before the registry
        (None, "0", "none"),
        (None, "none", "none"),
        (None, "fake", "fake"),  # a registered backend by name
        (False, "1", "none"),  # the flag wins over the environment
        (False, "fake", "none"),
        (True, "0", "mlflow"),
        (True, "none", "mlflow"),
        (True, "fake", "fake"),
    ],
)
def test_make_observer_chooses_the_backend(monkeypatch, flag, env, chosen) -> None:
    # Stand-ins by name: choosing must not construct (or import) the real MLflow tracker.
    made: list[str] = []
    for name in ("mlflow", "fake"):
        monkeypatch.setitem(OBSERVERS._items, name, lambda e, n=name: made.append(n) or _Fake(e))
    if env is None:
        monkeypatch.delenv("GANINF_TRACKING", raising=False)
    else:
        monkeypatch.setenv("GANINF_TRACKING", env)
    obs = make_observer(flag, "exp")
    if chosen == "none":
        assert type(obs) is Observer and made == []
    else:
        assert made == [chosen] and obs.experiment == "exp"


def test_engine_and_cli_import_no_mlflow() -> None:
    """The job, its chunks, the observers and the CLI (without tracking) never load mlflow."""
    code = (
        "import sys\n"
        "import ganinf_mlops.pipeline, ganinf_mlops.chunks, ganinf_mlops.tracking\n"
        "from ganinf_mlops.cli import main\n"
        "from ganinf_mlops.cli.common import make_observer\n"
        "make_observer(False, 'ganinf')\n"
        "assert 'mlflow' not in sys.modules, sorted(m for m in sys.modules if 'mlflow' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
