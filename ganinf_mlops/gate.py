"""A data-quality gate: does a dataset version hold too many harmful instances?

Harmful: harmfulness (the predicted improvement of the metric if the instance were removed) above
a threshold. The gate fails when the fraction of harmful instances exceeds `max_harmful_frac`:
    --max-harmful-frac F         harmful = harmfulness > 0, fail if fraction > F
    --threshold X                fail if any instance has harmfulness > X
    both                         harmful = harmfulness > X, fail if fraction > F
    --max-copying C              fail if the run's data-copying statistic C_T (Meehan et al.,
                                 image runs) is below -C: its generator copies training images
Any of them may be combined; the gate passes when every check given passes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.plan import Plan

if TYPE_CHECKING:
    from ganinf_mlops.data.version import DatasetVersion


def check_gate_options(
    threshold: float | None, max_harmful_frac: float | None, max_copying: float | None = None
) -> None:
    """The gate's limits, checked before any scoring; a fraction of 1 never fails on it."""
    if threshold is None and max_harmful_frac is None and max_copying is None:
        raise ConfigError("give --max-harmful-frac, --threshold and/or --max-copying")
    if max_copying is not None and not np.isfinite(max_copying):
        raise ConfigError(f"--max-copying must be finite, got {max_copying}")
    if max_harmful_frac is not None and not 0 <= max_harmful_frac <= 1:
        raise ConfigError(f"--max-harmful-frac must be in [0, 1], got {max_harmful_frac}")
    if threshold is not None and not np.isfinite(threshold):
        raise ConfigError(f"--threshold must be finite, got {threshold}")


def gate_report(
    table: ScoreTable,
    *,
    threshold: float | None,
    max_harmful_frac: float | None,
    top: int = 10,
) -> dict[str, Any]:
    check_gate_options(threshold, max_harmful_frac)
    thr = 0.0 if threshold is None else float(threshold)
    limit = 0.0 if max_harmful_frac is None else float(max_harmful_frac)
    harmful = table.harmfulness > thr
    frac = float(harmful.mean())
    order = table.order()[: min(top, int(harmful.sum()))]
    change = table.predicted_change
    return {
        "passed": bool(frac <= limit),
        "method": table.method,
        "metric": table.metric,
        "dataset_digest": table.dataset_digest,
        "run": table.run,
        "threshold": thr,
        "max_harmful_frac": limit,
        "n_instances": table.n,
        keys.N_HARMFUL: int(harmful.sum()),
        keys.HARMFUL_FRAC: frac,
        # first-order improvement if every harmful instance were removed (influence methods)
        "predicted_improvement": float(table.harmfulness[harmful].sum())
        if table.metric is not None
        else None,
        "top_offending": [
            {
                "id": int(table.ids[i]),
                "harmfulness": float(table.harmfulness[i]),
                keys.PREDICTED_CHANGE: None if np.isnan(change[i]) else float(change[i]),
            }
            for i in order
        ],
    }


def copying_report(results: dict[str, Any], max_copying: float) -> dict[str, Any]:
    """The data-copying check of a run's results: pass when C_T >= -max_copying."""
    if keys.COPYING_CT not in results:
        raise ConfigError(
            f"--max-copying needs the run's {keys.COPYING_CT} (image runs with >= 40 generated "
            "samples); this run has none"
        )
    ct = float(results[keys.COPYING_CT])
    return {"passed": bool(ct >= -max_copying), keys.COPYING_CT: ct, "max_copying": max_copying}


def gate_table(
    version: DatasetVersion,
    run: Path,
    *,
    scores: Path | None,
    method: str,
    seed: int,
    progress: bool,
    on_plan: Callable[[Plan], None] | None = None,
) -> ScoreTable:
    """The scores a gate judges: the table in `scores` (refused unless it is of `version` and
    of `run`), else `run` scored alone with `method` (its plan handed to `on_plan` first)."""
    from ganinf_mlops.influence.methods import score, scoring_plan_of
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.influence.scores import read_scores

    if scores is None:
        options = ScoringOptions(method, seed=seed, progress=progress)
        if on_plan is not None:
            on_plan(scoring_plan_of(run, options))
        return score(run, version, options)
    table = read_scores(scores)
    if table.dataset_digest != version.digest:
        raise ConfigError(f"scores {scores} are not of version {version.path}")
    if table.run is not None and Path(table.run).resolve() != Path(run).resolve():
        raise ConfigError(f"scores {scores} were computed from run {table.run}, not {run}")
    return table


def gate_result(
    table: ScoreTable | None,
    copying: dict[str, Any] | None,
    *,
    threshold: float | None,
    max_harmful_frac: float | None,
    data: Path,
    run: Path,
) -> dict[str, Any]:
    """The gate's report: the harmfulness check of `table` (None: not asked for) and the
    data-copying check (`copying_report`, None: not asked for); it passes when both do."""
    result: dict[str, Any] = {"passed": True}
    if table is not None:
        result = gate_report(table, threshold=threshold, max_harmful_frac=max_harmful_frac)
    if copying is not None:
        result.update(copying=copying, passed=result["passed"] and copying["passed"])
    result.update(data=str(data), run=str(run))
    return result
