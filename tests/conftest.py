from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# The tests' models are tiny: one thread is faster than two fighting over a busy 2-core machine.
# (Set before torch is imported; subprocesses inherit it.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

from ganinf_mlops.data.version import DatasetVersion, write_version
from ganinf_mlops.hashing import sha256_file

# CLI tests run without MLflow unless a test turns it on (monkeypatch GANINF_TRACKING=1).
os.environ["GANINF_TRACKING"] = "0"
# ... and serially: a developer's RAY_ADDRESS would send the trainings to Ray (job.executor
# auto), out of reach of the tests' monkeypatches; tests/test_executor.py starts its own cluster.
os.environ.pop("RAY_ADDRESS", None)


@pytest.fixture
def tiny_version(tmp_path) -> DatasetVersion:
    """12 instances of a 2D normal (ids offset so ids != positions), 9 held-out points."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(12, 2)) + 1.0
    x_eval = rng.normal(size=(9, 2)) + 1.0
    ids = np.arange(100, 112, dtype=np.int64)
    return write_version(tmp_path / "tiny", x, ids, x_eval, dataset="test", params={"seed": 7})


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """prepare -> train -> influence (method all) on the tiny preset, through the in-process CLI,
    laid out as the DVC pipeline does: `root`/data/raw, runs/raw, scores/raw.csv.

    One for the whole session, shared: read it, never write into it (a test that needs to
    change it copies `root` with shutil.copytree; runs record their data relative to
    themselves). Teardown fails if a test changed a file of it.
    """
    from ganinf_mlops.cli import main

    root = tmp_path_factory.mktemp("tiny-run")
    p = {
        "root": root,
        "raw": root / "data" / "raw",
        "run": root / "runs" / "raw",
        "scores": root / "scores" / "raw.csv",
    }
    main(["-q", "prepare", "--preset", "tiny", "--out", str(p["raw"])])
    main(["-q", "train", "--preset", "tiny", "--data", str(p["raw"]), "--out", str(p["run"])])
    main(["-q", "influence", "--preset", "tiny", "--run", str(p["run"]), "--method", "all",
          "--out", str(p["scores"])])  # fmt: skip
    before = _file_digests(root)
    yield p
    after = _file_digests(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests changed the shared tiny run: {changed}"


def write_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny CIFAR-10 in torchvision's on-disk format under `root`/cifar-10-batches-py: the
    training images split over data_batch_1..5, test_batch and batches.meta, as pickled dicts of
    uint8 `data` [n, 3072] (R, G, B planes) and `labels`. Images of class k are noise around a
    colour of their own, so a classifier can tell them apart. Returns the arrays written,
    images as [n, 32, 32, 3] (torchvision's HWC)."""
    import pickle

    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, size=(10, 3))

    def images(labels: np.ndarray) -> np.ndarray:
        noise = rng.integers(-40, 41, size=(labels.size, 32, 32, 3))
        return (colours[labels][:, None, None, :] + noise).astype(np.uint8)

    out = {"train_labels": np.arange(n_train) % 10, "test_labels": (np.arange(n_test) + 3) % 10}
    out["train"], out["test"] = images(out["train_labels"]), images(out["test_labels"])
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name: str, obj: dict) -> None:
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    def batch(x: np.ndarray, y: np.ndarray) -> dict:
        planes = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
        return {"batch_label": "tiny", "data": planes, "labels": [int(v) for v in y]}

    for i, rows in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        dump(f"data_batch_{i}", batch(out["train"][rows], out["train_labels"][rows]))
    dump("test_batch", batch(out["test"], out["test_labels"]))
    names = "airplane automobile bird cat deer dog frog horse ship truck".split()
    dump("batches.meta", {"label_names": names, "num_cases_per_batch": n_train // 5})
    return out


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A weights file for torch-fidelity's Inception-v3: its own network, built without loading
    anything (the constructor's download and load are stubbed out), with random weights that
    keep activations at scale (PyTorch's default init shrinks them to ~1e-8 over 90 layers)."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    cls = tf_inception.FeatureExtractorInceptionV3
    mp = pytest.MonkeyPatch()
    mp.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
    mp.setattr(cls, "load_state_dict", lambda self, *a, **k: None)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = cls("inception-v3-compat", ["2048"])
            for m in net.modules():
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    finally:
        mp.undo()
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path
