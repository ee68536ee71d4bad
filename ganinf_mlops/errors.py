"""Our exception types: public entry points raise them, the CLI prints one line and exits 2."""

from __future__ import annotations


class GaninfError(Exception):
    """Base class for every error a user can cause with bad input or configuration."""


class DataError(GaninfError):
    """A dataset file or version is missing, corrupt, or has invalid content."""


class DigestMismatchError(DataError):
    """Content does not match its digest (tampered data, or a run from another data version)."""

    def __init__(
        self, what: str, expected: str, actual: str, mismatch: str = "digest mismatch"
    ) -> None:
        super().__init__(f"{what}: {mismatch} (expected {expected[:16]}…, found {actual[:16]}…)")
        self.expected = expected
        self.actual = actual


class TrajectoryError(GaninfError):
    """A run directory or trajectory is missing, corrupt or inconsistent."""


class ConfigError(GaninfError):
    """Invalid parameters: unknown names, out-of-range values, missing keys."""


class OutputExistsError(GaninfError):
    """The output path exists and overwriting was not requested."""

    def __init__(self, path: object) -> None:
        super().__init__(f"output {path} already exists (use --force to replace it)")


class TrackingError(GaninfError):
    """The MLflow tracking store cannot be reached or used."""


class NothingToRemoveError(GaninfError):
    """A cleanse that removes nothing: the selection policy keeps no instance (none is predicted
    to help), or too few ensemble members agree that the selection helps (`agreement`)."""

    def __init__(self, message: str, agreement: object | None = None) -> None:
        super().__init__(message)
        self.agreement = agreement


class UnfittedError(NothingToRemoveError):
    """A cleanse refused because the model whose scores would choose the removals did not fit
    its data (`metrics.fit`): its influence ranks noise. `job.allow_unfitted` overrides it."""

    def __init__(self, message: str, check: object | None = None) -> None:
        super().__init__(message)
        self.check = check


class Terminated(BaseException):  # noqa: N818 (like KeyboardInterrupt: not an Exception)
    """SIGTERM arrived: unwind cleanly (temp files removed, MLflow runs marked KILLED)."""
