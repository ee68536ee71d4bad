"""The named presets (ganinf_mlops/presets.py): each names a registered dataset, problem, model and
method, its data parameters prepare a (small) raw version, and its networks take that data."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch
from conftest import write_cifar10

from ganinf_mlops.config import PRESETS, Preset, get_preset
from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.data.version import DatasetVersion, create_raw_version
from ganinf_mlops.influence.methods import METHODS
from ganinf_mlops.models import CLASSIFIER_MODELS, GAN_MODELS
from ganinf_mlops.problems import PROBLEMS

NAMES = PRESETS.names()
# A prepare of a few instances per dataset (the preset's own size can take seconds).
SMALL = {
    "gaussian2d": {"n": 40, "n_eval": 20},
    "digits": {"n_eval": 30, "train_size": 60},
    "mnist_sample": {"n_eval": 30, "train_size": 60},
    "wine": {"n_eval": 30, "train_size": 60},
    "breast_cancer": {"n_eval": 30, "train_size": 60},
    "cifar10": {"n_eval": 30, "train_size": 60},  # from a tiny fake root (small_versions)
}


def test_the_documented_presets_are_registered():
    assert {"default", "tiny", "linear-2d", "ring-2d", "digits", "digits-tiny"} <= set(NAMES)
    assert all(get_preset(n).name == n for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_preset_names_registered_parts(name):
    p = get_preset(name)
    assert isinstance(p, Preset) and p.description.strip()
    assert p.dataset in DATASETS
    assert p.train.problem in PROBLEMS
    models = CLASSIFIER_MODELS if p.train.problem == "classifier" else GAN_MODELS
    assert p.train.model.arch in models
    # The job's method is a baseline, or influence on a target that the preset's problem has.
    target = METHODS.get(p.job.method).target
    assert target is None or target in PROBLEMS.get(p.train.problem).target_names
    # The seed of the data is explicit, so `--param seed=...` has a key to replace.
    assert "seed" in p.data_params


@pytest.fixture(scope="module")
def small_versions(tmp_path_factory) -> dict[str, DatasetVersion]:
    """One small raw version per dataset the presets use, prepared with the parameters of the
    first preset that names it (mnist_sample takes 3 s to load: once, not per preset)."""
    out: dict[str, DatasetVersion] = {}
    for name in NAMES:
        p = get_preset(name)
        if p.dataset in out or p.dataset not in SMALL:
            continue
        d = tmp_path_factory.mktemp(p.dataset) / "raw"
        small = dict(SMALL[p.dataset])
        if p.dataset == "cifar10":  # read from files: a tiny set in their format
            small["root"] = d.parent / "cifar"
            write_cifar10(small["root"], n_train=100, n_test=40)
        out[p.dataset] = create_raw_version(d, p.dataset, **{**p.data_params, **small})
    return out


@pytest.mark.parametrize("dataset", sorted(SMALL))
def test_small_prepare_of_each_dataset(small_versions, dataset):
    raw = small_versions[dataset]
    small = SMALL[dataset]
    n = small.get("n") or small["train_size"]
    assert raw.n == n and raw.x_eval.shape[0] == small["n_eval"]
    assert raw.manifest.parent_digest is None


@pytest.mark.parametrize("name", NAMES)
def test_data_params_bind_and_models_take_the_data(name, small_versions):
    """The preset's data parameters are ones its dataset takes, and its networks map a batch of
    that data to one logit (GAN) or one logit per class (classifier)."""
    p = get_preset(name)
    inspect.signature(DATASETS.get(p.dataset)).bind(**p.data_params)  # TypeError if not
    if p.dataset not in SMALL:
        pytest.skip(f"no small size for dataset {p.dataset!r}")
    raw = small_versions[p.dataset]
    shape = tuple(raw.x.shape[1:])
    dtype = getattr(torch, p.train.dtype)
    x = torch.tensor(np.asarray(raw.x[:5]), dtype=dtype)
    model = p.train.model
    if p.train.problem == "classifier":
        n_classes = int(np.max(raw.y)) + 1
        net = CLASSIFIER_MODELS.get(model.arch)(model, shape, n_classes, 0, dtype, "cpu")
        assert net(x).shape == (5, n_classes)
        return
    gen, disc = GAN_MODELS.get(model.arch)(model, shape, 0, dtype, "cpu")
    fake = gen(torch.zeros(5, model.latent_dim, dtype=dtype))
    assert fake.shape == (5, *shape)
    assert disc(x).shape == (5, 1) and disc(fake).shape == (5, 1)


def test_tiny_is_smaller_than_default():
    """`tiny` is the smoke-test size of the 2D setting: fewer instances and steps."""
    tiny, default = get_preset("tiny"), get_preset("default")
    assert tiny.dataset == default.dataset
    assert tiny.data_params["n"] < default.data_params["n"]
    assert tiny.train.steps < default.train.steps


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_state_their_budget_in_steps(name):
    """A preset's budget is steps (a dataset of another size gets as many), never epochs."""
    train = get_preset(name).train
    assert train.steps is not None and train.epochs is None


def test_presets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_preset("tiny").train.epochs = 1  # type: ignore[misc]


def test_a_dataset_of_another_size_gets_the_presets_steps(tmp_path):
    """The user's case: 400 points trained with a preset get its tuned number of steps (5 epochs
    of tiny's 200 points are 50 steps; 5 epochs of 400 would be 100)."""
    from ganinf_mlops.train.rundir import RunDir
    from ganinf_mlops.train.trainer import train

    p = get_preset("tiny")
    version = create_raw_version(tmp_path / "v", p.dataset, **{**p.data_params, "n": 400})
    run = RunDir(train(version, p.train, p.metric, tmp_path / "r", progress=False))
    assert run.n_steps == p.train.steps == 50
    assert run.steps_per_epoch == 400 // p.train.batch_size


def test_the_budget_is_one_of_steps_and_epochs():
    """--epochs alone clears a preset's steps (which would win over it), --steps alone its
    epochs; a config with neither is refused."""
    from ganinf_mlops.config import with_train_options
    from ganinf_mlops.errors import ConfigError

    train = get_preset("default").train
    by_epochs = with_train_options(train, epochs=3)
    assert (by_epochs.epochs, by_epochs.steps) == (3, None)
    by_steps = with_train_options(by_epochs, steps=7)
    assert (by_steps.epochs, by_steps.steps) == (None, 7)
    both = with_train_options(train, epochs=3, steps=7)
    assert (both.epochs, both.steps) == (3, 7)
    with pytest.raises(ConfigError, match="both null"):
        dataclasses.replace(train, steps=None)
