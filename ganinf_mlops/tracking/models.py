"""A run's served network as an MLflow Model, and the job's best one in the Model Registry.

Logged when a main run is trained (`ModelLog.trained`), in that run:
    generator            a GAN's generator: latents, or a sample count, -> samples
    classifier           the classifier problem's network: instances -> class probabilities, label
    feature_classifier   an image run's FID/IS classifier (once per process and classifier)
Each is a pyfunc model from code (`model_code.py`: nothing is unpickled) whose artifacts are the
network's final parameters (safetensors, checked by sha256) and `model.json`, what rebuilds the
network without the data (`Problem.rebuild_served`); never the trajectory.

Registered when the job is done (`ModelLog.register`): the best iteration's model
(`notes.best_iteration`; iteration 0 when nothing was cleansed) under `job.registered_model`
(null: `<experiment>-<preset>`), tagged with its dataset version, the verdict and the headline;
alias `candidate` always, `champion` when the verdict is `improved` and no gate of the job
failed (`aliases`). The registry needs a database-backed store: on a file store, or a registry
that refuses, it is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import safetensors.torch
import torch
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from ganinf_mlops import keys
from ganinf_mlops.config import Preset, check_seed, feature_classifier, train_config_from_dict
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.errors import DataError, DigestMismatchError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.io import read_json, write_json
from ganinf_mlops.limits import check_max
from ganinf_mlops.problems import PROBLEMS
from ganinf_mlops.problems.base import CLASSIFIER, GENERATOR, Served
from ganinf_mlops.problems.schedule import latent
from ganinf_mlops.report import IMPROVED, verdict_state
from ganinf_mlops.tracking import notes, tags
from ganinf_mlops.train.rundir import CHECKPOINTS, RunDir, checkpoint_name

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
PARAMS_FILE = "params.safetensors"
FEATURE_CLASSIFIER = "feature_classifier"
CANDIDATE, CHAMPION = "candidate", "champion"
N, SEED = "n", "seed"  # the columns of a sample count (and its latents' seed)
_CODE = Path(__file__).with_name("model_code.py")
_EXAMPLE_N = 4
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


# ---- the model's input and output ---------------------------------------------------------
def latent_columns(latent_dim: int) -> list[str]:
    return [f"z{i}" for i in range(latent_dim)]


def feature_columns(data_shape: tuple[int, ...] | list[int]) -> list[str]:
    """One column per value of an instance, flattened in C, H, W order for images."""
    return [f"x{i}" for i in range(math.prod(data_shape))]


def latents(frame: pd.DataFrame, latent_dim: int, default_seed: int, dtype: torch.dtype):
    """The latents [n, latent_dim] a frame asks for: columns z0..z{k-1}, one latent a row; or
    `n` (and `seed`, default the run's evaluation seed) a row, n latents drawn as the run draws
    its own (`problems.schedule.latent`), rows after each other."""
    columns = latent_columns(latent_dim)
    given = [c for c in columns if c in frame.columns]
    if N in frame.columns:
        if given:
            raise DataError("give latents (z0, z1, ...) or a sample count (n), not both")
        blocks = []
        for _, row in frame.iterrows():
            n = _whole(row[N], N)
            check_max("n_gen", n, N)
            seed = row.get(SEED)
            seed = default_seed if seed is None or pd.isna(seed) else _whole(seed, SEED)
            check_seed(seed)
            blocks.append(latent(seed, n, latent_dim, dtype, "cpu"))
        if not blocks:
            raise DataError("no rows: give n (and seed) or latents z0..")
        return torch.cat(blocks)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"a generator takes columns z0..z{latent_dim - 1} (latents) or n (a sample "
            f"count, with an optional seed); missing {', '.join(missing[:5])}"
        )
    return _finite(frame[columns], "latents", dtype)


def instances(frame: pd.DataFrame, data_shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    """Instances [n, *data_shape] from columns x0..x{d-1} (an image flattened C, H, W)."""
    columns = feature_columns(data_shape)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"a classifier takes columns x0..x{len(columns) - 1}; missing {', '.join(missing[:5])}"
        )
    return _finite(frame[columns], "instances", dtype).reshape(-1, *data_shape)


def class_frame(logits: torch.Tensor) -> pd.DataFrame:
    """The predicted `label` and each class's probability p0..p{K-1}."""
    p = torch.softmax(logits.to(torch.float64), dim=1).cpu().numpy()
    return pd.DataFrame({"label": p.argmax(1), **{f"p{k}": p[:, k] for k in range(p.shape[1])}})


def _whole(value: Any, name: str) -> int:
    try:
        whole = not isinstance(value, bool) and float(value).is_integer()
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise DataError(f"{name} must be a whole number, got {value!r}")
    if name == N and value < 1:
        raise DataError(f"n must be >= 1, got {value!r}")
    return int(value)


def _finite(frame: pd.DataFrame, what: str, dtype: torch.dtype) -> torch.Tensor:
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numbers") from None
    if not np.isfinite(values).all():
        raise DataError(f"{what} must be finite")
    return torch.tensor(values, dtype=dtype)


def signature(served: Served) -> ModelSignature:
    """A generator: optional columns n and seed, or z0..; samples out as [n, *data_shape]. A
    classifier: columns x0..; label and p0.. out."""
    shape = [int(s) for s in served.spec["data_shape"]]
    if served.kind == GENERATOR:
        optional = [ColSpec("long", N, required=False), ColSpec("long", SEED, required=False)]
        optional += [
            ColSpec("double", c, required=False) for c in latent_columns(served.spec["latent_dim"])
        ]
        dtype = torch.empty(0, dtype=_dtype(served)).numpy().dtype
        return ModelSignature(Schema(optional), Schema([TensorSpec(dtype, (-1, *shape))]))
    inputs = [ColSpec("double", c) for c in feature_columns(shape)]
    outputs = [ColSpec("long", "label")]
    outputs += [ColSpec("double", f"p{k}") for k in range(served.spec["n_classes"])]
    return ModelSignature(Schema(inputs), Schema(outputs))


def input_example(served: Served, seed: int, version: DatasetVersion) -> pd.DataFrame:
    """A few samples from the run's evaluation seed, or two held-out instances."""
    if served.kind == GENERATOR:
        return pd.DataFrame({N: [_EXAMPLE_N], SEED: [seed]})
    x = np.asarray(version.x_eval[:2], dtype=np.float64).reshape(2, -1)
    return pd.DataFrame(x, columns=feature_columns(served.spec["data_shape"]))


def _dtype(served: Served) -> torch.dtype:
    return next(iter(served.params.values())).dtype


# ---- the logged files ---------------------------------------------------------------------
def write_served(served: Served, rd: RunDir, out: Path) -> None:
    """`served`'s parameters and the record that rebuilds it (model.json) into directory `out`."""
    data = safetensors.torch.save(
        {k: v.detach().cpu().contiguous() for k, v in served.params.items()}
    )
    out.mkdir(parents=True)
    (out / PARAMS_FILE).write_bytes(data)
    record = {
        "format_version": FORMAT_VERSION,
        "kind": served.kind,
        "train": rd.meta["train"],
        "spec": served.spec,
        # A sample count without a seed draws the run's own evaluation latents.
        "sample_seed": int(getattr(rd.metric_config, "seed", 0)),
        "params_sha256": hashlib.sha256(data).hexdigest(),
        "source": {
            "checkpoint": f"{CHECKPOINTS}/{checkpoint_name(rd.n_steps)}",
            "dataset_digest": rd.dataset_digest,
        },
    }
    write_json(out / MODEL_JSON, record)


def load_served(path: Path) -> tuple[Served, int]:
    """The network `write_served` wrote into `path`, on the CPU, and its default sample seed."""
    record = read_json(path / MODEL_JSON, f"model {path}:")
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        raise DataError(f"model {path / MODEL_JSON}: not a ganinf model record")
    weights = path / PARAMS_FILE
    actual = sha256_file(weights)
    if actual != record["params_sha256"]:
        raise DigestMismatchError(f"model {weights}", record["params_sha256"], actual)
    cfg = train_config_from_dict(record["train"])
    params = safetensors.torch.load_file(str(weights))
    served = PROBLEMS.get(cfg.problem).rebuild_served(cfg, record["spec"], params)
    if served.kind != record["kind"]:
        raise DataError(f"model {path / MODEL_JSON}: a {record['kind']!r}, rebuilt a {served.kind}")
    return served, int(record["sample_seed"])


def feature_served(path: Path) -> Served:
    """An image run's feature classifier (features/classifier.py, checked as it loads) served
    like the classifier problem's network: images -> class logits."""
    from ganinf_mlops.features.classifier import load_classifier

    c = load_classifier(path)
    spec = {"data_shape": list(c.input_shape), "n_classes": c.n_classes}
    return Served(CLASSIFIER, c.model, dict(c.model.named_parameters()), spec)


class GaninfModel(mlflow.pyfunc.PythonModel):
    """The pyfunc of every model here; its artifacts say which network it serves."""

    def load_context(self, context) -> None:
        arts = context.artifacts
        if FEATURE_CLASSIFIER in arts:
            self.served, self.seed = feature_served(Path(arts[FEATURE_CLASSIFIER])), 0
        else:
            self.served, self.seed = load_served(Path(arts["model"]))

    # The pd.DataFrame hint: MLflow hands over a frame (and asks for no hint-based schema).
    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        s, dtype = self.served, _dtype(self.served)
        if s.kind == GENERATOR:
            return s(latents(frame, s.spec["latent_dim"], self.seed, dtype)).cpu().numpy()
        return class_frame(s(instances(frame, s.spec["data_shape"], dtype)))


def _requirements() -> list[str]:
    """What loading needs: this package (it holds the networks) and the versions it ran with."""
    import ganinf_mlops

    return [
        f"ganinf-mlops=={ganinf_mlops.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
    ]


def log_model(
    name: str,
    artifacts: dict[str, str],
    served: Served,
    example: pd.DataFrame,
    model_tags: dict[str, str],
) -> str:
    """Log one model into the active run; its models:/ URI. MLflow loads it back to check the
    example against the signature: that download draws no progress bar."""
    saved = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(_CODE),
            artifacts=artifacts,
            signature=signature(served),
            input_example=example,
            pip_requirements=_requirements(),
            tags=model_tags,
        )
    finally:
        if saved is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = saved
    return info.model_uri


# ---- the registry -------------------------------------------------------------------------
def aliases(verdict: str | None, gate_passed: bool | None) -> tuple[str, ...]:
    """`candidate` on every registration; `champion` too when the cleanse improved the scored
    metric beyond retraining noise and the job's gate, if one ran, passed."""
    if verdict == IMPROVED and gate_passed is not False:
        return (CANDIDATE, CHAMPION)
    return (CANDIDATE,)


def registered_name(configured: str | None, experiment: str, preset: str) -> str:
    """job.registered_model, or `<experiment>-<preset>` ('/' and ':', which the registry
    refuses, as '-')."""
    return configured or re.sub(r"[/:]", "-", f"{experiment}-{preset}")


def headline(summary: dict[str, Any], iteration: int) -> tuple[str, float] | None:
    """The headline metric and its value at `iteration` (report.summarize: the seed mean where
    there are several seeds)."""
    metric = summary.get(keys.HEADLINE_METRIC)
    row = summary["iterations"][str(iteration)]
    return None if metric is None else (metric, float(row[keys.HEADLINE]))


def supports_registry(uri: str) -> bool:
    """The Model Registry needs a database-backed store (sqlite, postgresql, a server)."""
    return urlparse(uri).scheme not in ("", "file")


@dataclass(frozen=True)
class Logged:
    uri: str  # models:/<model id>
    version: str  # the dataset version it was trained on, "v1 (07f90fab65c1)"
    digest: str


class ModelLog:
    """The models a tracker logged, by the iteration of their run, and the job's gate."""

    def __init__(self) -> None:
        self.by_iteration: dict[int, Logged] = {}
        self.gate_passed: bool | None = None
        self._classifiers: set[str] = set()  # digests of the feature classifiers logged

    def start_job(self) -> None:
        self.by_iteration, self.gate_passed = {}, None

    def trained(self, rd: RunDir, version: DatasetVersion, iteration: int) -> None:
        """Log the run's served network (and its feature classifier) into the active run."""
        import ganinf_mlops

        model_tags = {tags.VERSION: ganinf_mlops.__version__, tags.DATASET_DIGEST: version.digest}
        served = rd.served(version)
        with tempfile.TemporaryDirectory(prefix="ganinf-model-") as tmp:
            if served is not None:
                write_served(served, rd, Path(tmp) / "model")
                seed = int(getattr(rd.metric_config, "seed", 0))
                uri = log_model(
                    served.kind, {"model": str(Path(tmp) / "model")}, served,
                    input_example(served, seed, version), model_tags,
                )  # fmt: skip
                label = notes.version_label(version)
                self.by_iteration[iteration] = Logged(uri, label, version.digest)
        path = feature_classifier(rd.metric_config)
        digest = (rd.provenance.get("classifier") or {}).get("digest")
        if path is not None and digest not in self._classifiers:
            fc = feature_served(Path(path))
            log_model(
                FEATURE_CLASSIFIER, {FEATURE_CLASSIFIER: str(path)}, fc,
                input_example(fc, 0, version), model_tags,
            )  # fmt: skip
            self._classifiers.add(digest)

    def register(
        self, client: Any, uri: str, summary: dict[str, Any], preset: Preset, experiment: str
    ) -> Any | None:
        """Register the best iteration's model (`registered_name`) with its tags and aliases;
        the model version, or None when there is nothing to register or no registry."""
        iteration = int(summary.get(keys.BEST_ITERATION, 0))
        logged = self.by_iteration.get(iteration)
        if logged is None:
            return None
        if not supports_registry(uri):
            log.warning(
                "not registering the model: the Model Registry needs a database-backed "
                "tracking store (sqlite:///mlflow.db, a server), not %s",
                uri,
            )
            return None
        import ganinf_mlops

        verdict = verdict_state(summary)
        version_tags = {
            tags.VERSION: ganinf_mlops.__version__,
            tags.PRESET: preset.name,
            tags.ITERATION: str(iteration),
            tags.INPUT_VERSION: logged.version,
            tags.DATASET_DIGEST: logged.digest,
        }
        if verdict is not None:
            version_tags[tags.VERDICT] = verdict
        head = headline(summary, iteration)
        if head is not None:
            version_tags[tags.HEADLINE_METRIC] = keys.tracking_name(head[0])
            version_tags[tags.HEADLINE] = f"{head[1]:.6g}"
        name = registered_name(preset.job.registered_model, experiment, preset.name)
        try:
            mv = mlflow.register_model(logged.uri, name, tags=version_tags)
            for alias in aliases(verdict, self.gate_passed):
                client.set_registered_model_alias(name, alias, mv.version)
        except mlflow.exceptions.MlflowException as exc:
            # The job's work is done and logged: a registry that refuses is said, not fatal.
            log.warning("could not register the model as %r at %s: %s", name, uri, exc)
            return None
        return mv
