"""Bounded reads (issue 24, items 10, 11 and the low items on odd files): JSON and YAML are read
by bytes read, never by the size a file reports; only regular files are opened where files are
expected; nesting depth is checked before parsing. Every refusal is one line naming the file and
the limit, and comes within seconds (each case runs under an alarm)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ganinf_mlops.cli import main
from ganinf_mlops.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def alarm():
    """No case may hang (a FIFO opened for reading blocks until a writer comes)."""

    def hung(*_):
        raise TimeoutError("hung: the file was opened or parsed without a bound")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


DEV_ZERO = """
import resource
from ganinf_mlops.params import load_params
from ganinf_mlops.errors import ConfigError
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    load_params("/dev/zero")
except ConfigError as e:
    print(e)
"""


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- JSON ---------------------------------------------------------------------------------


def test_deeply_nested_json_is_one_line_naming_the_depth_limit(tmp_path):
    from ganinf_mlops.io import read_json

    path = tmp_path / "meta.json"
    path.write_text('{"a": ' + nested_json(100_000) + "}")
    with pytest.raises(DataError, match=r"meta\.json.*nest.*deeper than \d+"):
        read_json(path, "run x:")


def test_a_bracket_inside_a_string_does_not_count_as_nesting(tmp_path):
    from ganinf_mlops.io import read_json

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"path": "[" * 500, "x": [[1]]}))
    assert read_json(path, "m")["x"] == [[1]]


def test_json_larger_than_the_limit_is_refused_on_bytes_read(tmp_path, monkeypatch):
    from ganinf_mlops.io import read_json

    monkeypatch.setenv("GANINF_MAX_JSON_BYTES", "1000")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"ids": list(range(1000))}))
    with pytest.raises(
        DataError, match=r"manifest\.json.*larger than 1,000 bytes.*GANINF_MAX_JSON"
    ):
        read_json(path, "dataset version v:")


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_fifo_device_or_directory_is_not_called_missing_and_never_opened(tmp_path, kind):
    from ganinf_mlops.io import read_json

    path = tmp_path / "meta.json"
    if kind == "fifo":
        fifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    with pytest.raises(DataError) as exc:
        read_json(path, "run x:")
    assert "missing" not in str(exc.value) and "not a regular file" in str(exc.value)


def test_a_nested_param_value_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["-q", "prepare", "--preset", "tiny", "--out", str(tmp_path / "raw"),
              "--param", "n=" + nested_json(50_000)])  # fmt: skip
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --param n") and "deeper than" in err and "\n" not in err
    assert not (tmp_path / "raw").exists()


def test_a_nested_manifest_under_root_does_not_break_lineage_of_the_others(tmp_path, capsys):
    main(["-q", "prepare", "--preset", "tiny", "--out", str(tmp_path / "raw")])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(nested_json(200_000))
    digest = json.loads((tmp_path / "raw" / "manifest.json").read_text())["digest"]
    capsys.readouterr()
    main(["-q", "lineage", digest[:12], "--root", str(tmp_path)])
    assert digest[:12] in capsys.readouterr().out


# --- params YAML --------------------------------------------------------------------------


def test_params_fifo_is_refused_before_opening(tmp_path):
    from ganinf_mlops.params import load_params

    with pytest.raises(ConfigError, match="not a regular file"):
        load_params(fifo(tmp_path / "params.yaml"))


def test_params_dev_zero_is_refused(tmp_path):
    """In a child with 1 GiB of address space beyond its start: an unbounded read fails there."""
    result = subprocess.run(
        [sys.executable, "-c", DEV_ZERO], capture_output=True, text=True, timeout=15,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    assert result.returncode == 0 and "not a regular file" in result.stdout, result.stderr[-500:]


def test_params_directory_is_not_called_missing(tmp_path):
    from ganinf_mlops.params import load_params

    with pytest.raises(ConfigError, match="not a regular file"):
        load_params(tmp_path)


def test_params_nested_mappings_are_refused_by_depth(tmp_path):
    from ganinf_mlops.params import load_params

    path = tmp_path / "params.yaml"
    path.write_text("{a: " * 80_000 + "1" + "}" * 80_000)
    with pytest.raises(ConfigError, match=r"params\.yaml.*nest.*deeper than \d+"):
        load_params(path)


def test_params_nested_lists_are_refused_by_depth_quickly(tmp_path):
    from ganinf_mlops.params import load_params

    path = tmp_path / "params.yaml"
    path.write_text("data: " + "[" * 200_000 + "]" * 200_000)
    with pytest.raises(ConfigError, match="deeper than"):
        load_params(path)


def test_params_over_the_limit_refused_on_bytes_read(tmp_path, monkeypatch):
    from ganinf_mlops import params

    monkeypatch.setenv("GANINF_MAX_PARAMS_BYTES", "100")
    path = tmp_path / "params.yaml"
    path.write_text("# " + "x" * 200 + "\n")
    with pytest.raises(ConfigError, match="larger than 100 bytes"):
        params.load_params(path)


def test_params_fifo_through_the_cli_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["-q", "params", "--params", str(fifo(tmp_path / "p.yaml"))])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a regular file" in err and "\n" not in err


# --- checkpoints --------------------------------------------------------------------------


def test_a_checkpoint_replaced_by_a_fifo_is_refused_before_opening(tmp_path):
    """In a child with a timeout: safetensors opens files in native code, where no alarm
    reaches a blocked open."""
    path = fifo(tmp_path / "step_00000050.safetensors")
    code = (
        "import sys\n"
        "from ganinf_mlops.errors import TrajectoryError\n"
        "from ganinf_mlops.train.rundir import _load\n"
        "try:\n"
        "    _load(__import__('pathlib').Path(sys.argv[1]))\n"
        "except TrajectoryError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=90,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    assert "is a FIFO, not a regular file" in result.stdout, result.stderr[-500:]


def test_a_regular_file_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    """A 300 MB manifest is refused by its size before a byte is read (issue 24, low item)."""
    import io as _io

    from ganinf_mlops import bounded
    from ganinf_mlops.io import read_json

    path = tmp_path / "manifest.json"
    with open(path, "wb") as fh:  # sparse: 300 MB on paper, nothing on disk
        fh.truncate(300 * 10**6)
    reads = []
    real_fdopen = bounded.os.fdopen

    def counting_fdopen(fd, *args, **kwargs):
        fh = real_fdopen(fd, *args, **kwargs)
        assert isinstance(fh, _io.BufferedReader)
        real_read = fh.read
        fh.read = lambda *a: reads.append(a) or real_read(*a)  # type: ignore[method-assign]
        return fh

    monkeypatch.setattr(bounded.os, "fdopen", counting_fdopen)
    with pytest.raises(DataError, match=r"manifest\.json.*larger than 268,435,456 bytes"):
        read_json(path, "dataset version v:")
    assert reads == []
