"""params.yaml: presets written out in full and read back strictly."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ganinf_mlops.config import PRESETS, JobOptions, get_preset
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.params import (
    load_params,
    params_text,
    params_to_preset,
    preset_to_params,
    write_params,
)

REPO = Path(__file__).resolve().parents[1]


def _same_content(a: Any, b: Any) -> None:
    assert a.train == b.train
    assert a.metric == b.metric
    assert a.job == b.job
    assert a.dataset == b.dataset
    assert a.data_params == b.data_params


@pytest.mark.parametrize("name", PRESETS.names())
def test_every_preset_round_trips_through_yaml(name):
    preset = get_preset(name)
    text = params_text(preset)
    back = params_to_preset(yaml.safe_load(text), where="x.yaml")
    _same_content(back, preset)
    assert back.name == "x.yaml"
    # Tuples come back as tuples (frozen dataclasses compare them by type), and each problem
    # kind's config comes back as that kind's class.
    model = back.train.model
    assert isinstance(getattr(model, "g_hidden", getattr(model, "hidden", None)), tuple)
    assert type(back.train) is type(preset.train)
    assert params_text(back) == text


def test_each_problem_kind_writes_only_its_own_fields():
    gan = yaml.safe_load(params_text(get_preset("default")))["train"]
    clf = yaml.safe_load(params_text(get_preset("digits-labelnoise")))["train"]
    shared = {"problem", "batch_size", "epochs", "steps", "seed", "checkpoint_every", "dtype",
              "device", "storage"}  # fmt: skip
    assert set(gan) - shared == {
        "model", "d_optim", "g_optim", "update", "reject_threshold", "reject_embedding", "r1"
    }  # fmt: skip
    assert set(clf) - shared == {"model", "optim"}
    assert set(clf["model"]) == {"arch", "hidden", "bias", "activation", "standardize"}


def test_a_classifier_written_in_the_gan_shaped_layout_still_reads():
    """Runs and params files from before ClassifierConfig borrowed a GAN's fields."""
    new = yaml.safe_load(params_text(get_preset("digits-labelnoise")))
    old = copy.deepcopy(new["train"])
    old["d_optim"] = old.pop("optim")
    old["g_optim"] = {**old["d_optim"], "lr": 0.001}
    old["model"] = {**old["model"], "d_hidden": old["model"].pop("hidden"), "latent_dim": 10,
                    "g_hidden": [32, 32], "norm": "none"}  # fmt: skip
    old.update(update="simultaneous", reject_threshold=None, reject_embedding="pixels")
    metric = {"bandwidth": 1.0, "n_gen": 1000, "seed": 12345, "classifier": None}
    back = params_to_preset({**new, "train": old, "metric": metric})
    assert back.train == get_preset("digits-labelnoise").train
    assert back.metric == get_preset("digits-labelnoise").metric
    assert new["metric"] == {}  # a classifier's targets need no sample settings
    with pytest.raises(ConfigError, match="unknown key metric.n_gen"):
        params_to_preset({**new, "metric": {"n_gen": 5}})


def test_params_sections_and_order():
    params = preset_to_params(get_preset("tiny"))
    assert list(params) == ["data", "train", "metric", "job"]
    assert params["data"] == {"dataset": "gaussian2d", "params": get_preset("tiny").data_params}
    assert params["train"]["d_optim"]["lr"] == 0.01
    assert params["job"]["iterations"] == 2
    text = params_text(get_preset("tiny"))
    assert text.index("data:") < text.index("train:") < text.index("metric:") < text.index("job:")


def test_write_and_load_params(tmp_path):
    preset = get_preset("paper-2d")
    path = tmp_path / "sub" / "params.yaml"
    write_params(path, preset)
    assert path.read_text() == params_text(preset)
    back = load_params(path)
    _same_content(back, preset)
    assert back.name == str(path)


def _params() -> dict[str, Any]:
    return yaml.safe_load(params_text(get_preset("default")))


def _del(d: dict[str, Any], *path: str) -> dict[str, Any]:
    node = d
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return d


def _add(d: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    node = d
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    "path",
    [
        ("train", "d_optim", "lr"),
        ("train", "model", "latent_dim"),
        ("train", "epochs"),
        ("metric", "bandwidth"),
        ("job", "iterations"),
    ],
)
def test_missing_key_names_its_path(path):
    with pytest.raises(ConfigError, match=re.escape(f"missing key {'.'.join(path)}") + "$"):
        params_to_preset(_del(_params(), *path))


@pytest.mark.parametrize(
    "path",
    [
        ("train", "d_optim", "learning_rate"),
        ("train", "model", "depth"),
        ("train", "lr"),
        ("metric", "n_gens"),
        ("job", "iteration"),
    ],
)
def test_unknown_key_names_its_path(path):
    with pytest.raises(ConfigError, match=re.escape(f"unknown key {'.'.join(path)}") + "$"):
        params_to_preset(_add(_params(), 1, *path))


@pytest.mark.parametrize("section", ["data", "train", "metric", "job"])
def test_missing_section(section):
    with pytest.raises(ConfigError, match=f"missing key {section}"):
        params_to_preset(_del(_params(), section))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: [p], "expected a mapping"),
        (lambda p: _add(p, 1, "data", "extra"), "exactly the keys dataset and params"),
        (lambda p: _del(p, "data", "dataset"), "exactly the keys dataset and params"),
        (lambda p: _add(p, [1, 2], "data", "params"), "data.params must be a mapping"),
        (lambda p: _add(p, [1, 2], "train", "model"), "train.model: expected a mapping"),
        (lambda p: _add(p, 0.0, "train", "d_optim", "lr"), "learning rate must be positive"),
        (lambda p: _add(p, "sideways", "train", "update"), "unknown update 'sideways'"),
        (lambda p: _add(p, -1.0, "train", "r1"), "r1 must be >= 0"),
        (lambda p: _add(p, float("nan"), "train", "r1"), "r1 must be a finite number"),
        (lambda p: _add(p, 0, "job", "iterations"), "iterations must be >= 1"),
    ],
)
def test_invalid_params(edit, match):
    with pytest.raises(ConfigError, match=match):
        params_to_preset(edit(_params()))


def test_load_params_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["train: [1, 2\n", "a: b: c\n", "\t- x\n"])
def test_load_params_invalid_yaml(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="cannot read params file"):
        load_params(path)


def test_load_params_of_a_directory_or_empty_file(tmp_path):
    with pytest.raises(ConfigError):
        load_params(tmp_path)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(empty)


def test_repo_params_yaml_is_the_default_preset():
    """Byte for byte what `ganinf params --preset default` writes: `dvc repro` runs `ganinf run`
    (a cleanse stage passes its data through where the job would stop, so min_agreement stays)."""
    assert (REPO / "params.yaml").read_text() == params_text(get_preset("default"))
    repo = load_params(REPO / "params.yaml")
    assert repo.job == get_preset("default").job and isinstance(repo.job, JobOptions)


@pytest.mark.parametrize(
    "path,value,match",
    [
        (("train", "batch_size"), 20.5, "train.batch_size must be an integer"),
        (("train", "epochs"), "3", "train.epochs must be an integer"),
        (("train", "model", "d_hidden"), "32", "train.model.d_hidden must be a list"),
        (("train", "model", "d_hidden"), [32, "x"], r"train.model.d_hidden\[1\]"),
        (("train", "seed"), "zero", "train.seed must be an integer"),
        (("train", "model", "bias"), "yes", "train.model.bias must be true or false"),
        (("train", "d_optim", "lr"), "fast", "train.d_optim.lr must be a number"),
        (("metric", "bandwidth"), float("nan"), "metric.bandwidth must be a finite number"),
        (("job", "loo"), True, "job.loo must be an integer"),
    ],
)
def test_badly_typed_values_name_their_key(path, value, match):
    params = preset_to_params(get_preset("tiny"))
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=match):
        params_to_preset(params)


def test_yaml_1_1_exponent_strings_are_numbers():
    text = params_text(get_preset("default")).replace("eps: 1.0e-08", "eps: 1e-8", 1)
    preset = params_to_preset(yaml.safe_load(text.replace("lr: 0.05", "lr: 5e-2", 1)))
    assert preset.train.d_optim.eps == 1e-8 and isinstance(preset.train.d_optim.eps, float)
    assert preset.train.d_optim.lr == get_preset("default").train.d_optim.lr


def test_yaml_alias_bomb_and_huge_files_are_refused(tmp_path):
    """Nested aliases expand to gigabytes ("billion laughs"): refused before expanding."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)
    ]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"YAML aliases \(\*a\) not allowed"):
        load_params(bomb)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 1_000_001 + "\n")
    with pytest.raises(ConfigError, match="larger than 1,000,000 bytes"):
        load_params(big)


def test_only_parameters_in_effect_are_logged() -> None:
    """Plain SGD has no momentum or betas, no rejection has no embedding, steps win over epochs;
    a data source's defaults are filled in, as params.yaml would hold them."""
    from ganinf_mlops.params import data_params_in_full, in_effect

    flat = {
        "train.epochs": None, "train.steps": 10, "train.reject_threshold": None,
        "train.reject_embedding": "pixels", "train.d_optim.name": "sgd",
        "train.d_optim.momentum": 0.9, "train.d_optim.beta1": 0.5, "train.d_optim.lr": 0.1,
        "train.g_optim.name": "adam", "train.g_optim.momentum": 0.9, "train.g_optim.beta1": 0.5,
        "train.g_optim.eps": 1e-8,
    }  # fmt: skip
    assert in_effect(flat) == {
        "train.steps": 10, "train.reject_threshold": None, "train.d_optim.name": "sgd",
        "train.d_optim.lr": 0.1, "train.g_optim.name": "adam", "train.g_optim.beta1": 0.5,
        "train.g_optim.eps": 1e-8,
    }  # fmt: skip
    on = {**flat, "train.reject_threshold": 0.1, "train.steps": None, "train.epochs": 3}
    assert {"train.reject_embedding", "train.epochs"} <= set(in_effect(on))
    full = data_params_in_full("gaussian2d", {"n": 50})
    assert full["n"] == 50 and full["cov"] == [[1.0, 0.8], [0.8, 1.0]] and full["seed"] == 0
