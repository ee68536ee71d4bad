"""Our classifier as a torch-fidelity feature extractor, to cross-check our IS and FID.

Importing this module registers `FeatureExtractorGaninf` as torch-fidelity's feature extractor
"ganinf-classifier". torch-fidelity constructs extractors itself from `calculate_metrics`'
keyword arguments, so the classifier is named by its artifact directory in
`feature_extractor_weights_path` (and re-checked on load); nothing is ever downloaded.

Inputs: torch-fidelity hands each batch to the extractor unchanged. Its own image sources (files,
registered datasets) give uint8 [N, 3, H, W]; a Dataset of our tensors can give float images in
[-1, 1] directly, which avoids the uint8 round trip. Both are accepted: uint8 u becomes
u / 127.5 - 1 (RGB averaged to gray for a 1-channel classifier).
"""

from __future__ import annotations

from typing import Any

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ganinf_mlops import keys
from ganinf_mlops.errors import DigestMismatchError
from ganinf_mlops.features.classifier import LoadedClassifier, load_classifier
from ganinf_mlops.metrics.specs import Metric, register

register(Metric(keys.FID_TORCH_FIDELITY, False, "FID computed by torch-fidelity (a check)"))
register(
    Metric(keys.IS_TORCH_FIDELITY, True, "Inception Score computed by torch-fidelity (a check)")
)

NAME = "ganinf-classifier"
FEATURES = "features"  # the 128-d sigmoid layer, for FID / KID / PRC
LOGITS = "logits"  # class logits, for IS
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] to the nearest uint8 level (what a PNG of them would hold)."""
    return ((x.detach() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def from_uint8(u: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """uint8 levels back to [-1, 1]; `from_uint8(to_uint8(x))` is x quantized to 256 levels."""
    return u.to(dtype) / 127.5 - 1


class FeatureExtractorGaninf(FeatureExtractorBase):
    """torch-fidelity's view of a `FeatureCNN` artifact: features "features" and "logits"."""

    def __init__(
        self,
        name: str,
        features_list: list[str],
        feature_extractor_weights_path: str | None = None,
        feature_extractor_internal_dtype: str | None = None,
        ganinf_classifier_digest: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            # Other extractors download weights here; ours exist only as local artifacts.
            raise ValueError(
                f"feature extractor {name!r} needs feature_extractor_weights_path "
                "(a classifier directory written by ganinf_mlops.features.classifier)"
            )
        dtype_name = feature_extractor_internal_dtype or "float64"
        if dtype_name not in _DTYPES:
            raise ValueError(f"internal dtype must be one of {sorted(_DTYPES)}, got {dtype_name!r}")
        self.dtype = _DTYPES[dtype_name]
        loaded = load_classifier(feature_extractor_weights_path, dtype=self.dtype)
        if ganinf_classifier_digest is not None and loaded.digest != ganinf_classifier_digest:
            # The directory was rewritten since the caller loaded it: not the same feature map.
            raise DigestMismatchError(
                f"classifier {loaded.path}", ganinf_classifier_digest, loaded.digest
            )
        self.model = loaded.model
        self.input_shape = loaded.input_shape

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return (FEATURES, LOGITS)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return LOGITS if metric == "isc" else FEATURES

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        c = self.input_shape[0]
        if x.dtype == torch.uint8:
            x = from_uint8(x, self.dtype)
            if x.ndim == 4 and x.shape[1] == 3 and c == 1:
                x = x.mean(dim=1, keepdim=True)  # torch-fidelity's file loaders give RGB
        elif not x.is_floating_point():
            raise ValueError(f"expected uint8 or float images, got {x.dtype}")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected images [N, {c}, H, W] = {self.input_shape}, got {x.shape}")
        return x.to(self.dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.model.features(self._prepare(x))
        out = {FEATURES: h, LOGITS: self.model.logits(h)}
        return tuple(out[name] for name in self.features_list)


if NAME not in FEATURE_EXTRACTORS_REGISTRY:  # a module reload must not register twice
    torch_fidelity.register_feature_extractor(NAME, FeatureExtractorGaninf)


class _Images(Dataset):
    """The rows of an image tensor, on the CPU (torch-fidelity's loader pins and moves them)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x.detach().cpu()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def torch_fidelity_metrics(
    classifier: LoadedClassifier,
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    batch_size: int = 256,
) -> dict[str, float]:
    """torch-fidelity's IS (one split) of `generated` and FID between `generated` and
    `reference`, on `classifier`'s logits and features: {"is": ..., "fid": ...}.

    Images are float in [-1, 1] (used as they are) or uint8 levels, [N, C, H, W].
    """
    dtype = {v: k for k, v in _DTYPES.items()}.get(next(classifier.model.parameters()).dtype)
    out = torch_fidelity.calculate_metrics(
        input1=_Images(generated),
        input2=_Images(reference),
        isc=True,
        fid=True,
        feature_extractor=NAME,
        feature_extractor_weights_path=str(classifier.path),
        feature_extractor_internal_dtype=dtype or "float64",
        ganinf_classifier_digest=classifier.digest,  # passed through to the extractor
        isc_splits=1,
        samples_shuffle=False,
        batch_size=batch_size,
        cuda=generated.is_cuda,
        save_cpu_ram=True,  # no DataLoader worker processes for in-memory tensors
        datasets_download=False,
        verbose=False,
        cache=False,
    )
    return {
        "is": float(out[torch_fidelity.KEY_METRIC_ISC_MEAN]),
        "fid": float(out[torch_fidelity.KEY_METRIC_FID]),
    }
