"""CIFAR-10 from torchvision's files on disk (never downloaded): the `cifar10` dataset source.

The format is the "python version" of the archive (https://www.cs.toronto.edu/~kriz/cifar.html)
unpacked under `root`: `cifar-10-batches-py/` holding the pickles `data_batch_1` .. `data_batch_5`
(50,000 training images), `test_batch` (10,000) and `batches.meta` (the class names); each batch
is a dict with `data` uint8 [n, 3072] (R, G, B planes of 32x32) and `labels`. torchvision's
`CIFAR10(root, download=False)` reads them; images become [N, 3, 32, 32] in [-1, 1].

The batches are Python pickles, which can run code when read: point `root` only at files you
trust (the format leaves no safer reader).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ganinf_mlops.data.datasets import DATASETS, RawData
from ganinf_mlops.data.images import _seed, corruption, files_source
from ganinf_mlops.errors import DataError

BASE_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
CIFAR10_CLASSES = 10
# What reading a truncated, foreign or wrongly shaped pickle raises inside torchvision.
_UNREADABLE = (
    pickle.UnpicklingError, EOFError, KeyError, IndexError, AttributeError, TypeError,
    ValueError, ImportError, OSError, RuntimeError,
)  # fmt: skip
GET_DATA = (
    "Nothing is downloaded: unpack cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html into {root}, or run "
    "torchvision.datasets.CIFAR10({root!r}, download=True) on a machine with internet access"
)


def _local_cifar10():
    """torchvision's CIFAR10 reading any files in its format: no md5 check.

    torchvision pins the md5 of each file of the official archive and refuses any other bytes
    (`_check_integrity` and `_load_meta` call `check_integrity(path, md5)`). Its own convention
    for "no checksum" is md5=None, which checks that the file exists. This subclass sets every md5
    to None, so that a subset, a re-export or a test's tiny set in the same format load too; the
    integrity of what was read is ours to record instead: each file's sha256 goes into the
    dataset's params, and so into the version's manifest and lineage.
    """
    from torchvision.datasets import CIFAR10  # heavy import, only for this source

    class LocalCIFAR10(CIFAR10):
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return LocalCIFAR10


def _read_split(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [n, 3, 32, 32] and labels int64 [n] of one split (DataError if unreadable)."""
    folder = root / BASE_FOLDER
    try:
        split = _local_cifar10()(str(root), train=train, download=False)
        images, labels = np.asarray(split.data), np.asarray(split.targets)
    except _UNREADABLE as e:
        raise DataError(
            f"CIFAR-10 files in {folder} are corrupt or unreadable: {type(e).__name__}: {e}"
        ) from None
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3):
        raise DataError(f"CIFAR-10 files in {folder}: expected uint8 32x32x3 images")
    if labels.shape != (images.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(
            f"CIFAR-10 files in {folder} disagree: {images.shape[0]} images, labels "
            f"{labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= CIFAR10_CLASSES):
        raise DataError(f"CIFAR-10 labels in {folder} must lie in 0..{CIFAR10_CLASSES - 1}")
    return images.transpose(0, 3, 1, 2), labels.astype(np.int64)


@DATASETS.register("cifar10")
def cifar10(
    root: str | Path,
    train_size: int | None = None,
    n_eval: int | None = None,
    classes: Sequence[int] | int | None = None,
    noise_frac: float = 0.0,
    corrupt_class: int | None = None,
    corrupt_frac: float = 0.0,
    seed: int = 0,
    label_noise: float = 0.0,
) -> RawData:
    """CIFAR-10 from torchvision's files under `root` (never downloaded), [N, 3, 32, 32].

    x comes from the training batches (`train_size` images drawn at random, None: all 50,000;
    ids are their rows in data_batch_1..5 read in order), x_eval from test_batch (`n_eval` drawn,
    None: all 10,000). `classes` keeps a subset of the labels 0..9; the corruptions are the other
    image sources' (`data.images.corruption`).
    """
    c = corruption(classes, noise_frac, corrupt_class, corrupt_frac, label_noise=label_noise)
    seed = _seed(seed)
    root = Path(root).expanduser().resolve()
    folder = root / BASE_FOLDER
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        which = "" if len(missing) == len(CIFAR10_FILES) else f"; missing: {', '.join(missing)}"
        raise DataError(
            f"CIFAR-10 not found: expected data_batch_1..5, test_batch and batches.meta in "
            f"{folder} (torchvision's layout{which}). " + GET_DATA.format(root=str(root))
        )
    return files_source(
        root, folder, CIFAR10_FILES, lambda is_train: _read_split(root, is_train), train_size,
        n_eval, c, seed,
    )  # fmt: skip
