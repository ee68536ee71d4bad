"""The image GAN: conv architectures, FID/IS targets, exact reverse pass, classifier checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ganinf_mlops.config import MetricConfig
from ganinf_mlops.data.version import Provenance, write_version
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, TrajectoryError
from ganinf_mlops.features.classifier import FeatureCNN, save_classifier
from ganinf_mlops.features.inception import inception_fid, inception_fit, load_inception
from ganinf_mlops.influence.reverse import reverse_pass
from ganinf_mlops.models import GAN_MODELS
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.problems.gan import GanConfig, ModelConfig
from ganinf_mlops.train.rundir import RunDir, flatten_state
from ganinf_mlops.train.trainer import run_steps, train

TINY = ModelConfig(
    arch="dcgan", latent_dim=3, g_hidden=(4, 3), d_hidden=(3, 4), bias=True,
    activation="leaky_relu", norm="layer",
)  # fmt: skip


# The 32x32 colour DCGAN (three channel counts: 4x4 -> 8x8 -> 16x16 -> 32x32), tiny widths.
TINY32 = dataclasses.replace(TINY, g_hidden=(3, 2, 2), d_hidden=(2, 2, 3))


def _images(rng, n, shape=(1, 8, 8)):
    return np.tanh(rng.normal(size=(n, *shape)))


def _setup(tmp_path, shape):
    rng = np.random.default_rng(3)
    v = write_version(
        tmp_path / "v0", _images(rng, 10, shape), np.arange(50, 60), _images(rng, 12, shape),
        dataset="test", params={}, y=rng.integers(0, 3, 10), y_eval=rng.integers(0, 3, 12),
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = FeatureCNN(shape, 3)
    save_classifier(
        tmp_path / "clf", model, data_digest=v.digest, dataset="test", input_shape=shape,
        n_classes=3, test_accuracy=0.5, train_params={},
    )  # fmt: skip
    return v, MetricConfig(n_gen=9, seed=4, classifier=str(tmp_path / "clf"))


@pytest.fixture
def image_setup(tmp_path):
    return _setup(tmp_path, (1, 8, 8))


def _cfg(opt: str) -> GanConfig:
    o = OptimConfig(name=opt, lr=0.05 if opt == "sgd" else 0.01, beta1=0.5, weight_decay=1e-3)
    return GanConfig(
        problem="image_gan", model=TINY, d_optim=o, g_optim=o, batch_size=4, epochs=2,
        update="alternating", checkpoint_every=2, seed=1,
    )  # fmt: skip


def unrolled_grad(problem, run, tgt, dtype) -> tuple[torch.Tensor, float]:
    """dV/dw by plain autograd through every step of the run (no checkpoints, no vjp tape)."""
    w = torch.ones(problem.n, dtype=dtype, requires_grad=True)
    state = problem.initial_state()
    for t in range(run.n_steps):
        inp = problem.inputs(t)
        state, _ = problem.step(state, w[inp.idx] * inp.mask, inp.data, t)
    value = tgt.value(state)
    (grad,) = torch.autograd.grad(value, w)
    return grad, float(value.detach())


@pytest.mark.parametrize("arch,shape", [("dcgan", (1, 8, 8)), ("paper-mnist", (1, 28, 28))])
def test_architectures_shapes(arch, shape):
    cfg = dataclasses.replace(TINY, arch=arch, g_hidden=(4,) if arch != "dcgan" else (4, 3))
    gen, disc = GAN_MODELS.get(arch)(cfg, shape, 0, torch.float64, "cpu")
    fake = gen(torch.randn(5, cfg.latent_dim, dtype=torch.float64))
    assert fake.shape == (5, *shape) and fake.abs().max() <= 1
    assert disc(fake).shape == (5, 1)


def test_architectures_refuse_wrong_shapes():
    with pytest.raises(ConfigError, match="takes images"):
        GAN_MODELS.get("dcgan")(TINY, (2,), 0, torch.float64, "cpu")
    with pytest.raises(ConfigError, match="divisible by 4"):
        GAN_MODELS.get("dcgan")(TINY, (1, 10, 10), 0, torch.float64, "cpu")
    with pytest.raises(ConfigError, match="28x28"):
        GAN_MODELS.get("paper-mnist")(TINY, (1, 8, 8), 0, torch.float64, "cpu")
    with pytest.raises(ConfigError, match="takes vectors"):
        GAN_MODELS.get("mlp")(ModelConfig(), (1, 8, 8), 0, torch.float64, "cpu")


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("target", ["fid", "is"])
def test_reverse_pass_equals_unrolled_autograd(image_setup, tmp_path, opt, target):
    version, metric = image_setup
    run = RunDir(train(version, _cfg(opt), metric, tmp_path / "run", progress=False))
    problem = run.problem(version)
    tgt = problem.target(target)
    result = reverse_pass(problem, run, tgt, progress=False)

    expected, value = unrolled_grad(problem, run, tgt, torch.float64)
    assert result.value == pytest.approx(value, rel=1e-12)
    torch.testing.assert_close(result.grad_w, expected, rtol=1e-9, atol=1e-12)
    assert expected.abs().max() > 0


@pytest.mark.parametrize("opt,target", [("sgd", "fid"), ("adam", "is")])
def test_reverse_pass_on_32x32_colour_images_equals_unrolled_autograd(tmp_path, opt, target):
    """The same exactness for the CIFAR-size architecture: three (de)convolution levels with
    layer norm, on 3x32x32 images and a 3-channel feature classifier."""
    version, metric = _setup(tmp_path, (3, 32, 32))
    cfg = dataclasses.replace(_cfg(opt), model=TINY32)
    run = RunDir(train(version, cfg, metric, tmp_path / "run", progress=False))
    problem = run.problem(version)
    assert problem.samples(run.load_state(run.n_steps)).shape == (9, 3, 32, 32)
    tgt = problem.target(target)
    result = reverse_pass(problem, run, tgt, progress=False)

    expected, value = unrolled_grad(problem, run, tgt, torch.float64)
    assert result.value == pytest.approx(value, rel=1e-12)
    torch.testing.assert_close(result.grad_w, expected, rtol=1e-9, atol=1e-12)
    assert expected.abs().max() > 0


def test_run_records_the_classifier_and_refuses_a_changed_one(image_setup, tmp_path):
    version, metric = image_setup
    path = train(version, _cfg("sgd"), metric, tmp_path / "run", progress=False)
    run = RunDir(path)
    assert run.provenance["classifier"]["data_digest"] == version.digest
    results = run.results()
    assert {"fid", "is", "disc_loss", "classifier_accuracy"} <= set(results)
    # torch-fidelity's numbers on the same samples and features (float32 run: relative 1e-3)
    assert results["fid_torch_fidelity"] == pytest.approx(results["fid"], rel=1e-3)
    assert results["is_torch_fidelity"] == pytest.approx(results["is"], rel=1e-3)
    # Another classifier at the same path: the run's FID would silently change meaning.
    with torch.random.fork_rng():
        torch.manual_seed(1)
        other = FeatureCNN((1, 8, 8), 3)
    save_classifier(
        metric.classifier, other, data_digest=version.digest, dataset="test",
        input_shape=(1, 8, 8), n_classes=3, test_accuracy=0.5, train_params={}, force=True,
    )  # fmt: skip
    with pytest.raises(TrajectoryError, match="classifier changed"):
        run.problem(version)


@pytest.mark.integration
def test_a_run_with_inception_weights_reports_fid_inception(
    image_setup, tmp_path, tiny_version, inception_weights
):
    """metric.inception_weights adds fid_inception: FID on torch-fidelity's Inception-v3
    features of the run's samples against the held-out images (grey 8x8 here, as RGB)."""
    version, metric = image_setup
    metric = dataclasses.replace(metric, inception_weights=str(inception_weights))
    run = RunDir(train(version, _cfg("sgd"), metric, tmp_path / "run", progress=False))
    results = run.results()
    problem = run.problem(version)
    model = load_inception(str(inception_weights))
    samples = torch.from_numpy(problem.samples(run.load_state(run.n_steps)))
    expected = inception_fid(model, samples, inception_fit(model, problem.x_eval))
    assert results["fid_inception"] == pytest.approx(expected, rel=1e-9)
    assert results["fid_inception"] > 0 and results["fid_inception"] != results["fid"]
    # Missing weights are refused before anything is trained; vectors have no Inception FID.
    missing = dataclasses.replace(metric, inception_weights=str(tmp_path / "none.pth"))
    with pytest.raises(DataError, match="Inception weights not found"):
        train(version, _cfg("sgd"), missing, tmp_path / "r2", progress=False)
    assert not (tmp_path / "r2").exists()
    gan = dataclasses.replace(_cfg("sgd"), problem="gan", model=ModelConfig())
    vectors = MetricConfig(inception_weights=str(inception_weights))
    with pytest.raises(ConfigError, match="Inception FID is for images"):
        train(tiny_version, gan, vectors, tmp_path / "r3", progress=False)
    with pytest.raises(ConfigError, match="inception_weights must be"):
        MetricConfig(inception_weights=" ")


def test_classifier_of_another_dataset_is_refused(image_setup, tmp_path):
    version, metric = image_setup
    rng = np.random.default_rng(9)
    other = write_version(
        tmp_path / "other", _images(rng, 10), np.arange(10), _images(rng, 5), dataset="test",
        params={}, y=rng.integers(0, 3, 10), y_eval=rng.integers(0, 3, 5),
    )  # fmt: skip
    with pytest.raises(DigestMismatchError, match="neither"):
        train(other, _cfg("sgd"), metric, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_image_problem_needs_a_classifier_and_images(image_setup, tmp_path, tiny_version):
    version, metric = image_setup
    with pytest.raises(ConfigError, match="needs a feature classifier"):
        train(version, _cfg("sgd"), MetricConfig(), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="trains on images"):
        train(tiny_version, _cfg("sgd"), metric, tmp_path / "b", progress=False)
    gan = dataclasses.replace(_cfg("sgd"), problem="gan")
    with pytest.raises(ConfigError, match="trains on vectors"):
        train(version, gan, metric, tmp_path / "c", progress=False)


def test_float32_reverse_pass_follows_the_recorded_trajectory(image_setup, tmp_path):
    """In float32 the reverse pass advances by the plain step (bitwise the recording), so the
    replay check holds exactly, and its gradient agrees with unrolled autograd."""
    version, metric = image_setup
    cfg = dataclasses.replace(_cfg("adam"), dtype="float32", epochs=6)
    run = RunDir(train(version, cfg, metric, tmp_path / "run", progress=False))
    problem = run.problem(version)
    tgt = problem.target("fid")
    result = reverse_pass(problem, run, tgt, progress=False)
    expected, _ = unrolled_grad(problem, run, tgt, torch.float32)
    torch.testing.assert_close(result.grad_w, expected, rtol=1e-3, atol=1e-4 * expected.abs().max())


def test_replay_from_a_checkpoint_is_bitwise_the_recording(image_setup, tmp_path):
    """A loaded checkpoint continues exactly as training did (float32, where a view into the
    file buffer would round differently and a chaotic GAN would amplify it)."""
    version, metric = image_setup
    rng = np.random.default_rng(5)
    version = write_version(
        tmp_path / "v100", _images(rng, 100), np.arange(1000, 1100), version.x_eval, dataset="t",
        params={}, provenance=Provenance(parent=version, removed_ids=version.ids),
        y=rng.integers(0, 3, 100), y_eval=version.y_eval,
    )  # fmt: skip
    model = dataclasses.replace(TINY, latent_dim=16, g_hidden=(32, 16), d_hidden=(16, 32))
    cfg = dataclasses.replace(
        _cfg("adam"), model=model, dtype="float32", epochs=3, batch_size=50, checkpoint_every=2
    )
    run = RunDir(train(version, cfg, metric, tmp_path / "run", progress=False))
    problem = run.problem(version)
    for start, stop in zip(run.checkpoint_steps[:-1], run.checkpoint_steps[1:], strict=True):
        replayed = flatten_state(run_steps(problem, run.load_state(start), start, stop))
        recorded = flatten_state(run.load_state(stop))
        assert all(torch.equal(replayed[k], recorded[k]) for k in recorded), (start, stop)
