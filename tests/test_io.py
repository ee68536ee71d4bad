from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from ganinf_mlops.errors import OutputExistsError
from ganinf_mlops.io import atomic_dir, atomic_file, write_json


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_outputs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_dir(tmp_path / "d") as d:
            (d / "f").write_text("x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.json") == 0o644
    assert _mode(tmp_path / "d") == 0o755


def test_failed_writes_leave_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "f.txt") as fh:
        fh.write("half")
        raise RuntimeError
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d"):
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_with_force(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old").write_text("old")
    with pytest.raises(OutputExistsError), atomic_dir(tmp_path / "d"):
        pass
    with atomic_dir(tmp_path / "d", force=True) as d:
        (d / "new").write_text("new")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_racing_writers_never_replace_a_finished_output(tmp_path):
    """Two writers of one new output: the second to finish fails and leaves the first's intact,
    even when it started before the first existed (two `train --out` at once)."""
    out = tmp_path / "run"
    first, second = atomic_dir(out), atomic_dir(out)
    a, b = first.__enter__(), second.__enter__()
    (a / "who").write_text("first")
    (b / "who").write_text("second")
    second.__exit__(None, None, None)
    with pytest.raises(OutputExistsError):
        first.__exit__(None, None, None)
    assert (out / "who").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temp directory left behind


def test_write_json_is_strict_json(tmp_path):
    obj = {"tau": float("nan"), "xs": [1.0, float("inf")], "n": 3}
    obj |= {"p": np.float64("nan"), "k": np.int64(4)}
    write_json(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"tau": None, "xs": [1.0, None], "n": 3, "p": None, "k": 4}


def test_temps_of_killed_writers_are_removed_live_ones_kept(tmp_path):
    """A SIGKILLed writer leaves `.<name>.pid<PID>.*.tmp`; the next write of that output
    removes it when that process is gone, and never touches a live writer's temp."""
    import os
    import subprocess
    import sys

    from ganinf_mlops.io import atomic_dir, atomic_file

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid, live_pid = int(dead.stdout), os.getpid()
    out = tmp_path / "out"
    (tmp_path / f".out.pid{dead_pid}.abc.tmp").mkdir()
    (tmp_path / f".out.pid{dead_pid}.abc.tmp" / "half").write_text("x")
    (tmp_path / f".out.pid{live_pid}.def.tmp").mkdir()
    (tmp_path / f".f.json.pid{dead_pid}.ghi.tmp").write_text("half")
    with atomic_dir(out) as tmp:
        (tmp / "done").write_text("ok")
    with atomic_file(tmp_path / "f.json") as fh:
        fh.write("{}")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".out.pid{live_pid}.def.tmp", "f.json", "out"]
