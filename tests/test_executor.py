"""The executors: serial in process, and Ray tasks giving the serial job's results exactly.

The Ray test starts a local cluster (a head with 2 CPUs) on 127.0.0.1 only. Ray takes the
machine's network address while another interface exists, so the test reruns itself inside a
private network namespace (`unshare -n`: loopback only; CI runs as root). Where that is not
permitted, or Ray is not installed, it is skipped unless GANINF_REQUIRE_RAY=1 (.ci/run sets it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ganinf_mlops import executor
from ganinf_mlops.config import JobOptions, get_preset
from ganinf_mlops.data.version import load_version
from ganinf_mlops.errors import ConfigError, OutputExistsError
from ganinf_mlops.train.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("GANINF_REQUIRE_RAY") == "1"
IN_NAMESPACE = "_GANINF_RAY_NETNS"  # set in the rerun inside the namespace


def test_auto_is_ray_only_when_ray_address_is_set(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert executor.resolve("auto") == "serial"
    assert executor.executor_for(None) is executor.SERIAL
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert executor.resolve("auto") == "ray" == executor.resolve("ray")
    assert executor.resolve("serial") == "serial"  # asked for: RAY_ADDRESS does not override it
    assert isinstance(executor.executor_for("auto"), executor.RayExecutor)
    with pytest.raises(ConfigError, match="unknown executor 'dask'; choose from: auto, serial"):
        executor.resolve("dask")


def test_job_option_is_checked():
    assert JobOptions().executor == "auto"
    with pytest.raises(ConfigError, match="unknown executor 'threads'"):
        JobOptions(executor="threads")


def test_serial_maps_in_order_and_lazily():
    calls: list[int] = []

    def square(x: int) -> int:
        calls.append(x)
        return x * x

    results = executor.SERIAL.map(square, [3, 1, 2])
    assert calls == []  # each runs when its result is asked for
    assert next(results) == 9 and calls == [3]
    assert list(results) == [1, 4]


def test_ray_missing_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    needs = r"executor ray needs Ray: pip install 'ganinf-mlops\[ray\]'"
    with pytest.raises(ConfigError, match=needs):
        executor.executor_for("ray")


def test_ray_missing_refuses_the_job_before_it_starts(monkeypatch, tmp_path, capsys):
    from ganinf_mlops.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "run", "--preset", "tiny", "--out", str(tmp_path / "w"), "--executor", "ray"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: executor ray needs Ray")
    assert not (tmp_path / "w" / "config.json").exists()  # nothing recorded: no interrupted job


def test_an_unknown_executor_is_refused_by_the_cli(tmp_path):
    from click.testing import CliRunner

    from ganinf_mlops.cli import cli

    res = CliRunner().invoke(cli, ["run", "--preset", "tiny", "--out", str(tmp_path / "w"),
                                   "--executor", "dask"])  # fmt: skip
    assert res.exit_code == 2 and "'dask' is not one of 'auto', 'serial', 'ray'" in res.output
    assert not (tmp_path / "w").exists()


# --- Ray: the serial job's results, trained by tasks ------------------------------------------


def _namespace_problem() -> str | None:
    """Why the test cannot run Ray on loopback here (None: it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'ganinf-mlops[ray]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2) for a loopback-only namespace"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here ({probe.stderr.strip()})"
    return None


def _canonical(value: Any, workdir: str) -> str:
    """A job's JSON output as text (NaN compares equal to NaN there), without timings, its own
    directory name replaced."""
    return json.dumps(_comparable(value, workdir), sort_keys=True)


def _comparable(value: Any, workdir: str) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v, workdir) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_comparable(v, workdir) for v in value]
    if isinstance(value, str) and (value == workdir or value.startswith(workdir + "/")):
        return "WORK" + value[len(workdir) :]
    return value


def _job_files(workdir: Path) -> dict[str, Any]:
    """What the test compares: every score table (bytes), the summary and validation reports
    (JSON, timings left out)."""
    out: dict[str, Any] = {}
    for p in sorted(workdir.rglob("*")):
        rel = str(p.relative_to(workdir))
        if p.suffix == ".csv":
            out[rel] = p.read_bytes()
        elif rel == "summary.json" or rel.startswith("reports/"):
            out[rel] = _canonical(json.loads(p.read_text()), workdir.name)
    return out


# Ray refuses a port that a Ray process anywhere on the machine was started with (it reads the
# process table, not the namespace's network): one of its own per test run.
PORT = 20000 + os.getpid() % 10000


def _start_cluster(env: dict[str, str]) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={PORT}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.integration
def test_ray_tasks_give_the_serial_jobs_results(request, tmp_path, monkeypatch):
    if os.environ.get(IN_NAMESPACE) != "1":
        problem = _namespace_problem()
        if problem is not None:
            if REQUIRED:
                pytest.fail(f"GANINF_REQUIRE_RAY=1 but {problem}")
            pytest.skip(problem)
        # The same test again, inside a private network namespace with loopback only.
        env = {**os.environ, IN_NAMESPACE: "1"}
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               f"--basetemp={tmp_path / 'inner'}", request.node.nodeid]  # fmt: skip
        res = subprocess.run(["unshare", "-n", *cmd], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
        assert "1 passed" in res.stdout, res.stdout[-2000:]
        return

    from ganinf_mlops.influence import loo
    from ganinf_mlops.pipeline import run_job
    from ganinf_mlops.train import trainer
    from ganinf_mlops.train.trainer import Training, run_training

    # tiny with an ensemble of 2 and 2 retraining seeds, one iteration (its leave-one-out and
    # set replays run per member too); no agreement check: the iteration must cleanse.
    tiny = get_preset("tiny")
    job = dataclasses.replace(tiny.job, ensemble=2, retrain_seeds=2, iterations=1, loo=8,
                              group_subsets=1, min_agreement=None)  # fmt: skip
    preset = dataclasses.replace(tiny, job=job)
    # The workers import this checkout (CI installs it; a source checkout is on PYTHONPATH).
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": path}
    _start_cluster(env)
    try:
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        monkeypatch.chdir(tmp_path)  # relative paths: each task runs in this directory
        serial = run_job("serial", dataclasses.replace(preset, job=dataclasses.replace(
            job, executor="serial")), progress=False)  # fmt: skip
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{PORT}")

        def not_here(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("independent work ran in the driver, not in a Ray task")

        # Patched in this process only: the workers import the modules afresh.
        monkeypatch.setattr(trainer, "train", not_here)
        monkeypatch.setattr(loo, "removal_changes", not_here)
        ray_summary = run_job("ray", preset, progress=False)  # auto: RAY_ADDRESS is set
        monkeypatch.undo()
        monkeypatch.chdir(tmp_path)
        runs = {p.name for p in Path("ray/runs").iterdir()}
        assert runs == {"r0", "r0-seed1", "r1", "r1-seed1", "replay1"}

        assert serial["iterations"]["1"]["n_removed"] > 0
        assert _canonical(ray_summary, "ray") == _canonical(serial, "serial")
        ray_files, serial_files = _job_files(Path("ray")), _job_files(Path("serial"))
        assert set(ray_files) == set(serial_files) >= {
            "summary.json", "reports/validate_it1.json", "scores/it1_all.csv"
        }  # fmt: skip
        assert ray_files == serial_files

        # A task's own error reaches the caller as itself (the CLI's one `error:` line).
        rd = RunDir("ray/runs/r1")
        taken = Training(load_version("ray/data/v1"), rd.train_config, rd.metric_config, rd.path)
        with pytest.raises(OutputExistsError, match="ray/runs/r1 already exists"):
            list(executor.RayExecutor().map(run_training, [taken]))
    finally:
        try:
            import ray

            ray.shutdown()
        finally:
            subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                           env=env, capture_output=True)  # fmt: skip
