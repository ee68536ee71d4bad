"""Resume from any kill point (issue 24, item 9).

A kill is simulated deterministically: the function the process was in when it died raises
`Terminated` (which, like SIGKILL, leaves the `.partial` directory behind). Every point of a
run's life is covered: before the first checkpoint, right after it, mid-way, after the final
checkpoint, after the run's files, after the resume records are dropped and before the rename.
`train --resume` then ends bit-identical to an uninterrupted run; the job resumes the same way.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from ganinf_mlops import pipeline
from ganinf_mlops.config import MetricConfig, get_preset
from ganinf_mlops.errors import Terminated
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.train import partial, rundir, trainer
from ganinf_mlops.train.partial import partial_dir
from ganinf_mlops.train.trainer import train

CFG = GanConfig(
    model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,)),
    d_optim=OptimConfig("adam", lr=0.01),
    g_optim=OptimConfig("momentum", lr=0.05),
    batch_size=4,
    epochs=3,
    update="alternating",
    checkpoint_every=4,
)  # 9 steps, checkpoints 0, 4, 8, 9
METRIC = MetricConfig(n_gen=11)


def _files(run: Path) -> dict[str, bytes | dict]:
    """Every file of a run, bit for bit; the JSON files without wall-clock values."""
    out: dict[str, bytes | dict] = {}
    for p in sorted(run.rglob("*")):
        if p.is_file():
            rel = str(p.relative_to(run))
            if p.suffix == ".json":
                d = json.loads(p.read_text())
                d.pop("created_at", None), d.pop("train_seconds", None)
                if rel == "integrity.json":  # the digests of the two files with wall-clock values
                    d["files"].pop("meta.json"), d["files"].pop("metrics.json")
                out[rel] = d
            else:
                out[rel] = p.read_bytes()
    return out


def _kill_at(monkeypatch, owner, name: str, call: int, after: bool = False) -> None:
    """Make `owner.name` die (raise Terminated) at its `call`-th call, before or after it runs."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call and not after:
            raise Terminated()
        result = real(*args, **kwargs)
        if calls["n"] == call and after:
            raise Terminated()
        return result

    monkeypatch.setattr(owner, name, dying)


KILL_POINTS = {
    # name: (owner, function, call, after)
    "before_any_checkpoint": (rundir.RunWriter, "checkpoint", 1, False),
    "right_after_checkpoint_0": (rundir.RunWriter, "checkpoint", 1, True),
    "after_losses_before_checkpoint_4": (rundir.RunWriter, "checkpoint", 2, False),
    "after_checkpoint_8": (rundir.RunWriter, "checkpoint", 3, True),
    "after_final_checkpoint": (rundir.RunWriter, "checkpoint", 4, True),
    "after_run_files": (rundir.RunWriter, "finish", 1, True),
    "after_resume_records_dropped": (partial, "finish", 1, True),
    "before_the_rename": (trainer, "publish_dir", 1, False),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_train_resumes_bit_identical_from_any_kill_point(
    point, tiny_version, tmp_path, monkeypatch
):
    ref = train(tiny_version, CFG, METRIC, tmp_path / "ref", progress=False)
    owner, name, call, after = KILL_POINTS[point]
    _kill_at(monkeypatch, owner, name, call, after)
    out = tmp_path / "run"
    with pytest.raises(Terminated):
        train(tiny_version, CFG, METRIC, out, progress=False)
    assert not out.exists() and partial_dir(out).is_dir()
    monkeypatch.undo()
    assert train(tiny_version, CFG, METRIC, out, progress=False, resume=True) == out
    assert not partial_dir(out).exists()
    assert _files(out) == _files(ref)


def test_a_killed_resume_resumes_again(tiny_version, tmp_path, monkeypatch):
    ref = train(tiny_version, CFG, METRIC, tmp_path / "ref", progress=False)
    out = tmp_path / "run"
    for i, call in enumerate((1, 2, 1)):  # dies before ckpt 0, then twice more on resumes
        _kill_at(monkeypatch, rundir.RunWriter, "checkpoint", call, after=True)
        with pytest.raises(Terminated):
            train(tiny_version, CFG, METRIC, out, progress=False, resume=i > 0)
        monkeypatch.undo()
    train(tiny_version, CFG, METRIC, out, progress=False, resume=True)
    assert _files(out) == _files(ref)


def _preset():
    p = get_preset("tiny")
    return dataclasses.replace(
        p,
        train=dataclasses.replace(p.train, epochs=2, steps=None),
        job=dataclasses.replace(p.job, iterations=1, loo=0),
    )


def _comparable(summary: dict, workdir: Path) -> str:
    text = json.dumps(summary, sort_keys=True).replace(str(workdir), "W")
    return re.sub(r'"(scoring_seconds|seconds|loo_seconds|train_seconds)": [0-9.e+-]+', "", text)


@pytest.fixture(scope="module")
def reference_job(tmp_path_factory):
    w = tmp_path_factory.mktemp("ref") / "work"
    return w, pipeline.run_job(w, _preset(), progress=False)


@pytest.mark.parametrize("run", ["r0", "replay1"])
def test_job_resumes_after_a_kill_right_after_a_runs_first_checkpoint(
    run, reference_job, tmp_path, monkeypatch
):
    """`loop --resume` continues a job killed while one of its runs had only step 0 on disk
    (before: the resume crashed and a rerun was refused, only --force was left)."""
    ref_dir, ref = reference_job
    real = rundir.RunWriter.checkpoint

    def dying(self, step, state):
        real(self, step, state)
        if step == 0 and self.root.name == f".{run}.partial":
            raise Terminated()

    monkeypatch.setattr(rundir.RunWriter, "checkpoint", dying)
    w = tmp_path / "work"
    with pytest.raises(Terminated):
        pipeline.run_job(w, _preset(), progress=False)
    assert list((w / "runs").glob(f".{run}.partial/checkpoints/*")) != []
    monkeypatch.undo()
    summary = pipeline.run_job(w, _preset(), progress=False, resume=True)
    assert _comparable(summary, w) == _comparable(ref, ref_dir)
