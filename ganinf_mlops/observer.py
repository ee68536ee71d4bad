"""What the job tells a tracking backend, and the tracking backends by name.

`Observer` is the engine's side of tracking: the pipeline and the CLI stages call it on events
(prepared, trained, scored, ...); the base class ignores them all. A backend subclasses it and
registers a factory in `OBSERVERS` under its name, `factory(experiment) -> Observer`. "none" (this
silent base) is registered here; "mlflow" by the tracking package (`ganinf_mlops.tracking`), whose
factory imports mlflow only when it is called: nothing here or in the engine imports mlflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganinf_mlops.registry import Registry

if TYPE_CHECKING:
    from ganinf_mlops.config import Preset
    from ganinf_mlops.data.version import DatasetVersion
    from ganinf_mlops.influence.scores import ScoreTable


class Observer:
    """Callbacks of the job; the base class ignores everything (no tracking)."""

    @contextlib.contextmanager
    def stage(
        self, name: str, version: DatasetVersion | None = None, **tags: str
    ) -> Iterator[str | None]:
        """Around one CLI stage (prepare, train, influence, ...); yields a run id or None."""
        yield None

    @contextlib.contextmanager
    def job(self, preset: Preset, workdir: Path) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def iteration(self, index: int, version: DatasetVersion | None, method: str) -> Iterator[None]:
        """Iteration `index` works on `version` (None for iteration 0, which prepares it)."""
        yield

    def prepared(self, version: DatasetVersion) -> None: ...

    def trained(self, run: Path, version: DatasetVersion, role: str) -> None: ...

    def resumed(self, previous: str | None) -> str | None:
        """A training (in the open stage) starts or resumes; `previous` is the tracking run of
        the interrupted one, if it recorded any. Returns this stage's tracking run id (None
        without tracking), recorded for a later resume."""
        return None

    def scored(self, table: ScoreTable, path: Path, version: DatasetVersion, run: Path) -> None: ...

    def validated(self, report: dict[str, Any]) -> None: ...

    def cleansed(self, version: DatasetVersion) -> None: ...

    def gated(self, report: dict[str, Any]) -> None: ...

    def iteration_done(self, row: dict[str, Any]) -> None: ...

    def job_done(self, summary: dict[str, Any]) -> None: ...

    def ui_hint(self) -> str | None:
        """Where a person can look at what was logged (None: nothing was)."""
        return None


# A backend's factory: its observer for the named experiment, checked usable before any work.
ObserverFactory = Callable[[str], Observer]
OBSERVERS: Registry[ObserverFactory] = Registry("tracking backend")
NONE = "none"  # no tracking: the silent base class


@OBSERVERS.register(NONE)
def _silent(experiment: str) -> Observer:
    return Observer()
