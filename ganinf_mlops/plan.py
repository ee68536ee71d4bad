"""The plan of a command that trains: what it will train and compute, said before it starts.

Scoring an ensemble trains seed siblings, validation replays the run per chosen instance, and
a job trains runs every iteration: minutes a user did not expect to spend. Each such command
prints one line built here before any of that work (the CLI on stderr, the API through
logging), with the way to do less. The builders are pure functions of the options and of what
the run recorded (its training time, `keys.TRAIN_SECONDS`); without a recorded training the plan
gives counts only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ganinf_mlops.config import JobOptions


@dataclass(frozen=True)
class Plan:
    """What a command will compute; `str(plan)` is its one line."""

    text: str
    trainings: int = 0  # full trainings: seed siblings, replays, fresh retrainings
    seconds: float | None = None  # their estimated time (None: no recorded training to go by)
    passes: int = 0  # reverse passes
    replays: int = 0  # batched counterfactual replays (leave-one-out, group removals)

    def __str__(self) -> str:
        return f"plan: {self.text}"


def duration(seconds: float) -> str:
    """21 s, 4 min 13 s, 1 h 05 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _known(seconds: float | None) -> bool:
    return seconds is not None and math.isfinite(seconds) and seconds >= 0


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def _passes(n: int) -> str:
    return _plural(n, "reverse pass", "reverse passes")


def _estimate(n: int, each: float | None, whose: str) -> str:
    if not _known(each):
        return ""
    assert each is not None
    total = duration(n * each) if n * each >= 1 else "under 1 s"
    about = "" if total.startswith("under") else "about "
    return f" ({about}{total}, from {whose} {each:.1f} s training)"


def scoring_plan(
    run: str,
    method: str,
    *,
    predicts_change: bool,
    ensemble: int,
    missing: int,
    seconds_each: float | None,
    skip: str = "--ensemble 1",
) -> Plan:
    """Scoring `run` with `method`: an ensemble of `ensemble` runs trains its `missing` seed
    siblings (each about one training of `run`, `seconds_each`), then one reverse pass per
    member; a baseline scores the run alone. `skip` names the option that scores it alone."""
    if not predicts_change:
        return Plan(f"scores {run} with {method} (a baseline, no trajectory); trains nothing")
    passes = _passes(ensemble)
    if missing:
        each = seconds_each if _known(seconds_each) else None
        return Plan(
            f"trains {_plural(missing, 'seed sibling')} of {run}"
            f"{_estimate(missing, each, 'its')} and {passes}; {skip} skips the siblings",
            trainings=missing,
            seconds=None if each is None else missing * each,
            passes=ensemble,
        )
    if ensemble > 1:
        return Plan(
            f"{passes} over {run} and its {ensemble - 1} seed siblings (kept); trains nothing",
            passes=ensemble,
        )
    return Plan(f"1 reverse pass over {run}; trains nothing", passes=1)


def validation_plan(
    run: str,
    *,
    scoring: bool,
    loo: int,
    group_replays: int,
    n_runs: int,
    n_steps: int,
    seconds_each: float | None,
) -> Plan:
    """Validating scores of `run` (of an ensemble of `n_runs`): one reverse pass unless the
    scores are given, then `loo` leave-one-out and `group_replays` group-removal replays per run,
    each a replay of its `n_steps` steps, run batched (so not timed here: a batch costs more
    than one training, `seconds_each`, and less than one per member)."""
    per_run = loo + group_replays
    replays = per_run * n_runs
    parts = ["1 reverse pass"] if scoring else []
    what = f"{loo} leave-one-out"
    if group_replays:
        what += f" and {group_replays} group-removal"
    times = f" of each of its {n_runs} ensemble runs" if n_runs > 1 else ""
    took = f"; one training took {seconds_each:.1f} s" if _known(seconds_each) else ""
    parts.append(f"{what} replays of {run}{times} ({n_steps} steps each, batched{took})")
    hint = "; --loo N (>= 4) and --group 0 replay fewer" if replays else ""
    return Plan(", then ".join(parts) + hint, passes=int(scoring), replays=replays)


def job_plan(
    job: JobOptions,
    *,
    predicts_change: bool,
    group_replays: int,
    seconds_each: float | None = None,
    first: str | None = None,
) -> Plan:
    """The whole job under `job`: the first run's retraining seeds, then per iteration the
    ensemble's seed siblings (those the retraining seeds did not already train), the chunks'
    replays, the replay and the fresh retrainings; a reverse pass per member and chunk; and the
    validation's replays (`group_replays` per run for `job.group_subsets`). At most: the loop
    may stop early. With `first` (the path of the first run, trained) and its `seconds_each`,
    the rest of the job, timed."""
    k = job.ensemble if predicts_change else 1
    siblings = max(0, k - job.retrain_seeds)
    chunk_replays = job.chunks * k if job.chunks > 1 else 0
    per_iteration = siblings + chunk_replays + 1 + job.retrain_seeds
    rest = job.iterations * per_iteration
    trainings = rest if first is not None else job.retrain_seeds + rest
    passes = job.iterations * k * job.chunks if predicts_change else 0
    validating = job.loo > 0 and predicts_change
    replays = job.iterations * k * (job.loo + group_replays) if validating else 0
    per = [
        _plural(siblings, "seed sibling"),
        _plural(1 + chunk_replays, "replay"),
        _plural(job.retrain_seeds, "fresh retraining"),
    ]
    if first is None:
        what = f"{job.retrain_seeds} on the raw data, then per iteration "
        what += ", ".join(p for p in per if not p.startswith("0 "))
        text = f"up to {_plural(job.iterations, 'iteration')}: trains at most {trainings} runs"
        text += f" ({what})"
    else:  # the breakdown was said before: the time now
        text = f"the rest of the job trains at most {trainings} runs"
    each = seconds_each if first is not None and _known(seconds_each) else None
    whose = f"{first}'s"
    text += _estimate(trainings, each, whose)
    if passes:
        text += f", {_passes(passes)}"
    if replays:
        text += f", {replays} leave-one-out and group-removal replays (batched)"
    text += "; --iterations, --ensemble, --retrain-seeds and --loo 0 do less"
    return Plan(
        text,
        trainings=trainings,
        seconds=None if each is None else trainings * each,
        passes=passes,
        replays=replays,
    )
