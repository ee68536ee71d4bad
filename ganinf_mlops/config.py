"""Typed configuration and named presets: the one source of defaults for CLI, DVC and MLproject."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ganinf_mlops import keys
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.executor import EXECUTORS
from ganinf_mlops.limits import check_max
from ganinf_mlops.optim import OptimConfig
from ganinf_mlops.registry import check_choice

T = TypeVar("T")
POLICIES = ("positive", "threshold", "top")  # cleanse selection policies (cleanse.py)
# What a cleanse does where the chain stops (stopping.py): exit 2, or pass its input through
ON_ABSTAIN = ("fail", "pass")
BUDGETS = ("steps", "epochs")
DTYPES = ("float64", "float32")
# What a run keeps: "checkpoints" every checkpoint_every steps (exact influence by replay), or
# "final": the initial and final states only (Suzuki et al.'s storage-efficient influence).
STORAGE = ("checkpoints", "final")


def help_field(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with its help text (and `cli.options` metadata: min, choices), which
    the CLI options derived from it show."""
    return field(default=default, metadata={"help": help, **meta})


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be in [0, 2**63), got {seed}")


def check_model_name(name: str) -> None:
    """A name the MLflow Model Registry accepts (no '/' or ':', not blank, no path tricks)."""
    if not name.strip() or any(c in name for c in "/:") or name.strip() in (".", ".."):
        raise ConfigError(f"registered_model {name!r}: a registry name, without '/' or ':'")


def check_device(device: str, available: bool = False) -> None:
    """A torch device string: 'cpu' or 'cuda[:i]'; with `available`, one this machine has (a
    config may name a GPU that only the machine that trains on it has)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:0)"
        ) from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: only cpu and cuda are supported")
    if available and dev.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError(f"device {device!r}: no CUDA GPU is available here")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA GPU(s)")


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains, as far as every problem kind shares it: `problem` names a kind in
    `problems.PROBLEMS`, whose `config_class` (a subclass of this one, registered with the kind)
    adds the kind's own fields: networks and optimizers of a GAN (`problems.gan.GanConfig`) or
    of a classifier (`problems.classifier.ClassifierConfig`). A new kind adds its own subclass
    and no field here or in another kind's config."""

    problem: str = "gan"
    batch_size: int = help_field(100, "Minibatch size.", min=1)
    # The budget: `steps` when set (what the presets state: a dataset of any size gets the
    # number of steps they were tuned with), else `epochs` passes over the data.
    epochs: int | None = help_field(
        50, "Epochs: passes over the data (only when train.steps is null).", min=1
    )
    steps: int | None = help_field(
        None,
        "Exactly this many optimizer steps, as many epochs as they take on this data (wins over "
        "train.epochs; giving --epochs alone clears it).",
        min=1,
    )
    seed: int = help_field(0, "Seed of initialisation, minibatch order and latents.")
    checkpoint_every: int = help_field(
        50, "Checkpoint interval K in steps (the reverse pass holds K steps in memory).", min=1
    )
    dtype: str = help_field("float64", "Floating point type.", choices=DTYPES)
    device: str = help_field("cpu", "Torch device, e.g. cpu or cuda.")
    storage: str = "checkpoints"  # see STORAGE

    def __post_init__(self) -> None:
        check_choice("storage", self.storage, STORAGE)
        check_choice("dtype", self.dtype, DTYPES)
        for name in ("batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 or null, got {getattr(self, name)}")
            check_max(name, getattr(self, name) or 0)
        if self.epochs is None and self.steps is None:
            raise ConfigError("train.steps and train.epochs are both null: give the budget")
        check_seed(self.seed)
        check_device(self.device)

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A mapping written in an older layout of this kind's config, in today's layout (a
        kind whose layout changed overrides this so old runs and params files stay readable)."""
        return data


def kind_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The fields a problem kind's config adds to TrainConfig's (networks, optimizers, ...)."""
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in shared}


def _predicts_change(method: str) -> bool:
    """Whether `method` is an influence method (a baseline has no influence to average); an
    unknown name is left to the scoring, which lists the choices."""
    from ganinf_mlops.influence.methods import METHODS  # late: it imports the problem kinds

    return method not in METHODS or METHODS.get(method).predicts_change


def train_config_class(problem: str) -> type[TrainConfig]:
    """The config dataclass that the problem kind `problem` registered."""
    from ganinf_mlops.problems import PROBLEMS  # late: the problem modules import this one

    return PROBLEMS.get(problem).config_class


def metric_config_class(problem: str) -> type:
    """The metric config dataclass that the problem kind `problem` registered."""
    from ganinf_mlops.problems import PROBLEMS  # late: the problem modules import this one

    return PROBLEMS.get(problem).metric_class


@dataclass(frozen=True)
class MetricConfig:
    """Evaluation of generated samples (the generative kinds' metric config): the final
    generator's samples from `n_gen` fixed latents. `classifier` is the feature classifier
    directory (`ganinf classifier`) whose features and softmax give FID and IS on images; vector
    data needs none. `inception_weights` (images only) adds `fid_inception`, FID on torch-fidelity's
    Inception-v3 features, comparable with published FIDs: a weights file, or "torch-hub" for
    the file torch-fidelity caches (`features.inception`; never downloaded). A kind whose targets
    need other settings registers its own class as its problem's `metric_class`."""

    bandwidth: float = 1.0
    n_gen: int = 1000
    seed: int = 12345
    classifier: str | None = None
    inception_weights: str | None = None

    def __post_init__(self) -> None:
        if not (self.bandwidth > 0 and math.isfinite(self.bandwidth)):
            raise ConfigError(f"bandwidth must be positive, got {self.bandwidth}")
        if self.n_gen < 1:
            raise ConfigError(f"n_gen must be >= 1, got {self.n_gen}")
        check_max("n_gen", self.n_gen)
        if self.inception_weights is not None and (
            not isinstance(self.inception_weights, str) or not self.inception_weights.strip()
        ):
            raise ConfigError(
                "inception_weights must be a weights file path, 'torch-hub' or null, got "
                f"{self.inception_weights!r}"
            )


# The held-out agreement a cleanse (and a failing gate) needs by default: chosen on tuning data
# seeds of the default preset, clean and contaminated (docs/benchmarks/decisions.md).
DEFAULT_MIN_AGREEMENT = 0.75


@dataclass(frozen=True)
class JobOptions:
    """What the job, the DVC pipeline and the cleanse loop do with a trained run."""

    method: str = help_field(
        keys.ALL, "Scoring method: an influence target of the run's problem, or a baseline."
    )
    remove_frac: float = help_field(
        0.05, "Fraction of the instances removed per cleanse, in (0, 1)."
    )
    loo: int = help_field(
        40,
        "Leave-one-out retrainings for validation: 1/4 top, 1/4 bottom, 1/2 random instances; "
        "0 skips validation.",
        min=0,
    )
    group_subsets: int = help_field(
        50, "Random removal sets per fraction (1%, 5%, 20%) for the group score, 0 skips it.", min=0
    )
    last_epochs: int | None = help_field(None, "Trace back only the last K epochs.", min=1)
    average_order: bool = help_field(
        False,
        "Average each instance's influence over minibatch orders: it is counted at every traced "
        "step, weighted by its chance B/N of being drawn there, instead of at the steps it was "
        "drawn at (steadier between training seeds; D sees all N instances per traced step, so "
        "use it with --last-epochs).",
    )
    seed: int = help_field(
        0, "Seed of the validation's instance choice and of the baselines' scores."
    )
    iterations: int = help_field(3, "Cleanse -> retrain iterations of `ganinf loop`.", min=1)
    stop_when_worse: bool = help_field(False, "Stop the loop once the metric stops improving.")
    policy: str = help_field(
        "positive",
        "Which of the top remove_frac go: positive (only those predicted to help), threshold "
        "(harmfulness > threshold) or top (all).",
        choices=POLICIES,
    )
    threshold: float | None = help_field(None, "Harmfulness cut-off of policy threshold.")
    retrain_budget: str = help_field(
        "steps",
        "Fresh retraining keeps the parent's optimizer 'steps', or takes the config's own budget "
        "('epochs': train.steps if set, else train.epochs passes over the smaller data).",
        choices=BUDGETS,
    )
    retrain_seeds: int = help_field(
        1, "Fresh retrainings per version, over training seeds (mean +- std).", min=1
    )
    chunks: int = help_field(
        1,
        "Remove each iteration's budget in C chunks, re-scoring on the counterfactual replay "
        "after each (of every ensemble member).",
        min=1,
    )
    ensemble: int = help_field(
        1, "Average influence over K runs of each version that differ in the training seed.", min=1
    )
    min_agreement: float | None = help_field(
        DEFAULT_MIN_AGREEMENT,
        "Scores of an ensemble: cleanse only when at least this fraction of its members, each "
        "held out of the selection, predicts that the selection helps (and their mean does); "
        "otherwise write nothing and exit 2, as when nothing is predicted to help. One run's "
        "scores are unverified; null turns the check off.",
    )
    allow_unfitted: bool = help_field(
        False,
        "Cleanse even when the scored model did not fit its data (its metric far from the "
        "data's own floor, `ganinf train` says so): its influence is then mostly noise.",
    )
    registered_model: str | None = help_field(
        None,
        "MLflow Model Registry name the job registers its best iteration's model under (a "
        "database-backed store); null: <experiment>-<preset>.",
    )
    executor: str = help_field(
        "auto",
        "Where independent trainings run (ensemble members, retraining seeds, each run's "
        "leave-one-out replays): serial (in this process, one after another), ray (Ray tasks at "
        "RAY_ADDRESS, else on a local Ray instance; the same results) or auto (ray when "
        "RAY_ADDRESS is set, else serial).",
        choices=EXECUTORS,
    )

    def __post_init__(self) -> None:
        check_choice("selection policy", self.policy, POLICIES)
        if (self.policy == "threshold") != (self.threshold is not None):
            raise ConfigError("job.threshold goes with job.policy 'threshold' (and only with it)")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(f"threshold must be finite, got {self.threshold}")
        check_seed(self.seed)
        check_choice("retrain budget", self.retrain_budget, BUDGETS)
        check_choice("executor", self.executor, EXECUTORS)
        if self.ensemble < 1:
            raise ConfigError(f"ensemble must be >= 1, got {self.ensemble}")
        for name in ("ensemble", "retrain_seeds", "loo", "chunks", "iterations", "group_subsets"):
            check_max(name, getattr(self, name))
        if self.ensemble > 1 and not _predicts_change(self.method):
            raise ConfigError("job.ensemble averages influence; the method is a baseline")
        if self.min_agreement is not None:
            if not 0 < self.min_agreement <= 1:
                raise ConfigError(f"min_agreement must be in (0, 1], got {self.min_agreement}")
        if self.chunks < 1:
            raise ConfigError(f"chunks must be >= 1, got {self.chunks}")
        if self.retrain_seeds < 1:
            raise ConfigError(f"retrain_seeds must be >= 1, got {self.retrain_seeds}")
        if not 0 < self.remove_frac < 1:
            raise ConfigError(f"remove_frac must be in (0, 1), got {self.remove_frac}")
        if self.loo != 0 and self.loo < 4:
            raise ConfigError(f"loo must be 0 (skip) or >= 4, got {self.loo}")
        if self.group_subsets < 0:
            raise ConfigError(f"group_subsets must be >= 0, got {self.group_subsets}")
        if self.iterations < 1:
            raise ConfigError(f"iterations must be >= 1, got {self.iterations}")
        if self.last_epochs is not None and self.last_epochs < 1:
            raise ConfigError(f"last_epochs must be >= 1 or null, got {self.last_epochs}")
        if self.registered_model is not None:
            check_model_name(self.registered_model)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    dataset: str
    data_params: dict[str, Any]
    train: TrainConfig
    metric: Any  # the problem kind's metric config (MetricConfig for generative kinds)
    job: JobOptions = field(default_factory=JobOptions)


def get_preset(name: str) -> Preset:
    from ganinf_mlops.presets import PRESETS

    return PRESETS.get(name)


def __getattr__(name: str) -> Any:
    # The presets build the problem kinds' configs, whose modules import this one: the registry
    # lives in `presets` and is read from here lazily, without an import cycle.
    if name == "PRESETS":
        from ganinf_mlops.presets import PRESETS

        return PRESETS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def with_train_options(cfg: TrainConfig, **options: Any) -> TrainConfig:
    """`cfg` with some fields replaced (None keeps the config's); `lr` and `optimizer` apply to
    every optimizer of the config (both networks' of a GAN, a classifier's one). The budget is
    one of the two: `epochs` alone clears the config's `steps` (which would win over it), and
    `steps` alone clears its `epochs`."""
    given = {k: v for k, v in options.items() if v is not None}
    if "epochs" in given and "steps" not in given:
        given["steps"] = None
    elif "steps" in given and "epochs" not in given:
        given["epochs"] = None
    opt = {k: given.pop(k) for k in ("lr", "optimizer") if k in given}
    if opt:
        rename = {"optimizer": "name"}
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if isinstance(value, OptimConfig):
                changes = {rename.get(k, k): v for k, v in opt.items()}
                given[f.name] = dataclasses.replace(value, **changes)
    known = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"a {cfg.problem!r} run has no training option {unknown[0]!r}")
    return dataclasses.replace(cfg, **given)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


ADDED_FIELDS = frozenset(
    {
        ("OptimConfig", "weight_decay"),
        ("ModelConfig", "norm"),
        ("MetricConfig", "classifier"),
        ("MetricConfig", "inception_weights"),
        ("TrainConfig", "storage"),
        ("GanConfig", "reject_threshold"),
        ("GanConfig", "reject_embedding"),
        ("GanConfig", "r1"),
        ("JobOptions", "average_order"),
        ("ClassifierModelConfig", "standardize"),
        ("JobOptions", "allow_unfitted"),
        ("JobOptions", "registered_model"),
        ("JobOptions", "executor"),
    }
)


def _added(cls: type, name: str) -> bool:
    """Whether field `name` of `cls` (or of the base class declaring it) was added later."""
    return any((c.__name__, name) in ADDED_FIELDS for c in cls.__mro__)


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping with exactly its fields (nested dataclasses too).

    Missing and unknown keys are errors that name the full key path, e.g. `train.d_optim.lr`.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    # Fields added after a format was first written read as their defaults when absent, so
    # runs and params files written before them stay readable.
    missing = [n for n in names if n not in data and not _added(cls, n)]
    unknown = sorted(set(data) - set(names))
    if missing:
        raise ConfigError(f"{where}: missing key {where}.{missing[0]}")
    if unknown:
        raise ConfigError(f"{where}: unknown key {where}.{unknown[0]}")
    kwargs: dict[str, Any] = {}
    for n in names:
        if n not in data:
            continue
        value, hint = data[n], hints[n]
        if dataclasses.is_dataclass(hint):
            kwargs[n] = from_dict(hint, value, f"{where}.{n}")
        else:
            kwargs[n] = _typed(value, hint, f"{where}.{n}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _typed(value: Any, hint: Any, where: str) -> Any:
    """`value` as the type `hint` (int, float, bool, str, tuple[int, ...], X | None), or a
    ConfigError naming the key. Numbers written as YAML 1.1 strings ('1e-8') become floats."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(
            _typed(v, typing.get_args(hint)[0], f"{where}[{i}]") for i, v in enumerate(value)
        )
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def train_config_from_dict(d: Any, where: str = "train") -> TrainConfig:
    """Inverse of `to_dict` for a problem kind's TrainConfig (as in a run's meta.json or the
    `train` section of params.yaml): `problem` picks the kind's config class."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    problem = d.get("problem", TrainConfig.problem)
    if not isinstance(problem, str):
        raise ConfigError(f"{where}.problem must be a string, got {problem!r}")
    cls = train_config_class(problem)
    return from_dict(cls, cls.upgrade(d), where)


def metric_config_from_dict(d: Any, problem: str, where: str = "metric") -> Any:
    """The `metric` section of a run or params file, as the metric config of kind `problem`."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    cls = metric_config_class(problem)
    upgrade = getattr(cls, "upgrade", None)
    return from_dict(cls, upgrade(d) if upgrade else d, where)


def feature_classifier(metric: Any) -> str | None:
    """The feature classifier directory a metric config names, if its kind has one."""
    return getattr(metric, "classifier", None)
