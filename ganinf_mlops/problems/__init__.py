"""Problem kinds by name: `PROBLEMS[cfg.problem](cfg, metric, x, x_eval, schedule)`.

See `base.Problem` for the interface; `gan.GanProblem` ("gan") is the GAN of Terashita et al. on
vectors, `image_gan.ImageGanProblem` ("image_gan") the same GAN on images, judged by FID and IS;
`classifier.ClassifierProblem` ("classifier") a classifier, for SGD-influence (Hara et al.).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganinf_mlops.problems.base import Problem, State, StepInputs, Target
from ganinf_mlops.problems.schedule import Schedule
from ganinf_mlops.registry import Registry

PROBLEMS: Registry[type[Problem]] = Registry("problem kind")

from ganinf_mlops.problems import classifier as _classifier  # noqa: E402, F401  ("classifier")
from ganinf_mlops.problems import gan as _gan  # noqa: E402, F401  (registers "gan")
from ganinf_mlops.problems import image_gan as _image_gan  # noqa: E402, F401  ("image_gan")


def create_problem(
    cfg: Any,
    metric: Any,
    x: np.ndarray,
    x_eval: np.ndarray,
    schedule: Schedule,
    y: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
) -> Problem:
    """The problem of a TrainConfig on a dataset version's arrays (labels where it has them)."""
    return PROBLEMS.get(cfg.problem)(cfg, metric, x, x_eval, schedule, y, y_eval)


def problem_of_version(cfg: Any, metric: Any, version: Any, schedule: Schedule) -> Problem:
    """`create_problem` on a `DatasetVersion`'s arrays and labels."""
    return create_problem(
        cfg, metric, version.x, version.x_eval, schedule, version.y, version.y_eval
    )


__all__ = [
    "PROBLEMS",
    "Problem",
    "Schedule",
    "State",
    "StepInputs",
    "Target",
    "create_problem",
    "problem_of_version",
]
