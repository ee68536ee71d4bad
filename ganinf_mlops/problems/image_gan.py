"""A GAN on images, judged by FID and Inception Score on a feature classifier's outputs.

Training is `GanProblem`'s (the same pure step, with a convolutional architecture); what changes
is the feature map of the metrics. Inception weights cannot be downloaded here, so the features
come from a small CNN trained on the real training images (`features.classifier`, a versioned
artifact recording the digest of the data it learnt from):

    FID = Fréchet distance between Gaussian fits of its 128-d features of generated images and of
          the held-out real images (lower is better: `metrics.frechet.FID_SPEC`);
    IS  = exp(E_x KL(p(y|x) || p(y))) on its softmax (higher: `metrics.inception.IS_SPEC`);
    C_T = Meehan et al.'s data-copying statistic on the same features (`copying_ct`, logged,
          not a target: strongly negative = the generator copies training images).

With `metric.inception_weights` (a local file) a run also reports `fid_inception`, FID on
torch-fidelity's Inception-v3 features against the held-out images, comparable with published
FIDs (`features.inception`; a result, not a target: the extractor takes uint8 images).

Both are differentiable in the generator's parameters, so they are influence targets. The
classifier's own weights are constants: removing a training image changes the GAN, not the
yardstick.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from ganinf_mlops import keys
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.features.artifact import check_classifier
from ganinf_mlops.features.classifier import LoadedClassifier, load_classifier
from ganinf_mlops.features.fidelity import torch_fidelity_metrics
from ganinf_mlops.features.inception import (
    InceptionFeatures,
    inception_fid,
    inception_fit,
    load_inception,
)
from ganinf_mlops.metrics.frechet import FID_SPEC, GaussianFit, frechet_distance
from ganinf_mlops.metrics.inception import IS_SPEC, inception_score
from ganinf_mlops.metrics.memorization import copying_ct
from ganinf_mlops.metrics.specs import Metric, register
from ganinf_mlops.problems import PROBLEMS
from ganinf_mlops.problems.base import State, Target
from ganinf_mlops.problems.gan import GanProblem

register(Metric(keys.CLASSIFIER_ACCURACY, True, "the feature classifier's held-out accuracy"))


@PROBLEMS.register("image_gan")
class ImageGanProblem(GanProblem):
    """A convolutional GAN on images [N, C, H, W] in [-1, 1]; targets fid, is, disc_loss."""

    instance_ndim = 3
    target_names = (keys.FID, keys.IS, keys.DISC_LOSS)
    result_names = (
        keys.FID, keys.IS, keys.DISC_LOSS, keys.FID_TORCH_FIDELITY, keys.IS_TORCH_FIDELITY,
        keys.CLASSIFIER_ACCURACY, keys.COPYING_CT, keys.FID_INCEPTION,
    )  # fmt: skip

    def __init__(self, cfg, metric, x, x_eval, schedule, y=None, y_eval=None) -> None:
        if metric.classifier is None:
            raise ConfigError(
                "metric.classifier: an image_gan run needs a feature classifier for FID and IS "
                "(train one with `ganinf classifier --data <raw version> --out <dir>`)"
            )
        super().__init__(cfg, metric, x, x_eval, schedule, y, y_eval)
        self.classifier: LoadedClassifier = load_classifier(
            Path(metric.classifier), dtype=self.dtype, device=self.device
        )
        shape = tuple(int(s) for s in self.x.shape[1:])
        if tuple(self.classifier.input_shape) != shape:
            raise ConfigError(
                f"classifier {metric.classifier} takes images {tuple(self.classifier.input_shape)}"
                f", this data has {shape}"
            )
        with torch.no_grad():
            self.ref = GaussianFit.of(self.classifier.model.features(self.x_eval))
        # Loaded now, so that a missing or bad weights file is refused before training.
        self.inception: InceptionFeatures | None = None
        if metric.inception_weights is not None:
            self.inception = load_inception(metric.inception_weights, self.device)

    @cached_property
    def inception_ref(self) -> GaussianFit:
        """The Inception features' fit of the held-out images (once per run: 0.2-0.8 s an
        image on one CPU core)."""
        assert self.inception is not None
        return inception_fit(self.inception, self.x_eval)

    def features(self, x: np.ndarray) -> np.ndarray:
        """The classifier's 128-d features of images `x` (the space FID is measured in)."""
        with torch.no_grad():
            out = [
                self.classifier.model.features(self.tensor(x[i : i + 1000])).cpu().numpy()
                for i in range(0, len(x), 1000)
            ]
        return np.concatenate(out)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.reject_embedding == "classifier":
            return self.classifier.model.features(x)
        return super().embedding(x)

    @cached_property
    def train_features(self) -> np.ndarray:
        return self.features(self.x.cpu().numpy())

    def provenance(self) -> dict[str, Any]:
        c = self.classifier
        return {"classifier": {"digest": c.digest, "data_digest": c.data_digest}}

    def check_version(self, version: Any) -> None:
        check_classifier(self.classifier, version)

    def targets(self) -> dict[str, Target]:
        gen, z = self.gen, self.z_eval
        model, ref = self.classifier.model, self.ref

        def fid_value(state: State) -> torch.Tensor:
            return frechet_distance(model.features(functional_call(gen, state["g"], (z,))), ref)

        def is_value(state: State) -> torch.Tensor:
            return inception_score(model(functional_call(gen, state["g"], (z,))))

        return {
            keys.FID: Target(FID_SPEC, fid_value),
            keys.IS: Target(IS_SPEC, is_value),
            keys.DISC_LOSS: self.disc_loss_target(),
        }

    def fit_references(self) -> dict[str, float]:
        """FID between the classifier features of two halves of the training images, and the
        IS of one half (real images: what a generator that draws the data scores)."""
        a, b = self.halves()
        if len(a) < 2:
            return {}
        model = self.classifier.model
        with torch.no_grad():
            fid = frechet_distance(model.features(a), GaussianFit.of(model.features(b)))
            return {keys.FID: float(fid), keys.IS: float(inception_score(model(a)))}

    def evaluate(self, state: State) -> dict[str, float]:
        with torch.no_grad():
            out = {name: float(t.value(state)) for name, t in self.targets().items()}
            # The same two by torch-fidelity on the same samples and features: a cross-check
            # users can compare with other torch-fidelity numbers.
            generated = self.generate(state)
            tf = torch_fidelity_metrics(self.classifier, generated, self.x_eval)
            # Data copying (Meehan et al.) in the same feature space as FID.
            ct = copying_ct(
                self.train_features, self.classifier.model.features(generated).cpu().numpy(),
                self.features(self.x_eval.cpu().numpy()), seed=self.metric.seed,
            )  # fmt: skip
        out[keys.FID_TORCH_FIDELITY], out[keys.IS_TORCH_FIDELITY] = tf["fid"], tf["is"]
        if self.inception is not None:
            out[keys.FID_INCEPTION] = inception_fid(self.inception, generated, self.inception_ref)
        if ct is not None:
            out[keys.COPYING_CT] = ct
        out[keys.CLASSIFIER_ACCURACY] = float(self.classifier.test_accuracy)
        return out

    def samples(self, state: State) -> np.ndarray:
        with torch.no_grad():
            return self.generate(state).cpu().numpy()
