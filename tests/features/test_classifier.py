"""The feature classifier: accuracy on scikit-learn digits, the artifact's round trip and its
refusals, and our IS / FID against torch-fidelity's on the same classifier."""

from __future__ import annotations

import json
import shutil
from copy import deepcopy
from pathlib import Path

import pytest
import safetensors.torch
import torch
from sklearn.datasets import load_digits

from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, OutputExistsError
from ganinf_mlops.features.classifier import (
    META_FILE,
    WEIGHTS_FILE,
    FeatureCNN,
    LoadedClassifier,
    load_classifier,
    record_digest,
    save_classifier,
    train_classifier,
)
from ganinf_mlops.features.fidelity import from_uint8, to_uint8, torch_fidelity_metrics
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.metrics.frechet import GaussianFit, frechet_distance
from ganinf_mlops.metrics.inception import inception_score

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@pytest.fixture(scope="module")
def digits() -> Split:
    """1500 training and 297 test images [N, 1, 8, 8] in [-1, 1] (pixel values are 0..16)."""
    d = load_digits()
    x = torch.tensor(d.images / 8.0 - 1.0).unsqueeze(1)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return x[:1500], y[:1500], x[1500:], y[1500:]


@pytest.fixture(scope="module")
def trained(digits: Split) -> tuple[FeatureCNN, float]:
    return train_classifier(*digits, n_classes=10, progress=False)


@pytest.fixture(scope="module")
def artifact(trained: tuple[FeatureCNN, float], tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, acc = trained
    path = tmp_path_factory.mktemp("clf") / "digits-classifier"
    save_classifier(
        path,
        model,
        data_digest="d" * 64,
        dataset="digits",
        input_shape=(1, 8, 8),
        n_classes=10,
        test_accuracy=acc,
        train_params={"epochs": 12, "seed": 0},
    )
    return path


@pytest.fixture
def scratch(artifact: Path, tmp_path: Path) -> Path:
    """A private copy of the artifact, for tests that damage it."""
    return Path(shutil.copytree(artifact, tmp_path / "clf"))


def test_reaches_accuracy_and_is_deterministic(
    digits: Split, trained: tuple[FeatureCNN, float]
) -> None:
    model, acc = trained
    assert acc > 0.85
    assert not model.training
    x, y, _, _ = digits
    a, _ = train_classifier(x[:200], y[:200], x[:50], y[:50], n_classes=10, epochs=1, seed=3)
    b, _ = train_classifier(x[:200], y[:200], x[:50], y[:50], n_classes=10, epochs=1, seed=3)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_round_trip_gives_identical_logits(
    digits: Split, trained: tuple[FeatureCNN, float], artifact: Path
) -> None:
    model, acc = trained
    x = digits[2]
    c32 = load_classifier(artifact, dtype=torch.float32, data_digest="d" * 64)
    assert torch.equal(c32.model(x.float()), model(x.float()))
    c = load_classifier(artifact)
    assert isinstance(c, LoadedClassifier)
    assert torch.equal(c.model(x), deepcopy(model).double()(x))
    assert (c.dataset, c.input_shape, c.n_classes, c.test_accuracy) == (
        "digits",
        (1, 8, 8),
        10,
        acc,
    )
    assert c.train_params == {"epochs": 12, "seed": 0} and c.path == artifact
    assert not c.model.training and not any(p.requires_grad for p in c.model.parameters())
    assert c.digest == json.loads((artifact / META_FILE).read_text())["digest"]
    assert c.model(x, layer="features").shape == (len(x), 128)


def test_existing_directory_needs_force(trained: tuple[FeatureCNN, float], scratch: Path) -> None:
    model, acc = trained
    kw = dict(data_digest="e" * 64, dataset="digits", input_shape=(1, 8, 8), n_classes=10)
    with pytest.raises(OutputExistsError):
        save_classifier(scratch, model, test_accuracy=acc, train_params={}, **kw)
    digest = save_classifier(scratch, model, test_accuracy=acc, train_params={}, force=True, **kw)
    assert load_classifier(scratch).digest == digest
    with pytest.raises(ConfigError, match="metadata says"):
        save_classifier(
            scratch, model, test_accuracy=acc, train_params={}, force=True, **{**kw, "n_classes": 9}
        )


def _edit_json(path: Path, fn) -> None:
    record = json.loads((path / META_FILE).read_text())
    fn(record)
    (path / META_FILE).write_text(json.dumps(record))


def _rehash(path: Path) -> None:
    """Make the JSON agree with the current weights file, so only later checks can object."""

    def fix(r: dict) -> None:
        r["weights_sha256"] = sha256_file(path / WEIGHTS_FILE)
        r["digest"] = record_digest(r)

    _edit_json(path, fix)


def _replace_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    safetensors.torch.save_file(tensors, str(path / WEIGHTS_FILE))
    _rehash(path)


def test_tampered_json(scratch: Path) -> None:
    _edit_json(scratch, lambda r: r.update(test_accuracy=0.999))
    with pytest.raises(DigestMismatchError, match=META_FILE):
        load_classifier(scratch)


def test_tampered_weights(scratch: Path) -> None:
    tensors = safetensors.torch.load_file(str(scratch / WEIGHTS_FILE))
    tensors["logits.bias"] = tensors["logits.bias"] + 1
    safetensors.torch.save_file(tensors, str(scratch / WEIGHTS_FILE))
    with pytest.raises(DigestMismatchError, match=WEIGHTS_FILE):
        load_classifier(scratch)


def test_other_dataset_version(artifact: Path) -> None:
    with pytest.raises(DigestMismatchError, match="another dataset version"):
        load_classifier(artifact, data_digest="f" * 64)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: r.update(extra=1), "keys"),
        (lambda r: r.pop("dataset"), "keys"),
        (lambda r: r.update(n_classes="10"), "invalid n_classes"),
        (lambda r: r.update(input_shape=[1, 8]), "invalid input_shape"),
        (lambda r: r.update(format_version=2), "invalid format_version"),
        (lambda r: r.update(test_accuracy=True), "invalid test_accuracy"),
    ],
)
def test_invalid_json(scratch: Path, edit, match: str) -> None:
    _edit_json(scratch, edit)
    with pytest.raises(DataError, match=match):
        load_classifier(scratch)


def test_weights_must_match_the_architecture(scratch: Path) -> None:
    tensors = safetensors.torch.load_file(str(scratch / WEIGHTS_FILE))
    _replace_weights(scratch, {**tensors, "hidden.weight": torch.zeros(128, 31)})
    with pytest.raises(DataError, match="architecture"):
        load_classifier(scratch)
    _replace_weights(scratch, {**tensors, "extra": torch.zeros(1)})
    with pytest.raises(DataError, match="architecture"):
        load_classifier(scratch)
    _replace_weights(scratch, {**tensors, "logits.bias": torch.full((10,), float("nan"))})
    with pytest.raises(DataError, match="finite"):
        load_classifier(scratch)
    (scratch / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    _rehash(scratch)
    with pytest.raises(DataError, match="safetensors"):
        load_classifier(scratch)


@pytest.mark.parametrize("name", [META_FILE, WEIGHTS_FILE])
def test_missing_file(scratch: Path, name: str) -> None:
    (scratch / name).unlink()
    with pytest.raises(DataError, match="missing"):
        load_classifier(scratch)


def test_bad_training_input(digits: Split) -> None:
    x, y, xt, yt = digits
    with pytest.raises(DataError, match="labels"):
        train_classifier(x[:10], y[:10] + 10, xt, yt, n_classes=10)
    with pytest.raises(DataError, match=r"\[-1, 1\]"):
        train_classifier(x[:10] * 8, y[:10], xt, yt, n_classes=10)
    with pytest.raises(ConfigError, match="epochs"):
        train_classifier(x[:10], y[:10], xt, yt, n_classes=10, epochs=0)
    with pytest.raises(ValueError, match="expects images"):
        FeatureCNN((1, 8, 8), 10)(torch.zeros(2, 1, 8, 9))


def test_our_metrics_equal_torch_fidelity(
    digits: Split, artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch-fidelity attempted a download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    x, _, xt, _ = digits
    noise = torch.randn(x[:200].shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    # On the uint8 grid, so that the uint8 path sees exactly the same images as the float path.
    generated = from_uint8(to_uint8((x[:200] + 0.4 * noise).clamp(-1, 1)))
    reference = from_uint8(to_uint8(xt))
    c = load_classifier(artifact)
    with torch.no_grad():
        ours = {
            "is": float(inception_score(c.model(generated))),
            "fid": float(
                frechet_distance(
                    c.model.features(generated), GaussianFit.of(c.model.features(reference))
                )
            ),
        }
    theirs = torch_fidelity_metrics(c, generated, reference)
    assert theirs == pytest.approx(ours, rel=1e-3)
    assert ours["is"] > 1.5 and ours["fid"] > 0.1  # not a trivially agreeing degenerate case
    theirs_u8 = torch_fidelity_metrics(c, to_uint8(generated), to_uint8(reference))
    assert theirs_u8 == pytest.approx(theirs, rel=1e-9)


def test_fidelity_extractor_refuses_a_changed_artifact(
    trained: tuple[FeatureCNN, float], scratch: Path, digits: Split
) -> None:
    c = load_classifier(scratch)
    model, acc = trained
    save_classifier(
        scratch,
        model,
        data_digest="0" * 64,
        dataset="other",
        input_shape=(1, 8, 8),
        n_classes=10,
        test_accuracy=acc,
        train_params={},
        force=True,
    )
    with pytest.raises(DigestMismatchError):
        torch_fidelity_metrics(c, digits[0][:20], digits[2][:20])


def test_colour_32x32_images(tmp_path: Path) -> None:
    """CIFAR-size colour images [N, 3, 32, 32]: the classifier trains on them, its artifact
    round-trips the shape, and torch-fidelity's FID and IS through it (uint8 RGB in) equal ours."""
    g = torch.Generator().manual_seed(0)
    colours = torch.rand(4, 3, 1, 1, generator=g, dtype=torch.float64) * 1.6 - 0.8

    def images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 4
        noise = torch.randn(n, 3, 32, 32, generator=g, dtype=torch.float64)
        return from_uint8(to_uint8((colours[y] + 0.3 * noise).clamp(-1, 1))), y

    (x, y), (xt, yt) = images(120), images(40)
    model, acc = train_classifier(x, y, xt, yt, n_classes=4, epochs=3, progress=False)
    assert acc > 0.9 and model.input_shape == (3, 32, 32)
    save_classifier(
        tmp_path / "c", model, data_digest="c" * 64, dataset="cifar10", input_shape=(3, 32, 32),
        n_classes=4, test_accuracy=acc, train_params={},
    )  # fmt: skip
    c = load_classifier(tmp_path / "c")
    assert c.input_shape == (3, 32, 32)
    generated, reference = from_uint8(to_uint8((xt + 0.5).clamp(-1, 1))), x[:40]  # brighter
    with torch.no_grad():
        fid = frechet_distance(
            c.model.features(generated), GaussianFit.of(c.model.features(reference))
        )
        ours = {"is": float(inception_score(c.model(generated))), "fid": float(fid)}
    theirs = torch_fidelity_metrics(c, to_uint8(generated), to_uint8(reference))
    assert theirs == pytest.approx(ours, rel=1e-3)
    assert ours["is"] > 1.5 and ours["fid"] > 0.1  # not a trivially agreeing degenerate case
