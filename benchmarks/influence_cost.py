"""What exact trajectory influence costs, measured on one dataset version and one trained run.

(a) time: the reverse pass (`score(..., method)`, checkpointed) against training, after a
    throwaway warm-up so one-off torch / torch.func start-up costs land on neither side; the
    project requires influence <= 3.0x training time (goal 2.0x); `last_epochs=1` for comparison,
    and for GANs `last_epochs=1` averaged over minibatch orders (`average_order`);
(b) memory: the reverse pass's peak increase with checkpointing and without (all steps' graphs
    kept), each in a fresh process so neither inherits the other's heap;
(c) disk: the recorded trajectory against storing every step's full state.

The method scored is --method, else the preset's job.method when it is an influence method (fid
for the image presets, all for `default`), else the problem's headline target. Image presets need
a feature classifier for their metrics: it is trained on the raw version first (as the job does,
`pipeline.with_classifier`), outside every measurement; each run records its path, so the memory
children load it from the run directory.

Usage: python benchmarks/influence_cost.py --preset default [--method M] [--device cuda]
       [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from seeds import key_values
from torch.func import grad

from ganinf_mlops import keys
from ganinf_mlops.config import (
    PRESETS,
    Preset,
    TrainConfig,
    feature_classifier,
    get_preset,
    kind_fields,
)
from ganinf_mlops.data.version import DatasetVersion, create_raw_version, load_version
from ganinf_mlops.influence.methods import (
    METHODS,
    influence_methods,
    problem_and_target,
    score,
)
from ganinf_mlops.influence.options import ScoringOptions
from ganinf_mlops.influence.reverse import reverse_pass, segments
from ganinf_mlops.pipeline import with_classifier
from ganinf_mlops.problems import PROBLEMS, Problem
from ganinf_mlops.problems.schedule import steps_per_epoch
from ganinf_mlops.train.rundir import CHECKPOINTS, SCHEDULE, RunDir, flatten_state
from ganinf_mlops.train.trainer import train

REQUIRED_RATIO = 3.0
GOAL_RATIO = 2.0
MIB = 2**20
MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"
MMAP_THRESHOLD = "16384"  # bytes; 0 would exhaust the process's mmap count on long tapes
MEMORY_TASKS = {
    "both": ("target_grad", "checkpointed", "uncheckpointed"),
    "checkpointed": ("target_grad", "checkpointed"),
    "none": (),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time, memory and disk cost of exact trajectory influence (one run).",
    )
    p.add_argument("--preset", default="default", choices=PRESETS.names())
    p.add_argument(
        "--method",
        default=None,
        choices=influence_methods(),
        help="influence method to score (default: the preset's job.method if it is one, else "
        "the problem's headline target: all for vectors, fid for images)",
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument(
        "--dataset",
        default=None,
        help="replace the preset's dataset (its data parameters are then only --data-param's), "
        "e.g. mnist with --data-param root=DIR",
    )
    p.add_argument(
        "--data-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a data parameter (VALUE as JSON, else a string), e.g. train_size=1000",
    )
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="time training and the pass this many times each, alternating; report the minimum",
    )
    p.add_argument(
        "--memory",
        default="both",
        choices=("both", "checkpointed", "none"),
        help="which reverse passes to measure for peak memory (uncheckpointed keeps every "
        "step's graph: large for long runs)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads per process, 0 = torch's default (default: 1: as fast for "
        "these small models, and it does not collapse when other processes share the cores)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write all numbers here")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 0 or (args.epochs is not None and args.epochs < 1):
        p.error("--repeats and --epochs must be >= 1, --threads >= 0")
    args.data_param = key_values(p, args.data_param, "--data-param", _json_or_str)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    return args


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a path, a name


def with_data(preset: Preset, args: argparse.Namespace) -> Preset:
    """The preset on --dataset (else its own) with --data-param applied."""
    if args.dataset is None:
        return dataclasses.replace(preset, data_params={**preset.data_params, **args.data_param})
    return dataclasses.replace(preset, dataset=args.dataset, data_params=dict(args.data_param))


def compact(value: Any) -> str:
    """A config value on one line: a nested config's fields as key=value."""
    if dataclasses.is_dataclass(value):
        return " ".join(f"{k}={v}" for k, v in dataclasses.asdict(value).items())
    return str(value)


def scoring_method(preset: Preset, method: str | None = None) -> str:
    """The influence method to time: `method`, else the preset's job.method when it predicts a
    change (an influence method), else the problem's headline target (ALL, or FID for images)."""
    problem = PROBLEMS.get(preset.train.problem)
    if method is None:
        if METHODS.get(preset.job.method).predicts_change:
            method = preset.job.method
        else:
            method = keys.primary_metric(dict.fromkeys(problem.target_names))
    target = METHODS.get(method).target
    if target not in problem.target_names:
        raise SystemExit(
            f"method {method!r}: the {preset.train.problem} problem's targets are "
            f"{', '.join(problem.target_names)}"
        )
    return method


def bench_config(preset: Preset, args: argparse.Namespace) -> TrainConfig:
    cfg = dataclasses.replace(preset.train, device=args.device)
    if args.epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=args.epochs, steps=None)
    return cfg


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the temp dir is still removed."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def warm_up(
    version: DatasetVersion, cfg: TrainConfig, preset: Preset, method: str, work: Path
) -> None:
    """A one-epoch throwaway run and its reverse pass: first-call costs (torch.func, allocator)."""
    run = train(
        version,
        dataclasses.replace(cfg, epochs=1, steps=None),
        preset.metric,
        work / "warmup",
        progress=False,
    )
    score(run, version, ScoringOptions(method, progress=False))
    shutil.rmtree(run)


def measure_time(
    version: DatasetVersion,
    cfg: TrainConfig,
    preset: Preset,
    method: str,
    work: Path,
    repeats: int,
) -> tuple[Path, dict[str, Any]]:
    """Train and score `repeats` times alternately, so load from other processes hits both sides.

    Every sample is kept; the report uses minima (the least disturbed measurement of each).
    """
    names = ("train_wall", "train_cpu", "train_loop", "score_wall", "score_cpu", "score_pass")
    samples: dict[str, list[float]] = {k: [] for k in names}
    runs: list[Path] = []
    for i in range(repeats):
        run = work / f"run{i}"
        runs.append(run)
        _, wall, cpu = timed(
            lambda run=run: train(version, cfg, preset.metric, run, progress=False), cfg.device
        )
        samples["train_wall"].append(wall)
        samples["train_cpu"].append(cpu)
        samples["train_loop"].append(float(RunDir(run).metrics()[keys.TRAIN_SECONDS]))
        table, wall, cpu = timed(
            lambda run=run: score(run, version, ScoringOptions(method, progress=False)), cfg.device
        )
        samples["score_wall"].append(wall)
        samples["score_cpu"].append(cpu)
        samples["score_pass"].append(float(table.extra["seconds"]))
    last1, wall, cpu = timed(
        lambda: score(runs[0], version, ScoringOptions(method, last_epochs=1, progress=False)),
        cfg.device,
    )
    averaged: dict[str, float] = {}
    # Problem kinds whose step has a term for every instance (step_with_all): the GANs.
    if PROBLEMS.get(cfg.problem).step_with_all is not Problem.step_with_all:
        averaged_options = ScoringOptions(method, last_epochs=1, average_order=True, progress=False)
        avg, a_wall, a_cpu = timed(
            lambda: score(runs[0], version, averaged_options),
            cfg.device,
        )
        averaged = {
            "last1_avg_wall": a_wall,
            "last1_avg_cpu": a_cpu,
            "last1_avg_pass": float(avg.extra["seconds"]),
        }
    for run in runs[1:]:
        shutil.rmtree(run)
    out: dict[str, Any] = {k: min(v) for k, v in samples.items()}
    out.update(
        last1_wall=wall,
        last1_cpu=cpu,
        last1_pass=float(last1.extra["seconds"]),
        last1_traced_steps=int(last1.extra["n_steps"]) - int(last1.extra["first_step"]),
        **averaged,
        samples=samples,
    )
    return runs[0], out


# --- peak memory, in a fresh process per mode -------------------------------------------------


def _vm_hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (Linux), so VmHWM then holds the pass's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Peak RSS by polling, a cross-check (and the fallback where VmHWM cannot be reset)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def memory_child(
    run: str, version_path: str, method: str, what: str, threads: int, conn: Any
) -> None:
    """Runs in a spawned process: the peak memory increase of one computation (`MEMORY_TASKS`)."""
    set_threads(threads)
    try:
        conn.send(_measure(Path(run), Path(version_path), method, what))
    except BaseException as exc:  # report, don't hang the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def peak_increase(fn: Callable[[], Any], cuda: bool) -> dict[str, Any]:
    """Peak memory above the level at the call while `fn` runs, and its wall time."""
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated()
        return {"before": before, "peak": peak, "increase": peak - before, "seconds": seconds}
    before = psutil.Process().memory_info().rss
    reset = _reset_hwm()
    with RssSampler() as sampler:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    hwm = _vm_hwm_bytes() if reset else None
    peak = max(sampler.peak, hwm or 0)
    return {
        "before": before,
        "peak": peak,
        "peak_sampled": sampler.peak,
        "peak_vmhwm": hwm,
        "increase": peak - before,
        "seconds": seconds,
    }


def _measure(run: Path, version_path: Path, method: str, what: str) -> dict[str, Any]:
    version = load_version(version_path)
    traj = RunDir(run)
    # Everything the problem needs comes from the run directory: an image run's feature
    # classifier too (meta.json records its path; `RunDir.problem` checks its digest).
    problem, target = problem_and_target(traj, version, METHODS.get(method).target)
    cuda = problem.device.type == "cuda"
    # One traced step first, so lazy torch.func / allocator set-up is not counted as the pass's.
    reverse_pass(problem, traj, target, first_step=traj.n_steps - 1, progress=False)
    checkpointed = what == "checkpointed"
    if what == "target_grad":
        final = traj.load_state(traj.n_steps, problem.device)
        result = peak_increase(lambda: grad(target.value)(final), cuda)
    else:
        result = peak_increase(
            lambda: reverse_pass(problem, traj, target, checkpointed=checkpointed, progress=False),
            cuda,
        )
    segs = segments(traj.checkpoint_steps, traj.n_steps, checkpointed)
    classifier = traj.metric_config.classifier
    result.update(
        kind="cuda max_memory_allocated" if cuda else _rss_kind(),
        longest_segment=max(b - a for a, b in segs),
        device=str(problem.device),
        classifier=None if classifier is None else str(Path(classifier).resolve()),
    )
    return result


def _rss_kind() -> str:
    hwm = "VmHWM reset + sampling" if _vm_hwm_bytes() is not None else "sampling"
    return f"RSS, {hwm}, MALLOC_MMAP_THRESHOLD_={os.environ.get(MMAP_ENV, 'default')}"


def measure_memory(
    run: Path, version: DatasetVersion, method: str, what: str, threads: int
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=memory_child,
        args=(str(run), str(version.path), method, what, threads, child_conn),
    )
    # glibc keeps freed memory in its heap, so RSS would show the allocator's history; with all
    # but small allocations mmap-ed, freed tensors leave RSS at once and RSS tracks live bytes.
    saved = os.environ.get(MMAP_ENV)
    os.environ[MMAP_ENV] = MMAP_THRESHOLD
    try:
        proc.start()
    finally:
        if saved is None:
            del os.environ[MMAP_ENV]
        else:
            os.environ[MMAP_ENV] = saved
    child_conn.close()
    try:
        result = parent_conn.recv()
    except EOFError:
        result = {"error": "child process died (out of memory?)"}
    proc.join()
    if proc.exitcode not in (0, None) and "error" not in result:
        result["error"] = f"child exited with code {proc.exitcode}"
    return result


# --- disk ------------------------------------------------------------------------------------


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure_disk(run: Path) -> dict[str, Any]:
    traj = RunDir(run)
    one = flatten_state(traj.load_state(0))  # the tensors of one checkpoint file
    state_bytes = sum(t.numel() * t.element_size() for t in one.values())
    total = dir_bytes(run)
    schedule = (run / SCHEDULE).stat().st_size
    checkpoints = dir_bytes(run / CHECKPOINTS)
    full = state_bytes * (traj.n_steps + 1)
    return {
        "total": total,
        "schedule": schedule,
        "checkpoints": checkpoints,
        "n_checkpoints": len(traj.checkpoint_steps),
        "other": total - schedule - checkpoints,
        "state_tensor_bytes": state_bytes,
        "state_tensors": {k: list(v.shape) for k, v in one.items()},
        "n_steps": traj.n_steps,
        "full_every_step": full,
        "ratio": full / total,
    }


# --- report ----------------------------------------------------------------------------------


def table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}\n{'-' * len(title)}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def mib(n: float) -> str:
    return f"{n / MIB:10.2f} MiB"


def metric_setting(preset: Preset, method: str, classifier_seconds: float | None) -> str:
    m = preset.metric
    if m.classifier is None:
        return f"influence on {method}, n_gen={m.n_gen}, bandwidth={m.bandwidth}"
    trained = "" if classifier_seconds is None else f", trained in {classifier_seconds:.1f} s"
    return f"influence on {method}, n_gen={m.n_gen}, classifier {m.classifier}{trained}"


def print_settings(
    preset: Preset,
    cfg: TrainConfig,
    version: DatasetVersion,
    method: str,
    classifier_seconds: float | None,
) -> None:
    n_steps = cfg.steps or steps_per_epoch(version.n, cfg.batch_size) * cfg.epochs
    table(
        f"influence_cost: preset '{preset.name}'",
        [
            ("dataset", f"{preset.dataset} {json.dumps(preset.data_params)}"),
            ("instances / shape", f"{version.n} / {tuple(version.x.shape[1:])}"),
            *(
                (f"{cfg.problem}: {name}", compact(value))
                for name, value in kind_fields(cfg).items()
            ),
            ("batch / epochs / steps", f"{cfg.batch_size} / {cfg.epochs} / {n_steps}"),
            ("checkpoint_every", str(cfg.checkpoint_every)),
            ("dtype / device", f"{cfg.dtype} / {cfg.device}"),
            ("method / metric", metric_setting(preset, method, classifier_seconds)),
            (
                "torch / threads / cpus",
                f"{torch.__version__} / {torch.get_num_threads()} / {os.cpu_count()}",
            ),
        ],
    )


def verdict(ratio: float) -> str:
    if ratio <= GOAL_RATIO:
        return "meets goal"
    return "meets requirement" if ratio <= REQUIRED_RATIO else "FAILS requirement"


def print_time(t: dict[str, Any], repeats: int, method: str) -> None:
    wall = t["score_wall"] / t["train_wall"]
    cpu = t["score_cpu"] / t["train_cpu"]
    loop = t["score_pass"] / t["train_loop"]
    bound = f"(<= {REQUIRED_RATIO} required, goal {GOAL_RATIO})"
    table(
        f"(a) time: minimum of {repeats} alternating repeat(s), after a warm-up run",
        [
            ("train(): wall / CPU", f"{t['train_wall']:8.2f} s / {t['train_cpu']:8.2f} s"),
            (f"  step loop (metrics.json {keys.TRAIN_SECONDS})", f"{t['train_loop']:8.2f} s"),
            (
                f"score({method}): wall / CPU",
                f"{t['score_wall']:8.2f} s / {t['score_cpu']:8.2f} s",
            ),
            ("  reverse pass only (extra.seconds)", f"{t['score_pass']:8.2f} s"),
            ("RATIO influence / training, wall", f"{wall:8.2f} x  {verdict(wall)} {bound}"),
            ("ratio, CPU time", f"{cpu:8.2f} x  {verdict(cpu)}"),
            ("ratio, reverse pass / step loop", f"{loop:8.2f} x"),
            (
                f"last_epochs=1 ({t['last1_traced_steps']} steps traced): wall / CPU",
                f"{t['last1_wall']:8.2f} s / {t['last1_cpu']:8.2f} s  "
                f"({t['last1_wall'] / t['train_wall']:.2f} x training wall)",
            ),
            ("  reverse pass only", f"{t['last1_pass']:8.2f} s"),
            *(
                [
                    (
                        "last_epochs=1, averaged over minibatch orders: wall / CPU",
                        f"{t['last1_avg_wall']:8.2f} s / {t['last1_avg_cpu']:8.2f} s  "
                        f"({t['last1_avg_wall'] / t['train_wall']:.2f} x training wall)",
                    )
                ]
                if "last1_avg_wall" in t
                else []
            ),
            *(
                (f"samples, {k.replace('_', ' ')} (s)", " ".join(f"{x:.2f}" for x in v))
                for k, v in t["samples"].items()
            ),
        ],
    )


def print_memory(mem: dict[str, dict[str, Any]]) -> None:
    labels = {
        "target_grad": "dV/d(final state) alone (first step of every pass)",
        "checkpointed": "reverse pass, checkpointed",
        "uncheckpointed": "reverse pass, uncheckpointed (all steps' graphs)",
    }
    rows: list[tuple[str, str]] = []
    for what, m in mem.items():
        if "error" in m:
            rows.append((labels[what], f"ERROR {m['error']}"))
            continue
        rows.append(
            (
                labels[what],
                f"{mib(m['increase'])}  (from {m['before'] / MIB:.0f} to {m['peak'] / MIB:.0f} MiB,"
                f" {m['seconds']:.1f} s)",
            )
        )
    ck, full = mem.get("checkpointed", {}), mem.get("uncheckpointed", {})
    if "increase" in ck and "increase" in full and ck["increase"] > 0:
        rows.append(
            ("uncheckpointed / checkpointed", f"{full['increase'] / ck['increase']:10.2f} x")
        )
        # The tape grows by about one step's graph per traced step; checkpointing keeps one segment.
        per_step = full["increase"] / full["longest_segment"]
        rows.append(("uncheckpointed increase / traced step", mib(per_step)))
        rows.append(
            (
                f"  x longest checkpointed segment ({ck['longest_segment']} steps)",
                f"{mib(per_step * ck['longest_segment'])}  (the tape part of a checkpointed pass)",
            )
        )
    classifiers = {m["classifier"] for m in mem.values() if m.get("classifier") is not None}
    for path in sorted(classifiers):
        rows.append(("feature classifier loaded by the children", path))
    kinds = {m["kind"] for m in mem.values() if "kind" in m}
    table(f"(b) peak memory increase, fresh process each [{', '.join(kinds)}]", rows)


def print_disk(d: dict[str, Any]) -> None:
    table(
        "(c) trajectory on disk vs every step's full state",
        [
            ("run dir total", mib(d["total"])),
            ("  schedule", mib(d["schedule"])),
            (f"  checkpoints ({d['n_checkpoints']})", mib(d["checkpoints"])),
            ("  other (meta, metrics, losses.csv)", mib(d["other"])),
            (
                "one state, tensor bytes",
                f"{d['state_tensor_bytes']:>10d} B  ({len(d['state_tensors'])} tensors)",
            ),
            (f"every state ({d['n_steps']}+1 steps)", mib(d["full_every_step"])),
            ("every state / run dir", f"{d['ratio']:10.2f} x"),
        ],
    )


def check_children(memory: dict[str, dict[str, Any]], preset: Preset) -> None:
    """Every memory child loaded the classifier the runs were trained with (or none)."""
    expected = feature_classifier(preset.metric)
    want = None if expected is None else str(Path(expected).resolve())
    for m in memory.values():
        if "error" not in m and m.get("classifier") != want:
            m["error"] = f"the child loaded classifier {m.get('classifier')}, expected {want}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    stop_on_sigterm()
    preset = with_data(get_preset(args.preset), args)
    method = scoring_method(preset, args.method)
    cfg = bench_config(preset, args)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="ganinf-bench-cost-"))
    try:
        version = create_raw_version(work / "data", preset.dataset, **preset.data_params)
        # Images: FID and IS need a feature classifier on the raw version (not measured).
        classifier_seconds = None
        if feature_classifier(preset.metric) is not None:
            start = time.perf_counter()
            preset = with_classifier(preset, version, work, force=False, progress=False)
            classifier_seconds = time.perf_counter() - start
        print_settings(preset, cfg, version, method, classifier_seconds)
        sys.stdout.flush()
        warm_up(version, cfg, preset, method, work)
        run, times = measure_time(version, cfg, preset, method, work, args.repeats)
        print_time(times, args.repeats, method)
        sys.stdout.flush()
        memory = {
            what: measure_memory(run, version, method, what, args.threads)
            for what in MEMORY_TASKS[args.memory]
        }
        check_children(memory, preset)
        if memory:
            print_memory(memory)
        disk = measure_disk(run)
        print_disk(disk)
        total = time.perf_counter() - started
        print(f"\nbenchmark wall time: {total:.0f} s")
        if args.json is not None:
            out = {
                "preset": preset.name,
                "method": method,
                "train_config": dataclasses.asdict(cfg),
                "metric_config": dataclasses.asdict(preset.metric),
                "data_params": preset.data_params,
                "time": times,
                "memory": memory,
                "disk": disk,
                "benchmark_seconds": total,
            }
            args.json.write_text(json.dumps(out, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
