"""A data-quality gate: does a dataset version hold a set of instances worth removing?

The gate asks the question a cleanse would act on: is there a set of at most F of the N instances
(`max_harmful_frac` F) whose removal is predicted to improve the metric beyond its seed noise? The
set is the ensemble's most harmful instances that it predicts to help; its evidence is
cross-validated (`ganinf_mlops.evidence`): each member, held out of the selection, predicts the
set's improvement, and the gate fails only when at least `min_agreement` of the members agree and
their mean predicted improvement is positive. One run's first-order scores cannot tell a harmful
set from seed noise (on the default preset about 40% of any dataset scores positive), so this
check needs an ensemble's scores.

Other checks, each optional; the gate passes when every check given passes:
    --threshold X      fail if any instance has harmfulness > X (any scores, one run's too)
    --max-copying C    fail if the run's data-copying statistic C_T (Meehan et al., image runs)
                       is below -C: its generator copies training images
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganinf_mlops import keys
from ganinf_mlops.data.datasets import round_half_up
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.evidence import evidence
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.plan import Plan

if TYPE_CHECKING:
    from ganinf_mlops.config import JobOptions
    from ganinf_mlops.data.version import DatasetVersion
    from ganinf_mlops.influence.options import ScoringOptions


def check_gate_options(
    threshold: float | None,
    max_harmful_frac: float | None,
    max_copying: float | None = None,
    min_agreement: float | None = None,
) -> None:
    """The gate's limits, checked before any scoring."""
    if threshold is None and max_harmful_frac is None and max_copying is None:
        raise ConfigError("give --max-harmful-frac, --threshold and/or --max-copying")
    if max_copying is not None and not np.isfinite(max_copying):
        raise ConfigError(f"--max-copying must be finite, got {max_copying}")
    if max_harmful_frac is not None and not 0 < max_harmful_frac < 1:
        raise ConfigError(f"--max-harmful-frac must be in (0, 1), got {max_harmful_frac}")
    if threshold is not None and not np.isfinite(threshold):
        raise ConfigError(f"--threshold must be finite, got {threshold}")
    if min_agreement is not None and not 0 < min_agreement <= 1:
        raise ConfigError(f"--min-agreement must be in (0, 1], got {min_agreement}")


def _offending(table: ScoreTable, positions: np.ndarray, top: int) -> list[dict[str, Any]]:
    change = table.predicted_change
    return [
        {
            "id": int(table.ids[i]),
            "harmfulness": float(table.harmfulness[i]),
            keys.PREDICTED_CHANGE: None if np.isnan(change[i]) else float(change[i]),
        }
        for i in positions[:top]
    ]


def _baseline_set(method: str) -> str:
    return (
        f"--max-harmful-frac weighs a set's predicted change against seed noise; {method!r} is a "
        "baseline and predicts none: gate its scores with --threshold"
    )


def set_report(
    table: ScoreTable, max_harmful_frac: float, min_agreement: float, top: int = 10
) -> dict[str, Any]:
    """The set check (module docstring): fails when a set of at most `max_harmful_frac` of the
    instances is predicted, beyond the members' noise, to improve the metric."""
    k = max(1, round_half_up(max_harmful_frac * table.n))
    if table.metric is None:
        raise ConfigError(_baseline_set(table.method))
    ev = evidence(table, k)
    if ev is None:
        raise ConfigError(
            "the gate judges a set against seed noise, which needs an ensemble's scores: score "
            "with --ensemble K (K >= 2), or give --scores of an ensemble"
        )
    found = ev.holds(min_agreement)
    pos = np.flatnonzero(np.isin(table.ids, ev.selected))
    pos = pos[np.argsort(-table.harmfulness[pos], kind="stable")]
    reason = (
        f"removing {ev.selected.size} of {table.n} instances is predicted to improve "
        f"{table.metric} by {ev.predicted:.3g}; held out, {ev.agreeing} of {ev.members} members "
        f"agree (mean {ev.mean:.3g} ± {ev.spread:.3g})"
        if found
        else f"no set of at most {k} of {table.n} instances is predicted to help beyond seed "
        f"noise: {ev.why_not(min_agreement) or 'nothing is predicted to help'}"
    )
    return {
        "passed": not found,
        "reason": reason,
        "max_harmful_frac": float(max_harmful_frac),
        "max_set": k,
        "min_agreement": float(min_agreement),
        "set": {
            "ids": [int(i) for i in ev.selected],
            "n": int(ev.selected.size),
            keys.PREDICTED_IMPROVEMENT: ev.predicted,
            "held_out": list(ev.held_out),
            "held_out_mean": ev.mean,
            "held_out_spread": ev.spread,
            keys.N_AGREEING: ev.agreeing,
            keys.N_MEMBERS: ev.members,
        },
        "top_offending": _offending(table, pos, top),
    }


def threshold_report(table: ScoreTable, threshold: float, top: int = 10) -> dict[str, Any]:
    """The absolute check: fails when any instance's harmfulness exceeds `threshold`."""
    over = table.harmfulness > threshold
    pos = table.order()[: int(over.sum())]
    return {
        "passed": not bool(over.any()),
        "threshold": float(threshold),
        keys.N_HARMFUL: int(over.sum()),
        keys.HARMFUL_FRAC: float(over.mean()),
        "top_offending": _offending(table, pos, top),
    }


def gate_report(
    table: ScoreTable,
    *,
    threshold: float | None,
    max_harmful_frac: float | None,
    min_agreement: float,
    top: int = 10,
) -> dict[str, Any]:
    """The scores' checks: the set check (`max_harmful_frac`) and/or the absolute one
    (`threshold`); passed when every check given passes."""
    check_gate_options(threshold, max_harmful_frac, None, min_agreement)
    result: dict[str, Any] = {
        "method": table.method,
        "metric": table.metric,
        "dataset_digest": table.dataset_digest,
        "run": table.run,
        "n_instances": table.n,
    }
    passed = True
    if max_harmful_frac is not None:
        result |= set_report(table, max_harmful_frac, min_agreement, top)
        passed = result["passed"]
    if threshold is not None:
        absolute = threshold_report(table, threshold, top)
        result["threshold_check"] = absolute
        passed = passed and absolute["passed"]
        if max_harmful_frac is None:
            result["top_offending"] = absolute["top_offending"]
    result["passed"] = passed
    return result


def copying_report(results: dict[str, Any], max_copying: float) -> dict[str, Any]:
    """The data-copying check of a run's results: pass when C_T >= -max_copying."""
    if keys.COPYING_CT not in results:
        raise ConfigError(
            f"--max-copying needs the run's {keys.COPYING_CT} (image runs with >= 40 generated "
            "samples); this run has none"
        )
    ct = float(results[keys.COPYING_CT])
    return {"passed": bool(ct >= -max_copying), keys.COPYING_CT: ct, "max_copying": max_copying}


def gate_options(
    job: JobOptions,
    *,
    method: str | None,
    ensemble: int | None,
    max_harmful_frac: float | None,
    scores_given: bool,
    progress: bool,
    seed: int | None = None,
) -> ScoringOptions:
    """How a gate scores a run with `job`'s settings (`gate_table` without scores): the set
    check (`max_harmful_frac`) over an ensemble of `ensemble` runs (default job.ensemble),
    refused before any scoring when that would be one run or the method is a baseline; the other
    checks score it alone."""
    from ganinf_mlops.influence.methods import METHODS
    from ganinf_mlops.influence.options import ScoringOptions

    options = ScoringOptions.from_job(
        job, method=method or job.method, seed=job.seed if seed is None else seed,
        ensemble=(ensemble or job.ensemble) if max_harmful_frac is not None else 1,
        progress=progress,
    )  # fmt: skip
    if not scores_given and max_harmful_frac is not None:
        if not METHODS.get(options.method).predicts_change:
            raise ConfigError(_baseline_set(options.method))
        if options.ensemble < 2:
            raise ConfigError(
                "--max-harmful-frac judges a set against seed noise: give --ensemble K (K >= 2; "
                "the run's job.ensemble is 1) or --scores of an ensemble"
            )
    return options


def gate_table(
    version: DatasetVersion,
    run: Path,
    *,
    scores: Path | None,
    options: ScoringOptions,
    on_plan: Callable[[Plan], None] | None = None,
) -> ScoreTable:
    """The scores a gate judges: the table in `scores` (refused unless it is of `version` and
    of `run`), else `run` scored with `options` (its seed siblings trained for an ensemble; the
    plan handed to `on_plan` first)."""
    from ganinf_mlops.influence.methods import score_run
    from ganinf_mlops.influence.scores import read_scores

    if scores is None:
        return score_run(run, version, options, on_plan=on_plan)
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
    min_agreement: float,
    data: Path,
    run: Path,
) -> dict[str, Any]:
    """The gate's report: the checks of `table` (`gate_report`; None: not asked for) and the
    data-copying check (`copying_report`, None: not asked for); it passes when all do."""
    result: dict[str, Any] = {"passed": True}
    if table is not None:
        result = gate_report(
            table, threshold=threshold, max_harmful_frac=max_harmful_frac,
            min_agreement=min_agreement,
        )  # fmt: skip
    if copying is not None:
        result.update(copying=copying, passed=result["passed"] and copying["passed"])
    result.update(data=str(data), run=str(run))
    return result
