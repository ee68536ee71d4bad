"""FID on Inception-v3 features: torch-fidelity's extractor, from a local weights file only.

Published FIDs (CIFAR-10's included) are Fréchet distances between Gaussian fits of the 2048-d
pool features of the TensorFlow Inception-v3 of Heusel et al.; torch-fidelity's
`FeatureExtractorInceptionV3` ("inception-v3-compat") reproduces that network and its input
handling (uint8 RGB, bilinear resize to 299x299 as TF 1.x did). It fetches its weights from
GitHub when given no path; here nothing is downloaded, so the weights come from a file:

- a path (`metric.inception_weights: PATH`), or
- "torch-hub": the file torch-fidelity itself caches,
  `torch.hub.get_dir()/checkpoints/weights-inception-2015-12-05-6726825d.pth`
  (present after any torch-fidelity FID on a machine with internet access).

The published file's sha256 starts with 6726825d (torch hub's naming); other weights give numbers
that are not comparable with published ones, and a warning says so. Our small feature classifier
stays the default yardstick (and the only differentiable one: this extractor takes uint8).

Images in [-1, 1] are quantized to uint8 (`fidelity.to_uint8`, what a PNG would hold) and grey
images repeated over the three channels, as torch-fidelity's image loaders do.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import (
    URL_INCEPTION_V3,
    FeatureExtractorInceptionV3,
)

from ganinf_mlops import keys
from ganinf_mlops.errors import DataError
from ganinf_mlops.features.fidelity import to_uint8
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.metrics.frechet import GaussianFit, frechet_distance
from ganinf_mlops.metrics.specs import Metric, register

log = logging.getLogger(__name__)

FID_INCEPTION_SPEC = register(
    Metric(
        keys.FID_INCEPTION,
        higher_is_better=False,
        meaning="FID on Inception-v3 pool features (torch-fidelity's network, local weights): "
        "comparable with published FIDs when the weights are the published ones",
    )
)

NAME = "inception-v3-compat"  # torch-fidelity's registry name of the extractor
FEATURE = "2048"  # the pool layer FID uses
HUB = "torch-hub"  # the `inception_weights` value naming torch-fidelity's cache file
WEIGHTS_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]
PUBLISHED_SHA256_PREFIX = WEIGHTS_FILE.rsplit("-", 1)[-1].split(".")[0]  # "6726825d"
GET_WEIGHTS = (
    f"download {URL_INCEPTION_V3} on a machine with internet access (or run any torch-fidelity "
    f"FID there, which caches it under torch.hub.get_dir()/checkpoints) and copy it here"
)


def hub_weights_path() -> Path:
    """Where torch-fidelity's `load_state_dict_from_url` caches (and first looks for) the file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def weights_path(setting: str) -> Path:
    """The weights file `metric.inception_weights` names: a path, or "torch-hub" (DataError if
    it is not a file)."""
    path = hub_weights_path() if setting == HUB else Path(setting).expanduser()
    if not path.is_file():
        where = "torch-fidelity's torch hub cache" if setting == HUB else "metric.inception_weights"
        raise DataError(
            f"Inception weights not found: {path} ({where}). Nothing is downloaded: {GET_WEIGHTS}"
        )
    return path.resolve()


@dataclass(frozen=True)
class InceptionFeatures:
    """torch-fidelity's Inception-v3 with weights from `path` (`published`: the file whose
    numbers compare with published FIDs)."""

    extractor: FeatureExtractorInceptionV3
    path: Path
    sha256: str

    @property
    def published(self) -> bool:
        return self.sha256.startswith(PUBLISHED_SHA256_PREFIX)


def load_inception(setting: str, device: torch.device | str = "cpu") -> InceptionFeatures:
    """The extractor of `metric.inception_weights` (a path or "torch-hub"), in eval mode."""
    path = weights_path(setting)
    # torch-fidelity reads the file with torch.load(weights_only=False), which would run any code
    # a pickle holds: read it first the safe way, so that only a plain state dict gets there.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise DataError(f"Inception weights {path} are not a readable state dict: {e}") from None
    if not isinstance(state, dict):
        raise DataError(f"Inception weights {path}: expected a state dict, got {type(state)}")
    try:
        extractor = FeatureExtractorInceptionV3(
            NAME, [FEATURE], feature_extractor_weights_path=str(path)
        )
    except RuntimeError as e:  # load_state_dict: missing, unexpected or mis-shaped tensors
        # Its message lists every key (hundreds when the file is another network's): keep a line.
        what = " ".join(str(e).split())
        what = what if len(what) <= 300 else what[:300] + " ..."
        raise DataError(f"Inception weights {path} do not fit Inception-v3: {what}") from None
    digest = sha256_file(path)
    out = InceptionFeatures(extractor.to(device), path, digest)
    if not out.published:
        log.warning(
            "Inception weights %s (sha256 %s...) are not the published ones (%s...): "
            "fid_inception will not compare with published FIDs",
            path, digest[:8], PUBLISHED_SHA256_PREFIX,
        )  # fmt: skip
    return out


def rgb_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] (C 1 or 3) as the uint8 RGB the extractor takes."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got {tuple(x.shape)}")
    u = to_uint8(x) if x.is_floating_point() else x
    if u.dtype != torch.uint8:
        raise ValueError(f"expected float images in [-1, 1] or uint8, got {x.dtype}")
    return u.expand(-1, 3, -1, -1) if u.shape[1] == 1 else u


@torch.no_grad()
def inception_features(
    model: InceptionFeatures, x: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """The 2048-d pool features [N, 2048] (float64) of images `x` [N, C, H, W] (float in
    [-1, 1] or uint8)."""
    u = rgb_uint8(x)
    device = next(model.extractor.parameters()).device
    out = [model.extractor(b.to(device))[0].cpu() for b in u.split(batch_size)]
    return torch.cat(out).to(torch.float64)


def inception_fit(model: InceptionFeatures, reference: torch.Tensor) -> GaussianFit:
    """The Gaussian fit of the reference images' features (computed once per run)."""
    return GaussianFit.of(inception_features(model, reference))


def inception_fid(model: InceptionFeatures, generated: torch.Tensor, ref: GaussianFit) -> float:
    """FID between the Inception features of `generated` and the reference fit `ref`."""
    return float(frechet_distance(inception_features(model, generated), ref))
