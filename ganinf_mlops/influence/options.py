"""`ScoringOptions`: how instances are scored, one value passed whole through `methods.score*`.

Each field's `metadata["help"]` is its one help text: the CLI derives its options from it
(`cli/options.py`), as kronfluence's `ScoreArguments` does. `from_job` builds the options a job
(`JobOptions`: params.yaml, `ganinf run`/`loop`, the DVC stages) scores with, so the job path and
`ganinf influence` start from the same values; `job_for_run` picks the job a run is scored with
(the one it was trained under, unless a config is given).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ganinf_mlops import keys
from ganinf_mlops.config import JobOptions, check_seed
from ganinf_mlops.limits import check_max

if TYPE_CHECKING:
    from ganinf_mlops.train.rundir import RunDir

_JOB = {f.name: f.metadata for f in dataclasses.fields(JobOptions)}  # help said once


@dataclass(frozen=True)
class ScoringOptions:
    """What `score`, `score_run`, `score_runs` and `score_ensemble` do with a run."""

    method: str = field(default=keys.ALL, metadata=_JOB["method"])
    ensemble: int = field(
        default=1,
        metadata={
            "help": "Average the influence over K runs that differ only in the training seed: "
            "RUN and RUN-seed1 .. RUN-seed<K-1> beside it, trained now where missing.",
            "min": 1,
        },
    )
    last_epochs: int | None = field(default=None, metadata=_JOB["last_epochs"])
    average_order: bool = field(default=False, metadata=_JOB["average_order"])
    storage_efficient: bool = field(
        default=False,
        metadata={
            "help": "Suzuki et al.'s estimate: the last epoch (or --last-epochs K) linearised at "
            "the final state; needs no checkpoint history (runs trained with train.storage: "
            "final).",
            "flag": "--storage-efficient",
        },
    )
    checkpointed: bool = field(
        default=True,
        metadata={
            "help": "Replay between checkpoints, one segment in memory at a time; "
            "--no-checkpointing holds the whole run in memory instead.",
            "flag": "--no-checkpointing",
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the baselines."})
    progress: bool = field(default=True, metadata={"help": "Progress bars on stderr."})

    def __post_init__(self) -> None:
        check_max("ensemble", self.ensemble)
        check_seed(self.seed)

    @classmethod
    def from_job(cls, job: JobOptions, **changes: Any) -> ScoringOptions:
        """The options a job scores with (its method, ensemble, last_epochs, average_order and
        seed), with `changes` replacing fields."""
        job_options = cls(
            method=job.method,
            ensemble=job.ensemble,
            last_epochs=job.last_epochs,
            average_order=job.average_order,
            seed=job.seed,
        )
        return dataclasses.replace(job_options, **changes)


def job_for_run(
    run: RunDir, given: JobOptions | None, fallback: JobOptions, fallback_name: str
) -> tuple[JobOptions, str | None]:
    """The job options `run` is scored, validated and gated with, and a note when they are a
    guess: `given` (a config asked for: --preset, --params), else the ones the run recorded when
    it was trained (its method, ensemble, last_epochs, ...: `rundir.JOB_FIELDS`), else, for a
    run trained before runs recorded them, `fallback` (named `fallback_name` in the note)."""
    if given is not None:
        return given, None
    if run.recorded_job is not None:
        return run.recorded_job, None
    return fallback, (
        f"note: {run.path} records no job settings (trained before ganinf recorded them): "
        f"using {fallback_name}'s; --preset or --params chooses others"
    )
