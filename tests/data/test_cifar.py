"""The CIFAR-10 source (data/cifar.py): torchvision's on-disk format, read without its md5 pins,
split, filtered and corrupted like the other image sources; a missing root says where to put
the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_cifar10

from ganinf_mlops.data.cifar import BASE_FOLDER, CIFAR10_FILES, cifar10
from ganinf_mlops.data.datasets import DATASETS
from ganinf_mlops.data.images import IMAGE_SHAPES
from ganinf_mlops.errors import ConfigError, DataError


def test_cifar10_reads_torchvision_files(tmp_path: Path) -> None:
    data = write_cifar10(tmp_path, n_train=60, n_test=30)
    raw = cifar10(tmp_path, classes=[1, 2], corrupt_class=5, corrupt_frac=0.25, seed=4)
    # 6 images each of classes 1 and 2 (rows k mod 10), 3 fives mixed in (round_half_up(3.0))
    assert raw.x.shape == (15, 3, 32, 32) and raw.x_eval.shape == (6, 3, 32, 32)
    assert IMAGE_SHAPES["cifar10"] == raw.x.shape[1:] and "cifar10" in DATASETS
    np.testing.assert_array_equal(raw.y, data["train_labels"][raw.ids])
    # channels first, the R, G, B planes in order, pixels in [-1, 1]
    expected = data["train"][raw.ids].transpose(0, 3, 1, 2) / 127.5 - 1.0
    np.testing.assert_array_equal(raw.x, expected)
    assert sorted(raw.ids[raw.is_anomaly].tolist()) == raw.ids[raw.y == 5].tolist()
    assert int((raw.y == 5).sum()) == 3
    assert set(raw.y_eval.tolist()) == {1, 2}
    assert raw.params["root"] == str(tmp_path.resolve())
    assert sorted(raw.params["sha256"]) == sorted(CIFAR10_FILES)

    sub = cifar10(tmp_path, train_size=25, n_eval=7, seed=1)
    assert sub.x.shape[0] == 25 and sub.x_eval.shape[0] == 7
    assert (sub.params["train_size"], sub.params["n_eval"]) == (25, 7)
    # the same seed draws the same images; another seed others
    assert np.array_equal(cifar10(tmp_path, train_size=25, seed=1).ids, sub.ids)
    assert not np.array_equal(cifar10(tmp_path, train_size=25, seed=2).ids, sub.ids)
    with pytest.raises(ConfigError, match="train_size=61 exceeds the 60"):
        cifar10(tmp_path, train_size=61)
    with pytest.raises(ConfigError, match="class label in 0..9"):
        cifar10(tmp_path, classes=[10])


def test_the_official_md5s_are_not_required_but_the_bytes_are_recorded(tmp_path: Path) -> None:
    """torchvision's own CIFAR10 refuses files other than the official archive's; ours reads
    them and records each file's sha256 instead, so changed bytes change the params."""
    from torchvision.datasets import CIFAR10

    write_cifar10(tmp_path, n_train=20, n_test=10)
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        CIFAR10(str(tmp_path), download=False)
    before = cifar10(tmp_path).params["sha256"]
    write_cifar10(tmp_path / "other", n_train=20, n_test=10, seed=1)
    name = "data_batch_3"
    other = (tmp_path / "other" / BASE_FOLDER / name).read_bytes()
    (tmp_path / BASE_FOLDER / name).write_bytes(other)
    after = cifar10(tmp_path).params["sha256"]
    assert [k for k in before if before[k] != after[k]] == [name]


def test_cifar10_missing_or_corrupt_files(tmp_path: Path) -> None:
    where = tmp_path / "nowhere"
    with pytest.raises(DataError) as e:
        cifar10(where)
    message = str(e.value)
    assert message.startswith("CIFAR-10 not found: expected data_batch_1..5, test_batch and")
    assert "missing:" not in message  # all of them: the list would repeat the expected one
    assert str(where / BASE_FOLDER) in message and "Nothing is downloaded" in message
    assert "cifar-10-python.tar.gz" in message and "download=True" in message
    write_cifar10(tmp_path, n_train=20, n_test=10)
    folder = tmp_path / BASE_FOLDER
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match=r"missing: test_batch\)"):
        cifar10(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="corrupt or unreadable"):
        cifar10(tmp_path)
    (folder / "test_batch").write_bytes((folder / "data_batch_1").read_bytes()[:100])
    with pytest.raises(DataError, match="corrupt or unreadable"):
        cifar10(tmp_path)
