"""Bounded reads: a file the user hands us is read by the bytes read, never by the size it
reports, and only when it is a regular file; JSON and YAML are checked for nesting depth before
they are parsed. Each refusal is one line naming the file and the limit (`limits.py`)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.errors import DataError, GaninfError
from ganinf_mlops.limits import env_name, limit

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def file_kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a plain file")


def check_regular(
    path: str | os.PathLike[str],
    subject: str,
    error: type[GaninfError] = DataError,
    missing: str = "is missing",
) -> os.stat_result:
    """`path`'s stat when it is a regular file (symlinks followed); else one line: missing, or
    what it is instead (a directory, FIFO or device is never opened)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{subject} {missing}") from None
    except OSError as e:
        raise error(f"{subject} cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{subject} is {file_kind(st.st_mode)}, not a regular file")
    return st


def read_bounded(
    path: str | os.PathLike[str],
    subject: str,
    limit_name: str,
    error: type[GaninfError] = DataError,
    missing: str = "is missing",
) -> bytes:
    """The bytes of the regular file `path`, at most limit `limit_name` of them (one more read
    tells a larger file: a file whose reported size lies cannot make us read more)."""
    check_regular(path, subject, error, missing)
    top = limit(limit_name)
    try:
        # O_NONBLOCK: a FIFO swapped in after the check does not block the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise error(f"{subject} is {file_kind(st.st_mode)}, not a regular file")
            if st.st_size > top:  # a regular file's size refuses it unread
                raise _too_large(subject, top, limit_name, error)
            data = fh.read(top + 1)  # bounded whatever the size said
    except OSError as e:
        raise error(f"{subject} cannot be read: {e.strerror or e}") from None
    if len(data) > top:
        raise _too_large(subject, top, limit_name, error)
    return data


def _too_large(subject: str, top: int, limit_name: str, error: type[GaninfError]) -> GaninfError:
    return error(f"{subject} is larger than {top:,} bytes (raise it with {env_name(limit_name)})")


def _too_deep(subject: str, error: type[GaninfError]) -> GaninfError:
    top = limit("nesting")
    return error(f"{subject} nests deeper than {top} levels (raise it with {env_name('nesting')})")


# A JSON string (escapes included): brackets inside one are not nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes) -> int:
    """The deepest bracket nesting of JSON text, strings skipped (vectorised: no recursion)."""
    stripped = _JSON_STRING.sub(b'""', data)
    steps = _OPEN[np.frombuffer(stripped, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def check_json_depth(raw: bytes, subject: str, error: type[GaninfError] = DataError) -> None:
    """Refuse JSON text nested deeper than the nesting limit, before any parser recurses."""
    if json_depth(raw) > limit("nesting"):
        raise _too_deep(subject, error)


def loads_json(data: str | bytes, subject: str, error: type[GaninfError] = DataError) -> Any:
    """Parsed JSON text, its depth checked first; errors are one line naming `subject`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    check_json_depth(raw, subject, error)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{subject} is not valid JSON: {e}") from None
    except RecursionError:  # the pre-scan bounds depth; a lower interpreter limit still answers
        raise _too_deep(subject, error) from None


def read_json_file(
    path: str | os.PathLike[str], subject: str, error: type[GaninfError] = DataError
) -> Any:
    """Parsed JSON of the regular file `path`, bounded in bytes read and in nesting depth."""
    return loads_json(read_bounded(Path(path), subject, "json_bytes", error), subject, error)


def yaml_depth_ok(text: str, subject: str, error: type[GaninfError]) -> None:
    """Walk YAML parse events (lazily: a refusal comes at the first level too deep), refusing
    aliases (nested aliases expand to gigabytes from a few lines) and deep nesting."""
    import yaml

    top, depth = limit("nesting"), 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise error(f"{subject}: YAML aliases (*{event.anchor}) not allowed")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > top:
                raise _too_deep(subject, error)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
