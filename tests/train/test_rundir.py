"""The run directory format: state (un)flattening, reading a trained run back, refusing bad meta."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.func import functional_call

from ganinf_mlops import keys
from ganinf_mlops.config import JobOptions, MetricConfig
from ganinf_mlops.data.version import write_version
from ganinf_mlops.errors import DigestMismatchError, TrajectoryError
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems import create_problem
from ganinf_mlops.problems.gan import GanConfig, GanProblem, ModelConfig
from ganinf_mlops.problems.schedule import make_schedule
from ganinf_mlops.train.rundir import (
    INTEGRITY,
    RunDir,
    checkpoint_name,
    checkpoint_steps,
    flatten_state,
    unflatten_state,
)
from ganinf_mlops.train.trainer import train

CFG = GanConfig(
    model=ModelConfig(latent_dim=3, g_hidden=(5,), d_hidden=(6,)),
    d_optim=OptimConfig("sgd", lr=0.05),
    g_optim=OptimConfig("sgd", lr=0.05),
    batch_size=4,
    epochs=2,
    checkpoint_every=4,
)  # 12 instances: 3 steps per epoch, 6 steps, checkpoints 0, 4, 6
METRIC = MetricConfig(n_gen=11)


def unseal(run: Path) -> Path:
    """`run` as written before runs recorded their digests (no integrity.json): the checks
    behind the digest, which such runs still get, can then be reached by editing a file."""
    (run / INTEGRITY).unlink()
    meta = json.loads((run / "meta.json").read_text())
    del meta["integrity"]
    (run / "meta.json").write_text(json.dumps(meta))
    return run


TOP = ("d", "g", "d_opt", "g_opt")


def _assert_same_tree(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for k in a:
            _assert_same_tree(a[k], b[k])
    else:
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        assert a.dtype == b.dtype and torch.equal(a, b)


def _state(d_name: str, g_name: str) -> dict[str, Any]:
    cfg = GanConfig(
        model=CFG.model, d_optim=OptimConfig(d_name), g_optim=OptimConfig(g_name), batch_size=4
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2))
    problem = create_problem(cfg, METRIC, x, x, make_schedule(8, 4, 1, 0))
    return problem.initial_state()


# ---- flatten / unflatten ---------------------------------------------------------------------


@pytest.mark.parametrize(("d_name", "g_name"), [("sgd", "sgd"), ("adam", "momentum")])
def test_flatten_unflatten_round_trip(d_name, g_name):
    state = _state(d_name, g_name)
    flat = flatten_state(state)
    assert all("/" in k and isinstance(v, torch.Tensor) for k, v in flat.items())
    assert any(k.startswith("d/") for k in flat) and any(k.startswith("g/") for k in flat)
    if d_name == "adam":
        assert any(k.startswith("d_opt/m/") for k in flat)
        assert any(k.startswith("d_opt/v/") for k in flat)
    _assert_same_tree(unflatten_state(flat, top=TOP), state)


def test_empty_optimizer_states_need_top():
    state = _state("sgd", "sgd")
    assert state["d_opt"] == {} and state["g_opt"] == {}
    flat = flatten_state(state)
    assert not any(k.startswith(("d_opt", "g_opt")) for k in flat)
    assert set(unflatten_state(flat)) == {"d", "g"}  # an empty SGD state leaves no trace
    assert set(unflatten_state(flat, top=TOP)) == set(TOP)


def test_flatten_detaches_and_copies_layout():
    p = torch.arange(6.0, dtype=torch.float64).reshape(2, 3).T.requires_grad_(True)
    flat = flatten_state({"a": {"b": {"c": p}}})
    assert list(flat) == ["a/b/c"]
    out = flat["a/b/c"]
    assert not out.requires_grad and out.is_contiguous() and torch.equal(out, p.detach())


def test_checkpoint_steps_and_names():
    assert checkpoint_steps(6, 4) == [0, 4, 6]
    assert checkpoint_steps(8, 4) == [0, 4, 8]
    assert checkpoint_steps(3, 10) == [0, 3]
    assert checkpoint_name(12) == "step_00000012.safetensors"


# ---- a trained run read back -----------------------------------------------------------------


@pytest.fixture
def run(tiny_version, tmp_path) -> Path:
    return train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False)


def test_trained_run_reads_back(run, tiny_version):
    r = RunDir(run)
    assert r.n_steps == 6 and r.steps_per_epoch == 3
    assert r.checkpoint_steps == [0, 4, 6]
    assert r.train_config == CFG and r.metric_config == METRIC
    assert r.n_instances == 12 and r.dataset_digest == tiny_version.digest
    assert r.state_keys == TOP
    assert r.schedule_kind == "fresh" and r.replay_parent is None
    assert r.dataset_path.resolve() == tiny_version.path.resolve()

    metrics = r.metrics()
    assert keys.TRAIN_SECONDS in metrics
    results = r.results()
    assert set(results) == {*GanProblem.result_names, keys.N_INSTANCES, keys.N_STEPS}
    assert results[keys.N_STEPS] == 6 and results[keys.N_INSTANCES] == 12
    assert all(results[k] == metrics[k] for k in results)

    names, losses = r.losses()
    assert names == ("d_loss", "g_loss")
    assert losses.shape == (6, 2) and losses.dtype == np.float64
    # The first row is the loss of step 0 from the initial checkpoint, written exactly.
    problem = r.problem(tiny_version)
    assert isinstance(problem, GanProblem)
    inp = problem.inputs(0)
    _, (ld, lg) = problem.step(r.load_state(0), inp.mask, inp.data, 0)
    assert losses[0].tolist() == [float(ld), float(lg)]

    samples = r.final_samples(tiny_version)
    assert isinstance(samples, np.ndarray) and samples.shape == (METRIC.n_gen, 2)
    final = r.load_state(6)
    assert set(final) == set(TOP) and final["d_opt"] == {}
    expected = functional_call(problem.gen, final["g"], (problem.z_eval,))
    assert np.array_equal(samples, expected.detach().numpy())


def test_results_drop_timing_changes_and_non_numbers(run):
    path = run / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics.update(
        {
            keys.PREDICTED_CHANGE: 0.1,
            keys.ACTUAL_CHANGE: 0.2,
            keys.FRESH_CHANGE: 0.3,
            keys.SCORING_SECONDS: 1.5,
            "flag": True,
            "label": "x",
            "extra": 7,
        }
    )
    unseal(run)
    path.write_text(json.dumps(metrics))
    r = RunDir(run)
    assert r.metrics() == metrics
    results = r.results()
    assert results["extra"] == 7
    assert not {keys.TRAIN_SECONDS, keys.SCORING_SECONDS, "flag", "label"} & set(results)
    assert not any(k.endswith("_change") for k in results)


def test_replay_parent(run, tiny_version, tmp_path):
    replay = train(
        tiny_version, CFG, METRIC, tmp_path / "sub" / "replay", replay=run, progress=False
    )
    r = RunDir(replay)
    assert r.schedule_kind == "replay"
    parent = r.replay_parent
    assert parent is not None and parent.resolve() == run.resolve()
    assert r.dataset_path.resolve() == tiny_version.path.resolve()
    assert r.results() == RunDir(run).results()  # nothing dropped: the parent's trajectory


def test_a_run_records_the_job_settings_it_was_trained_under(tiny_version, tmp_path):
    """meta.json's "job" holds the scoring settings of the config (`JOB_FIELDS`), covered by
    the integrity record; a replay takes its parent's, as it takes the parent's config; a run
    trained without them (or before they were recorded) has none."""
    job = JobOptions(method="fd", ensemble=3, last_epochs=1, average_order=True, seed=4, loo=8)
    run = train(tiny_version, CFG, METRIC, tmp_path / "run", progress=False, job=job)
    recorded = RunDir(run).verify().recorded_job
    assert recorded == JobOptions(
        method="fd", ensemble=3, last_epochs=1, average_order=True, seed=4, loo=8
    )
    assert json.loads((run / "meta.json").read_text())["job"]["ensemble"] == 3
    other = JobOptions(ensemble=5)
    replay = train(
        tiny_version, CFG, METRIC, tmp_path / "replay", replay=run, progress=False, job=other
    )
    assert RunDir(replay).recorded_job == recorded
    plain = train(tiny_version, CFG, METRIC, tmp_path / "plain", progress=False)
    assert RunDir(plain).recorded_job is None and "job" not in RunDir(plain).meta
    # edited after it was written: refused by its digest
    meta = json.loads((run / "meta.json").read_text())
    meta["job"]["ensemble"] = 1
    (run / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TrajectoryError, match="was changed after it was written"):
        RunDir(run)


def test_final_samples_refuse_other_data(run, tiny_version, tmp_path):
    other = write_version(
        tmp_path / "other",
        tiny_version.x * 2,
        tiny_version.ids,
        tiny_version.x_eval,
        dataset="test",
        params={},
    )
    with pytest.raises(DigestMismatchError):
        RunDir(run).final_samples(other)


def test_load_state_of_a_step_without_checkpoint(run):
    r = RunDir(run)
    for step in (1, 5, 7, -1):
        with pytest.raises(TrajectoryError, match=f"no checkpoint at step {step}"):
            r.load_state(step)


def test_checkpoint_with_wrong_dtype_is_refused(run):
    unseal(run)
    path = run / "checkpoints" / checkpoint_name(4)
    flat = {k: v.to(torch.float32) for k, v in load_file(str(path)).items()}
    save_file(flat, str(path))
    with pytest.raises(TrajectoryError, match="checkpoint 4"):
        RunDir(run).load_state(4)


def test_checkpoint_of_another_shape_is_refused(run):
    unseal(run)
    path = run / "checkpoints" / checkpoint_name(4)
    flat = load_file(str(path))
    key = sorted(flat)[0]
    flat[key] = torch.zeros(3, 3, dtype=flat[key].dtype)
    save_file(flat, str(path))
    with pytest.raises(TrajectoryError, match=f"checkpoint 4 tensor {key} has shape"):
        RunDir(run).load_state(4)


def test_edited_model_config_is_refused(run, tiny_version):
    """meta.json's model no longer fits the recorded checkpoints (wider hidden layers)."""

    def wider(meta):
        meta["train"]["model"]["d_hidden"] = [w + 1 for w in meta["train"]["model"]["d_hidden"]]
        return meta

    _tamper(run, wider)
    with pytest.raises(TrajectoryError, match="do not fit the model its meta.json describes"):
        RunDir(run).problem(tiny_version)


def _tamper(run: Path, edit: Any) -> None:
    path = unseal(run) / "meta.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(edit(meta)))


def _drop(*path: str):
    def edit(meta: dict[str, Any]) -> dict[str, Any]:
        node = meta
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        return meta

    return edit


def _set(key: str, value: Any):
    def edit(meta: dict[str, Any]) -> dict[str, Any]:
        meta[key] = value
        return meta

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda meta: [meta], "unsupported format_version 'list'"),
        (_set("format_version", 99), "unsupported format_version 99"),
        (_drop("format_version"), "unsupported format_version None"),
        (_set("checkpoint_steps", []), "checkpoints must include step 0 and the final step"),
        (_set("checkpoint_steps", [0, 4]), "checkpoints must include step 0 and the final step"),
        (_set("checkpoint_steps", [4, 6]), "checkpoints must include step 0 and the final step"),
        (_drop("train"), "invalid metadata"),
        (_drop("metric"), "invalid metadata"),
        (_drop("dataset", "digest"), "invalid metadata"),
        (_drop("n_steps"), "invalid metadata"),
        (_drop("schedule"), "invalid metadata"),
        (_drop("checkpoint_steps"), "invalid metadata"),
        (_drop("train", "d_optim", "lr"), "train.d_optim.lr"),
        (_set("n_steps", "six"), "invalid metadata"),
        (_set("dataset", None), "invalid metadata"),
        (_set("job", {"ensemble": 0}), "invalid metadata"),
        (_set("job", {"colour": "red"}), "invalid metadata"),
        (_set("job", ["fd"]), "invalid metadata"),
    ],
)
def test_tampered_meta_is_refused_in_one_line(run, edit, match):
    _tamper(run, edit)
    with pytest.raises(TrajectoryError, match=match) as info:
        RunDir(run)
    assert "\n" not in str(info.value)
    assert str(run) in str(info.value)


def test_meta_that_is_not_json(run):
    unseal(run)
    (run / "meta.json").write_text("{not json")
    with pytest.raises(TrajectoryError, match="not valid JSON") as info:
        RunDir(run)
    assert "\n" not in str(info.value)


def test_runs_without_state_keys_load_as_gan_states(run):
    _tamper(run, _drop("state_keys"))
    r = RunDir(run)
    assert r.state_keys == TOP
    assert set(r.load_state(0)) == set(TOP)


def test_unreadable_losses(run):
    unseal(run)
    (run / "losses.csv").write_text("step,d_loss,g_loss\n0,1.0,oops\n")
    with pytest.raises(TrajectoryError, match="unreadable losses.csv"):
        RunDir(run).losses()
    (run / "metrics.json").write_text("[1, 2]")
    with pytest.raises(TrajectoryError, match="not a JSON object"):
        RunDir(run).metrics()
