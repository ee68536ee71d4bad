"""Recorded trajectories replay bit for bit and refuse foreign data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils._pytree import tree_leaves

from ganinf_mlops.config import MetricConfig
from ganinf_mlops.data.version import write_version
from ganinf_mlops.errors import DigestMismatchError, OutputExistsError, TrajectoryError
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.train.rundir import RunDir
from ganinf_mlops.train.trainer import run_steps, train

CFG = GanConfig(
    model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,)),
    d_optim=OptimConfig("adam", lr=0.01),
    g_optim=OptimConfig("momentum", lr=0.05),
    batch_size=4,
    epochs=3,
    update="alternating",
    checkpoint_every=4,
)
METRIC = MetricConfig(n_gen=11)


def test_replay_from_any_checkpoint_is_bit_exact(tiny_version, tmp_path):
    traj = RunDir(train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False))
    assert traj.checkpoint_steps == [0, 4, 8, 9]
    problem = traj.problem(tiny_version)
    for start, stop in [(0, 4), (4, 8), (8, 9), (0, 9)]:
        replayed = run_steps(problem, traj.load_state(start), start, stop)
        for a, b in zip(tree_leaves(replayed), tree_leaves(traj.load_state(stop)), strict=True):
            assert torch.equal(a, b)


def test_run_directory_contents(tiny_version, tmp_path):
    run = train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["dataset"]["digest"] == tiny_version.digest
    assert meta["schedule"]["kind"] == "fresh"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"all", "disc_loss", "gen_mean_error", "gen_cov_error"} <= set(metrics)
    lines = (run / "losses.csv").read_text().splitlines()
    assert lines[0] == "step,d_loss,g_loss" and len(lines) == 1 + 9
    assert all(float(v) > 0 for line in lines[1:] for v in line.split(",")[1:])
    traj = RunDir(run)
    assert traj.instance_ids.tolist() == tiny_version.ids.tolist()
    assert traj.schedule.indices.shape == (9, 4)


def test_refuses_existing_output_and_other_data(tiny_version, tmp_path):
    run = train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False)
    with pytest.raises(OutputExistsError):
        train(tiny_version, CFG, METRIC, run, progress=False)
    train(tiny_version, CFG, METRIC, run, force=True, progress=False)
    other = write_version(
        tmp_path / "other",
        tiny_version.x + 1,
        tiny_version.ids,
        tiny_version.x_eval,
        dataset="test",
        params={},
    )
    with pytest.raises(DigestMismatchError):
        RunDir(run).check_dataset(other.digest)
    with pytest.raises(DigestMismatchError):
        train(other, CFG, METRIC, tmp_path / "replay", replay=run, progress=False)
    assert not (tmp_path / "replay").exists()


def test_corrupt_run_directory(tiny_version, tmp_path):
    run = train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False)
    (run / "checkpoints" / "step_00000004.safetensors").write_bytes(b"garbage")
    with pytest.raises(TrajectoryError, match="corrupt"):
        RunDir(run).load_state(4)
    (run / "schedule.safetensors").unlink()
    with pytest.raises(TrajectoryError, match="missing"):
        _ = RunDir(run).schedule  # read when first used
    with pytest.raises(TrajectoryError, match="not a run directory"):
        RunDir(tmp_path)


def test_diverging_training_leaves_nothing(tiny_version, tmp_path):
    wild = GanConfig(
        model=CFG.model,
        d_optim=OptimConfig("sgd", lr=1e6),
        g_optim=OptimConfig("sgd", lr=1e6),
        batch_size=4,
        epochs=30,
    )
    with pytest.raises(TrajectoryError, match="diverged"):
        train(tiny_version, wild, METRIC, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    assert not any(p.name.startswith(".run") for p in tmp_path.iterdir())


def test_replay_with_everything_kept_reproduces_parent(tiny_version, tmp_path):
    run = train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False)
    again = train(tiny_version, CFG, METRIC, tmp_path / "replay", replay=run, progress=False)
    a = json.loads((run / "metrics.json").read_text())
    b = json.loads((again / "metrics.json").read_text())
    assert a["all"] == b["all"]
    assert np.array_equal(RunDir(again).schedule.mask.numpy(), np.ones((9, 4)))
