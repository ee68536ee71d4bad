"""Atomic file and directory writes: readers see the old content or the new, never half of it."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.errors import ConfigError, DataError, GaninfError, OutputExistsError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: Path, base: int) -> None:
    # mkstemp/mkdtemp create 0600/0700; give the result the permissions a plain open() would.
    os.chmod(path, base & ~_umask())


def _temp_prefix(path: Path) -> str:
    # The writer's pid in the name: a temp left by a killed process can be told from one that
    # another live process is still writing.
    return f".{path.name}.pid{os.getpid()}."


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files and directories of `path` left by writers that no longer run
    (killed by SIGKILL or a power cut); return what was removed."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.pid*.tmp"):
        pid = tmp.name[len(path.name) + 5 :].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    if removed:
        log.warning("removed %d temp file(s) of %s left by killed writers", len(removed), path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w") -> Iterator[Any]:
    """Open a temp file next to `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        _default_mode(Path(tmp), 0o666)
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise _named(exc, path) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _named(exc: OSError, path: Path) -> OSError:
    """`exc` naming the file it is about: a write that fails on a full disk (ENOSPC, EFBIG)
    carries no file name, and the one-line error should say which file could not be written."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def changed_keys(expected: dict[str, Any], recorded: Any) -> list[str]:
    """Top-level keys whose values differ between `expected` and a recorded JSON value (all of
    them when it is not an object): what a resume names when its settings do not match."""
    if not isinstance(recorded, dict):
        return sorted(expected)
    return sorted(k for k in {*expected, *recorded} if expected.get(k) != recorded.get(k))


def read_json(path: str | os.PathLike[str], what: str, error: type[GaninfError] = DataError) -> Any:
    """Parsed JSON of `path`; `what` prefixes the file's name in the one-line error. Only a
    regular file is opened, bounded in bytes read and nesting depth (`bounded.py`)."""
    from ganinf_mlops.bounded import read_json_file

    path = Path(path)
    return read_json_file(path, f"{what} {path.name}", error)


def _finite(obj: Any) -> Any:
    """NaN and infinities as null: strict JSON (DVC metrics, other languages) has no NaN.
    NumPy scalars become Python numbers."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def dump_json(obj: Any, fh: Any) -> None:
    """Strict JSON (NaN/inf written as null) to an open text file."""
    json.dump(_finite(obj), fh, indent=2, sort_keys=True, allow_nan=False)
    fh.write("\n")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Strict JSON (NaN/inf written as null), atomically."""
    with atomic_file(path) as fh:
        dump_json(obj, fh)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temp directory that becomes `path` when the block succeeds.

    Refuses an existing `path` unless `force`, checked again when the block ends: another
    writer that finished first in the meantime keeps its output. With `force` the old directory
    is replaced only after the new one is complete.
    """
    from ganinf_mlops.writelock import writing

    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(path)
    with writing(path):  # another live writer of `path`: refused, not raced
        remove_stale_temps(path)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
        try:
            _default_mode(tmp, 0o777)
            yield tmp
            publish_dir(tmp, path, force)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _named(exc, path) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def publish_dir(tmp: Path, path: Path, force: bool) -> None:
    """Rename the finished directory `tmp` to `path` (same file system): refused when `path`
    exists without `force` (checked again at the rename, so a racing writer's output stays);
    with `force` the old directory goes only once the new one is in place."""
    if path.exists() and not force:
        raise OutputExistsError(path)  # another writer finished first
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / "x")
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.replace(tmp, path)
    except OSError as exc:  # a non-empty directory appeared since the check
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and not force:
            raise OutputExistsError(path) from None
        raise


def check_disjoint(output: str | os.PathLike[str], *inputs: str | os.PathLike[str] | None) -> None:
    """Refuse an output that is an input, holds one, or lies inside one: writing it (with
    --force) would destroy or alter data the command reads."""
    dst = Path(output).resolve()
    for src in (Path(i).resolve() for i in inputs if i is not None):
        if src == dst or src.is_relative_to(dst) or dst.is_relative_to(src):
            raise ConfigError(f"output {output} overlaps the input {src}; choose another path")
