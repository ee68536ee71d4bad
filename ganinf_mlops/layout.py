"""The job's working directory: the one owner of its directory and file names.

    ROOT/data/v0, v1, ...                  dataset versions (v0 raw; v_i cleansed from v_{i-1})
    ROOT/runs/r0, r1, ...                  training runs: r0 on v0, r_i fresh retraining on v_i
                                           (other training seeds beside them: r1-seed1, ...)
    ROOT/runs/replay1, ...                 counterfactual retraining: r_{i-1}'s schedule on v_i
    ROOT/scores/it<i>_<method>.csv         scores of r_{i-1} used to cleanse v_{i-1} into v_i
    ROOT/reports/validate_it<i>.json       leave-one-out validation of those scores
    ROOT/reports/chunks_it<i>.json         per chunk of a chunked cleanse (job.chunks > 1) ...
    ROOT/chunks/it<i>/v_c<c>, scores_c<c>.csv, replay_c<c>
                                           ... and its intermediate versions, scores and replays
    ROOT/config.json                       the job's configuration (what --resume must match)
    ROOT/summary.json                      `report.summarize` of the chain, plus the job's settings

Runs that differ from a run only by training seed (fresh retrainings, ensemble members, their
chunk replays) are named by `train.trainer.sibling_path` next to it: <run>-seed<r>.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobLayout:
    """Where the job rooted at `root` keeps each of its outputs (nothing is created here)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def version(self, i: int) -> Path:
        """Dataset version v<i> (v0: the raw data)."""
        return self.root / "data" / f"v{i}"

    def run(self, i: int) -> Path:
        """The fresh training run on v<i> (its first training seed)."""
        return self.root / "runs" / f"r{i}"

    def replay(self, i: int) -> Path:
        """The counterfactual retraining of iteration i: r<i-1>'s schedule on v<i>."""
        return self.root / "runs" / f"replay{i}"

    def scores(self, i: int, method: str) -> Path:
        """The score table iteration i cleanses by."""
        return self.root / "scores" / f"it{i}_{method}.csv"

    def validation(self, i: int) -> Path:
        return self.root / "reports" / f"validate_it{i}.json"

    def chunk_report(self, i: int) -> Path:
        return self.root / "reports" / f"chunks_it{i}.json"

    def chunks(self, i: int) -> Path:
        """What the chunks of iteration i leave for inspection."""
        return self.root / "chunks" / f"it{i}"

    def chunk_version(self, i: int, c: int) -> Path:
        return self.chunks(i) / f"v_c{c}"

    def chunk_scores(self, i: int, c: int) -> Path:
        return self.chunks(i) / f"scores_c{c}.csv"

    def chunk_replay(self, i: int, c: int) -> Path:
        return self.chunks(i) / f"replay_c{c}"
