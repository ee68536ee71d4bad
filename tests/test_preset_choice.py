"""The preset for a user's own file: chosen by its kind, its data replaced, checked to fit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.config import get_preset
from ganinf_mlops.data.inputs import read_input
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.preset_choice import image_preset, preset_for_input, preset_name


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_preset_by_kind(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(20, 5))
    vectors = read_input(_npz(tmp_path / "v.npz", x=x))
    labelled = read_input(_npz(tmp_path / "l.npz", x=x, y=np.arange(20) % 2))
    images = read_input(_npz(tmp_path / "i.npz", x=np.zeros((10, 8, 8), np.uint8),
                             y=np.arange(10) % 2))  # fmt: skip
    assert [preset_name(u) for u in (vectors, labelled, images)] == ["default", "tabular", "digits"]
    chosen = preset_for_input(vectors)
    assert chosen.name == "default" and chosen.dataset == "npz"
    assert chosen.data_params == {"path": str((tmp_path / "v.npz").resolve())}
    assert chosen.train == get_preset("default").train  # only the data is replaced


def test_image_sizes() -> None:
    assert image_preset((1, 8, 8)) == "digits"
    assert image_preset((3, 28, 28)) == "mnist-sample"
    assert image_preset((1, 12, 16)) == "digits"  # its DCGAN takes H, W divisible by 4
    assert image_preset((3, 32, 32)) == image_preset((1, 32, 32)) == "cifar10-dcgan"
    with pytest.raises(ConfigError, match=r"images of 10x10: .*digits 8x8, mnist-sample 28x28"):
        image_preset((1, 10, 10))


def test_a_named_preset_is_kept_with_the_files_data(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(20, 4))
    user = read_input(_npz(tmp_path / "l.npz", x=x, y=np.arange(20) % 3))
    chosen = preset_for_input(user, get_preset("digits-labelnoise"))
    assert chosen.train.problem == "classifier" and chosen.dataset == "npz"
    assert chosen.job == get_preset("digits-labelnoise").job


@pytest.mark.parametrize(
    ("arrays", "preset", "match"),
    [
        ({"x": np.ones((20, 2))}, "digits-labelnoise", "trains a classifier, which needs class"),
        ({"x": np.ones((20, 2)), "y": np.zeros(20, int)}, "digits-labelnoise", "needs two classes"),
        ({"x": np.zeros((20, 8, 8), np.uint8)}, "tiny", "'gan' problem on vectors; .* images"),
        ({"x": np.ones((20, 2))}, "digits", "'image_gan' problem on images; .* vectors"),
        ({"x": np.zeros((20, 8, 8), np.uint8)}, "digits", "feature classifier of labelled"),
    ],
    ids=["no-labels", "one-class", "gan-images", "image-gan-vectors", "fid-needs-labels"],
)
def test_a_preset_that_cannot_train_on_the_file(
    tmp_path: Path, arrays: dict, preset: str, match: str
) -> None:
    user = read_input(_npz(tmp_path / "d.npz", **arrays))
    with pytest.raises(ConfigError, match=match):
        preset_for_input(user, get_preset(preset))


def test_the_gan_on_vectors_of_any_dimension(tmp_path: Path) -> None:
    """The default kind for unlabelled vectors trains and measures in d = 5 (not only 2D)."""
    import ganinf_mlops as gi

    x = np.random.default_rng(0).normal(size=(60, 5))
    raw = gi.prepare(tmp_path / "raw", path=_npz(tmp_path / "v.npz", x=x))
    run = gi.train(raw, tmp_path / "run", preset="tiny", epochs=1)
    metrics = run.metrics()
    assert all(math.isfinite(metrics[k]) for k in ("all", "fd", "disc_loss")), metrics
