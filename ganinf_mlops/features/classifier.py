"""A small CNN classifier of the real images, the feature map of our FID and Inception Score.

Architecture (input [N, C, H, W] or one [C, H, W] image, values in [-1, 1]):

    conv 8@5x5 (pad 2) -> ReLU -> maxpool 2 -> conv 8@5x5 (pad 2) -> ReLU -> maxpool 2
    -> flatten -> dense 128 + sigmoid (`features`) -> dense n_classes (`forward`: logits)

The network is a plain function of its parameters (no batch norm, no dropout, no buffers), so
`torch.func.functional_call` in float64 differentiates metrics through it w.r.t. the images
(`layer="features"` selects the feature layer through `forward`).

On disk a classifier is a directory of `weights.safetensors` and `classifier.json`; the JSON
records what it was trained on, the weights' sha256 and a `digest` of everything (see
`record_digest`), so a run can name the exact feature map its metrics used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "classifier.json"
CHANNELS = 8
KERNEL = 5
HIDDEN = 128
# classifier.json: exact key set and JSON types (`type(v) is t`, so True is not an int).
_TYPES: dict[str, type] = {
    "format_version": int,
    "data_digest": str,
    "dataset": str,
    "input_shape": list,
    "n_classes": int,
    "test_accuracy": float,
    "train_params": dict,
    "weights_sha256": str,
    "digest": str,
}


def _check_shape(input_shape: tuple[int, ...], n_classes: int) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    # Two 2x2 poolings need at least 4 pixels per side to leave one.
    if [type(s) for s in shape] != [int] * 3 or min(shape[0], shape[1] // 4, shape[2] // 4) < 1:
        raise ConfigError(f"classifier input shape must be (C >= 1, H >= 4, W >= 4), got {shape}")
    if type(n_classes) is not int or n_classes < 2:
        raise ConfigError(f"classifier needs n_classes >= 2, got {n_classes!r}")
    return shape  # type: ignore[return-value]


class FeatureCNN(nn.Module):
    """conv-pool-conv-pool-dense(128, sigmoid)-dense(n_classes); see the module docstring."""

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        self.input_shape = _check_shape(input_shape, n_classes)
        self.n_classes = n_classes
        c, h, w = self.input_shape
        self.conv1 = nn.Conv2d(c, CHANNELS, KERNEL, padding=KERNEL // 2)
        self.conv2 = nn.Conv2d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2)
        self.hidden = nn.Linear(CHANNELS * (h // 4) * (w // 4), HIDDEN)
        self.logits = nn.Linear(HIDDEN, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d sigmoid layer: [N, C, H, W] -> [N, 128] (or [C, H, W] -> [128])."""
        if x.ndim not in (3, 4) or tuple(x.shape[-3:]) != self.input_shape:
            raise ValueError(
                f"classifier expects images [N, {', '.join(map(str, self.input_shape))}], "
                f"got {tuple(x.shape)}"
            )
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return torch.sigmoid(self.hidden(h.flatten(-3)))

    def forward(
        self, x: torch.Tensor, *, layer: Literal["logits", "features"] = "logits"
    ) -> torch.Tensor:
        """Class logits [N, n_classes], or with layer="features" the 128-d features (so that
        `torch.func.functional_call(model, params, x, {"layer": "features"})` reaches them)."""
        if layer == "features":
            return self.features(x)
        if layer != "logits":
            raise ValueError(f"layer must be 'logits' or 'features', got {layer!r}")
        return self.logits(self.features(x))


def _tensor(x: Any) -> torch.Tensor:
    # A copy of NumPy input: dataset versions hold read-only arrays, which torch warns about.
    return torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x)


def _images(x: Any, what: str) -> torch.Tensor:
    t = _tensor(x)
    if t.ndim != 4 or not t.is_floating_point() or t.shape[0] < 1:
        raise DataError(f"{what}: expected float images [N, C, H, W], got {t.dtype} {t.shape}")
    if not torch.isfinite(t).all() or t.abs().max() > 1 + 1e-6:
        raise DataError(f"{what}: image values must be finite and in [-1, 1]")
    return t


def _labels(y: Any, n: int, n_classes: int, what: str) -> torch.Tensor:
    t = _tensor(y)
    if t.shape != (n,) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise DataError(f"{what}: expected {n} integer labels, got {t.dtype} {t.shape}")
    if n and (t.min() < 0 or t.max() >= n_classes):
        raise DataError(f"{what}: labels must lie in [0, {n_classes})")
    return t.long()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of `x` whose arg-max logit is the label `y`."""
    param = next(model.parameters())
    correct = 0
    for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
        pred = model(xb.to(param)).argmax(1)
        correct += int((pred == yb.to(pred.device)).sum())
    return correct / len(y)


def train_classifier(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    x_test: torch.Tensor | np.ndarray,
    y_test: torch.Tensor | np.ndarray,
    *,
    n_classes: int,
    epochs: int = 12,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[FeatureCNN, float]:
    """Train a `FeatureCNN` with Adam on (x, y); return it (float32, eval mode) and its accuracy
    on (x_test, y_test).

    Images are [N, C, H, W] floats in [-1, 1], labels integers in [0, n_classes). The result is
    a function of the data and `seed` alone: the initialisation draws from a forked global RNG
    and the minibatch order from a private generator.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if type(value) is not int or value < 1:
            raise ConfigError(f"classifier {name} must be an integer >= 1, got {value!r}")
    if type(lr) not in (int, float) or not 0 < lr < math.inf:
        raise ConfigError(f"classifier lr must be a positive number, got {lr!r}")
    xs = _images(x, "classifier training images").float()
    xt = _images(x_test, "classifier test images").float()
    if xt.shape[1:] != xs.shape[1:]:
        raise DataError(f"classifier test images are {xt.shape[1:]}, training {xs.shape[1:]}")
    ys = _labels(y, len(xs), n_classes, "classifier training labels").to(xs.device)
    yt = _labels(y_test, len(xt), n_classes, "classifier test labels")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureCNN(tuple(xs.shape[1:]), n_classes).to(xs.device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bar = tqdm(range(epochs), desc="classifier", unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        model.train()
        total = 0.0
        for idx in torch.randperm(len(xs), generator=gen).split(batch_size):
            idx = idx.to(xs.device)
            loss = F.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        bar.set_postfix(loss=f"{total / len(xs):.4f}")
    model.eval()
    acc = accuracy(model, xt, yt)
    log.info("classifier trained: %d epochs, test accuracy %.4f", epochs, acc)
    return model, acc


def _scalar(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _canonical(obj: Any) -> Any:
    """`obj` as JSON gives it back (tuples -> lists, NumPy scalars -> numbers), so the digest of
    what is written equals the digest of what is read."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False, default=_scalar))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"classifier metadata must be finite JSON: {e}") from None


def record_digest(record: Mapping[str, Any]) -> str:
    """The `digest` field: sha256 of the sorted, compact JSON of every other field (which include
    `weights_sha256`, so it covers the weights too)."""
    body = {k: v for k, v in record.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_classifier(
    out_dir: str | os.PathLike[str],
    model: FeatureCNN,
    *,
    data_digest: str,
    dataset: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    test_accuracy: float,
    train_params: Mapping[str, Any],
    force: bool = False,
) -> str:
    """Write the classifier directory atomically; return its digest.

    `data_digest` names the dataset version it was trained on. An existing `out_dir` is
    replaced only with `force` (OutputExistsError otherwise).
    """
    shape = _check_shape(tuple(input_shape), n_classes)
    if model.input_shape != shape or model.n_classes != n_classes:
        raise ConfigError(
            f"model is for {model.input_shape} -> {model.n_classes} classes, "
            f"metadata says {shape} -> {n_classes}"
        )
    if type(test_accuracy) not in (int, float) or not 0 <= test_accuracy <= 1:
        raise ConfigError(f"test_accuracy must be in [0, 1], got {test_accuracy!r}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(out_dir, force=force) as tmp:
        safetensors.torch.save_file(tensors, str(tmp / WEIGHTS_FILE))
        record = _canonical(
            {
                "format_version": FORMAT_VERSION,
                "data_digest": data_digest,
                "dataset": dataset,
                "input_shape": list(shape),
                "n_classes": n_classes,
                "test_accuracy": float(test_accuracy),
                "train_params": dict(train_params),
                "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
            }
        )
        record["digest"] = record_digest(record)
        write_json(tmp / META_FILE, record)
    return record["digest"]


@dataclass(frozen=True)
class LoadedClassifier:
    """A checked classifier artifact; `model` is in eval mode with frozen parameters."""

    model: FeatureCNN
    data_digest: str
    dataset: str
    input_shape: tuple[int, int, int]
    n_classes: int
    test_accuracy: float
    train_params: dict[str, Any]
    digest: str
    path: Path


def _read_record(path: Path) -> dict[str, Any]:
    where = f"classifier {path / META_FILE}"
    record = read_json(path / META_FILE, f"classifier {path}:")
    if not isinstance(record, dict) or set(record) != set(_TYPES):
        got = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise DataError(f"{where}: keys {got}, expected {sorted(_TYPES)}")
    bad = [k for k, t in _TYPES.items() if type(record[k]) is not t]
    if not bad:
        shape = record["input_shape"]
        bad += ["format_version"] * (record["format_version"] != FORMAT_VERSION)
        bad += ["input_shape"] * (len(shape) != 3 or any(type(v) is not int for v in shape))
        bad += ["test_accuracy"] * (not 0 <= record["test_accuracy"] <= 1)
    if bad:
        raise DataError(f"{where}: invalid {', '.join(bad)}")
    actual = record_digest(record)
    if actual != record["digest"]:
        raise DigestMismatchError(where, record["digest"], actual)
    return record


def load_classifier(
    path: str | os.PathLike[str],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    *,
    data_digest: str | None = None,
) -> LoadedClassifier:
    """Load and check a classifier directory written by `save_classifier`.

    Checks the JSON (keys, types, digest), the weights' sha256, and that the tensors are exactly
    the architecture's: DataError (DigestMismatchError for hashes) naming the file otherwise.
    With `data_digest`, the classifier must have been trained on that dataset version.
    """
    path = Path(path)
    record = _read_record(path)
    weights = path / WEIGHTS_FILE
    where = f"classifier {weights}"
    if not weights.is_file():
        raise DataError(f"{where} is missing")
    actual = sha256_file(weights)
    if actual != record["weights_sha256"]:
        raise DigestMismatchError(where, record["weights_sha256"], actual)
    if data_digest is not None and data_digest != record["data_digest"]:
        what = f"classifier {path} (trained on another dataset version)"
        raise DigestMismatchError(what, data_digest, record["data_digest"])
    try:
        model = FeatureCNN(tuple(record["input_shape"]), record["n_classes"])
    except ConfigError as e:
        raise DataError(f"classifier {path / META_FILE}: {e}") from None
    try:
        tensors = safetensors.torch.load_file(str(weights))
    except (OSError, safetensors.SafetensorError) as e:
        raise DataError(f"{where} is not a valid safetensors file: {e}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if found != expected:
        diff = sorted(
            f"{k} {found.get(k)} (expected {expected.get(k)})"
            for k in found.keys() | expected.keys()
            if found.get(k) != expected.get(k)
        )
        raise DataError(f"{where}: tensors do not match the architecture: {'; '.join(diff)}")
    if not all(t.is_floating_point() and torch.isfinite(t).all() for t in tensors.values()):
        raise DataError(f"{where}: weights must be finite floating-point tensors")
    model.load_state_dict(tensors)
    model.to(dtype=dtype, device=device).eval().requires_grad_(False)
    fields = ("data_digest", "dataset", "n_classes", "test_accuracy", "train_params", "digest")
    return LoadedClassifier(
        model, input_shape=model.input_shape, path=path, **{k: record[k] for k in fields}
    )
