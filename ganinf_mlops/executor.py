"""Where independent work runs: one after another in this process, or as tasks on a Ray cluster.

Independent work is a seed sibling of an ensemble, a retraining seed, one run's leave-one-out and
set replays, a benchmark seed: a pure function of its argument that writes only its own output
directory. `Executor.map` runs such a function over a list of arguments and yields the results in
the order of the list, whichever finished first, so a job's files are the same on either executor.

`serial` (the default) calls the function here. `ray` sends each call to a Ray task
(`RAY_ADDRESS`, else a Ray instance started on this machine): one CPU each, or one GPU for work
that trains on a CUDA device. Every task runs in this process's working directory, so relative
paths name the same files: the workers must see it (a filesystem every node mounts at the same
path), and they import this process's PYTHONPATH. `auto` is `ray` when RAY_ADDRESS is set, else
`serial`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ganinf_mlops.errors import ConfigError, GaninfError
from ganinf_mlops.registry import check_choice

log = logging.getLogger(__name__)

EXECUTORS = ("auto", "serial", "ray")
A = TypeVar("A")
R = TypeVar("R")


class Executor(Protocol):
    name: str
    in_process: bool  # progress bars and the caller's logging apply only in process

    def map(self, fn: Callable[[A], R], items: Sequence[A], *, gpu: bool = False) -> Iterator[R]:
        """fn(item) for each item, in order; `gpu`: each call trains on a CUDA device."""
        ...


class Serial:
    name = "serial"
    in_process = True

    def map(self, fn: Callable[[A], R], items: Sequence[A], *, gpu: bool = False) -> Iterator[R]:
        return (fn(item) for item in items)


SERIAL = Serial()


def resolve(name: str) -> str:
    """The executor `name` stands for: `auto` is `ray` when RAY_ADDRESS is set, else `serial`."""
    check_choice("executor", name, EXECUTORS)
    if name == "auto":
        return "ray" if os.environ.get("RAY_ADDRESS") else "serial"
    return name


def executor_for(name: str | None) -> Executor:
    """The executor `name` (job.executor, --executor; None: `auto`) stands for."""
    return RayExecutor() if resolve(name or "auto") == "ray" else SERIAL


NO_RAY = (
    "executor ray needs Ray: pip install 'ganinf-mlops[ray]' (or ray>=2.40), on every node of "
    "the cluster as well"
)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(NO_RAY) from None
    return ray


def _in_dir(cwd: str, fn: Callable[[A], R], item: A) -> R:
    """fn(item) in the driver's working directory `cwd` (a Ray task's body)."""
    if not os.path.isdir(cwd):
        import socket

        raise ConfigError(
            f"the Ray worker on {socket.gethostname()} cannot see {cwd}: run the command from a "
            "directory that every node mounts at the same path"
        )
    os.chdir(cwd)
    return fn(item)


class RayExecutor:
    """Each call a Ray task; connects (or starts a local instance) on first use."""

    name = "ray"
    in_process = False

    def __init__(self) -> None:
        if importlib.util.find_spec("ray") is None:  # refused before any work, not at the first
            raise ConfigError(NO_RAY)  # task (importing Ray itself takes seconds)

    def _connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            extra: dict[str, Any] = {} if address else {"include_dashboard": False}
            if os.environ.get("PYTHONPATH"):  # a source checkout, a benchmark's own modules
                extra["runtime_env"] = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}}
            ray.init(address=address, log_to_driver=True, **extra)
            log.info("ray: %s", ray.cluster_resources())
        return ray

    def map(self, fn: Callable[[A], R], items: Sequence[A], *, gpu: bool = False) -> Iterator[R]:
        if not items:
            return iter(())
        ray = self._connect()
        if gpu and not ray.cluster_resources().get("GPU", 0):
            raise ConfigError("the work trains on CUDA but the Ray cluster has no GPU")
        task = ray.remote(_in_dir).options(
            num_cpus=1, num_gpus=1 if gpu else 0, max_retries=0, name=getattr(fn, "__name__", "")
        )
        cwd = os.getcwd()
        refs = [task.remote(cwd, fn, item) for item in items]
        return _results(ray, refs)


def _results(ray: Any, refs: list[Any]) -> Iterator[Any]:
    """Each task's result in order; a task's own error (a GaninfError) is raised as itself, and
    the tasks not yet finished are cancelled when one fails or the caller stops early."""
    done = 0
    try:
        for ref in refs:
            try:
                yield ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, GaninfError):
                    raise cause from None
                raise
            done += 1
    finally:
        for ref in refs[done + 1 :]:
            ray.cancel(ref)
