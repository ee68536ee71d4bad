"""Inception FID (features/inception.py): through torch-fidelity's own Inception-v3 and a local
weights file it equals torch-fidelity's `calculate_metrics` FID; nothing is ever downloaded."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch_fidelity
from torch.utils.data import Dataset

from ganinf_mlops.errors import DataError
from ganinf_mlops.features.fidelity import to_uint8
from ganinf_mlops.features.inception import (
    HUB,
    WEIGHTS_FILE,
    hub_weights_path,
    inception_features,
    inception_fid,
    inception_fit,
    load_inception,
    rgb_uint8,
)
from ganinf_mlops.metrics.frechet import GaussianFit, frechet_distance


class _Uint8(Dataset):
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _torch_fidelity_fid(a: torch.Tensor, b: torch.Tensor, weights) -> float:
    out = torch_fidelity.calculate_metrics(
        input1=_Uint8(a), input2=_Uint8(b), fid=True, feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(weights), cuda=False, save_cpu_ram=True,
        cache=False, verbose=False, datasets_download=False, batch_size=8,
    )  # fmt: skip
    return float(out[torch_fidelity.KEY_METRIC_FID])


def _images(seed: int, n: int, channels: int, shift: float) -> torch.Tensor:
    """Smooth random images in [-1, 1]: blobs, so the two sets differ in structure too."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, channels, 4, 4, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear")
    return torch.tanh(x + shift)


@pytest.mark.integration
def test_fid_equals_torch_fidelity(inception_weights):
    """3-channel 32x32 images: our FID through the extractor equals torch-fidelity's on the
    same uint8 images (grey ones are repeated over RGB first: test_images_become_uint8_rgb)."""
    generated, reference = _images(1, 10, 3, 0.3), _images(2, 10, 3, -0.2)
    model = load_inception(str(inception_weights))
    ref_features = inception_features(model, reference)
    fit = GaussianFit.of(ref_features)
    ours = inception_fid(model, generated, fit)
    theirs = _torch_fidelity_fid(rgb_uint8(generated), rgb_uint8(reference), inception_weights)
    assert ours == pytest.approx(theirs, rel=1e-3)
    assert ours > 1e-2  # the random network's features separate the two sets
    # The reference against itself: zero up to the covariance square root's round-off.
    assert abs(float(frechet_distance(ref_features, fit))) < 1e-3 * ours
    # Its fit is what `inception_fit` gives (the run computes it once, from the images).
    assert torch.equal(inception_fit(model, reference[:3]).mean, ref_features[:3].mean(0))


def test_images_become_uint8_rgb():
    grey = torch.linspace(-1, 1, 2 * 16, dtype=torch.float64).reshape(2, 1, 4, 4)
    u = rgb_uint8(grey)
    assert u.dtype == torch.uint8 and u.shape == (2, 3, 4, 4)
    assert torch.equal(u[:, 0], to_uint8(grey)[:, 0]) and torch.equal(u[:, 0], u[:, 2])
    assert int(u.min()) == 0 and int(u.max()) == 255
    with pytest.raises(ValueError, match="1 or 3"):
        rgb_uint8(torch.zeros(2, 2, 4, 4))


def test_the_random_weights_are_flagged_as_not_published(inception_weights, caplog):
    with caplog.at_level(logging.WARNING, logger="ganinf_mlops.features.inception"):
        model = load_inception(str(inception_weights))
    assert not model.published and model.path == inception_weights.resolve()
    assert "not the published ones" in caplog.text


def test_missing_or_bad_weights_are_refused_without_downloading(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(
        "torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", no_download
    )
    with pytest.raises(DataError, match=r"Inception weights not found: .*Nothing is downloaded"):
        load_inception(str(tmp_path / "none.pth"))
    # "torch-hub": the file torch-fidelity caches under torch.hub's directory
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert hub_weights_path() == tmp_path / "hub" / "checkpoints" / WEIGHTS_FILE
    with pytest.raises(DataError, match="torch hub cache"):
        load_inception(HUB)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable state dict"):
        load_inception(str(bad))
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "small.pth")
    with pytest.raises(DataError, match="do not fit Inception-v3") as e:
        load_inception(str(tmp_path / "small.pth"))
    assert "\n" not in str(e.value) and len(str(e.value)) < 500  # not its hundreds of keys
    # A pickle that would run code is refused before torch-fidelity's unsafe torch.load.
    torch.save({"x": np.zeros(3)}, tmp_path / "numpy.pth")
    with pytest.raises(DataError, match="not a readable state dict"):
        load_inception(str(tmp_path / "numpy.pth"))


def test_torch_hub_setting_reads_the_cached_file(inception_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    hub_weights_path().parent.mkdir(parents=True)
    hub_weights_path().symlink_to(inception_weights)
    assert load_inception(HUB).path == inception_weights.resolve()
