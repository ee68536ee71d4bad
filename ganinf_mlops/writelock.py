"""One writer per output: a lock file with the writer's pid next to the output.

Every long writer (a training run and its `.partial` directory, the job's working directory, an
atomically written directory such as a dataset version) holds `.<name>.lock` beside its output
while it writes. A second process that wants the same output is told the truth, "another process
(pid N) is writing OUT", instead of finding a half-written `.partial` and being offered
`--resume`, or racing the first one to the rename.

The lock is an advisory `flock` on the file: the kernel releases it when its holder dies, even by
SIGKILL, so a lock file left by a killed writer (its pid no longer alive) is stale and simply
taken over; the pid in the file only names the live holder in the message. Reentrant within a
process: a writer may call another that locks the same output.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ganinf_mlops.errors import GaninfError

log = logging.getLogger(__name__)

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (fd, depth) of this process


class WriterBusyError(GaninfError):
    """Another live process holds the output's lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"another process (pid {pid})" if pid else "another process"
        super().__init__(f"{who} is writing {path}: wait for it to finish, or write elsewhere")


def lock_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def _recorded_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(lock: Path, path: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _recorded_pid(fd)
            os.close(fd)
            raise WriterBusyError(path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file after we opened it: then our lock is
        # on a file nobody else sees; try again on the current one.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _recorded_pid(fd)
    if previous and previous != os.getpid() and not _alive(previous):
        log.info("taking over the stale lock %s of a killed writer (pid %d)", lock, previous)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the write lock of `path` for the block; WriterBusyError when another live process
    holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path).absolute()
    if lock in _held:
        fd, depth = _held[lock]
        _held[lock] = (fd, depth + 1)
    else:
        _held[lock] = (_acquire(lock, path), 1)
    try:
        yield
    finally:
        fd, depth = _held[lock]
        if depth > 1:
            _held[lock] = (fd, depth - 1)
        else:
            del _held[lock]
            with contextlib.suppress(OSError):
                lock.unlink()  # while still locked: a waiter re-checks the inode
            os.close(fd)
