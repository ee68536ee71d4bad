"""Dataset sources, registered by name in `DATASETS`: synthetic generators and user `.npz` files
(image datasets live in images.py).

Every source returns a `RawData`; `ganinf_mlops.data.version.create_raw_version` turns it into a
versioned dataset directory.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganinf_mlops.bounded import check_regular
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.limits import check_max, env_name, limit
from ganinf_mlops.registry import Registry

ANOMALY_NOISE = 0.3


@dataclass(frozen=True)
class RawData:
    """Generated or loaded data before versioning.

    `x_eval` holds held-out points from the clean distribution, used only by evaluation metrics.
    `ids` is None when the source has no instance ids (then 0..N-1 are assigned on versioning).
    `params` are the JSON-serialisable creation parameters recorded in the manifest.
    `y` / `y_eval` are optional integer class labels of `x` / `x_eval` (both or neither).
    """

    x: np.ndarray
    x_eval: np.ndarray
    is_anomaly: np.ndarray | None
    params: dict[str, Any]
    ids: np.ndarray | None = None
    y: np.ndarray | None = None
    y_eval: np.ndarray | None = None


DataSource = Callable[..., RawData]
DATASETS: Registry[DataSource] = Registry("dataset")


def round_half_up(value: float) -> int:
    """Round .5 up: Python's `round` goes to even, which surprises users (round(2.5) == 2)."""
    return int(math.floor(value + 0.5))


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    check_max("n", int(value), name)
    return int(value)


def _check_mean_cov(
    mean: Sequence[float], cov: Sequence[Sequence[float]]
) -> tuple[np.ndarray, ...]:
    try:
        mean_a = np.asarray(mean, dtype=np.float64)
        cov_a = np.asarray(cov, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"mean and cov must be numeric: {e}") from None
    if mean_a.shape != (2,) or not np.all(np.isfinite(mean_a)):
        raise ConfigError(f"mean must be 2 finite numbers, got {mean!r}")
    if cov_a.shape != (2, 2) or not np.all(np.isfinite(cov_a)):
        raise ConfigError(f"cov must be a finite 2x2 matrix, got {cov!r}")
    if not np.allclose(cov_a, cov_a.T, rtol=0.0, atol=1e-12):
        raise ConfigError(f"cov must be symmetric, got {cov_a.tolist()}")
    try:
        chol = np.linalg.cholesky(cov_a)
    except np.linalg.LinAlgError:
        raise ConfigError(f"cov must be positive definite, got {cov_a.tolist()}") from None
    return mean_a, cov_a, chol


ANOMALY_LAYOUTS = ("ring", "cluster")


@DATASETS.register("gaussian2d")
def gaussian2d(
    n: int = 1000,
    n_eval: int = 1000,
    mean: Sequence[float] = (1.0, 1.0),
    cov: Sequence[Sequence[float]] = ((1.0, 0.8), (0.8, 1.0)),
    anomaly_frac: float = 0.0,
    anomaly_distance: float = 6.0,
    seed: int = 0,
    anomaly_layout: str = "ring",
) -> RawData:
    """`n` samples of a 2-D normal N(mean, cov), some of them replaced by injected anomalies.

    Anomalies: `round_half_up(anomaly_frac * n)` rows, chosen uniformly at random, are replaced by
    ``mean + anomaly_distance * (cos a, sin a) + 0.3 * e`` with the angle ``a ~ U[0, 2*pi)`` and
    ``e ~ N(0, I)``: points at Euclidean distance about `anomaly_distance` from the mode, in a
    random direction, far outside the bulk of the clean distribution for the default parameters.

    `x_eval` holds `n_eval` clean samples. Training samples, evaluation samples and anomalies use
    independent child streams of ``SeedSequence(seed)``, so e.g. changing `anomaly_frac` leaves the
    evaluation set unchanged.

    `anomaly_layout` "cluster" draws one angle for all of them instead: a contaminating mode (a
    batch of bad records from one source) that a generator which fits the data tries to cover.
    """
    n = _check_count("n", n)
    n_eval = _check_count("n_eval", n_eval)
    mean_a, cov_a, chol = _check_mean_cov(mean, cov)
    if not (isinstance(anomaly_frac, int | float) and 0.0 <= anomaly_frac < 1.0):
        raise ConfigError(f"anomaly_frac must be in [0, 1), got {anomaly_frac!r}")
    if not (isinstance(anomaly_distance, int | float) and math.isfinite(anomaly_distance)):
        raise ConfigError(f"anomaly_distance must be a finite number, got {anomaly_distance!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if anomaly_layout not in ANOMALY_LAYOUTS:
        raise ConfigError(
            f"anomaly_layout must be one of {', '.join(ANOMALY_LAYOUTS)}, got {anomaly_layout!r}"
        )

    train_ss, eval_ss, anomaly_ss = np.random.SeedSequence(int(seed)).spawn(3)

    def sample(ss: np.random.SeedSequence, count: int) -> np.ndarray:
        z = np.random.default_rng(ss).standard_normal((count, 2))
        return mean_a + z @ chol.T

    x = sample(train_ss, n)
    x_eval = sample(eval_ss, n_eval)

    n_anomalies = round_half_up(anomaly_frac * n)
    is_anomaly = np.zeros(n, dtype=bool)
    if n_anomalies:
        rng = np.random.default_rng(anomaly_ss)
        idx = rng.choice(n, size=n_anomalies, replace=False)
        angle = rng.uniform(0.0, 2.0 * np.pi, size=n_anomalies if anomaly_layout == "ring" else 1)
        angle = np.broadcast_to(angle, (n_anomalies,))
        direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        noise = ANOMALY_NOISE * rng.standard_normal((n_anomalies, 2))
        x[idx] = mean_a + anomaly_distance * direction + noise
        is_anomaly[idx] = True

    params = {
        "n": n,
        "n_eval": n_eval,
        "mean": mean_a.tolist(),
        "cov": cov_a.tolist(),
        "anomaly_frac": float(anomaly_frac),
        "anomaly_distance": float(anomaly_distance),
        "seed": int(seed),
    }
    if anomaly_layout != "ring":  # recorded when used, so older manifests read the same
        params["anomaly_layout"] = anomaly_layout
    return RawData(x=x, x_eval=x_eval, is_anomaly=is_anomaly, params=params)


def check_finite(arr: np.ndarray, what: str) -> None:
    """DataError naming `what`, the count and the first position of NaN/inf values, if any."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{what} has {int(bad.sum())} non-finite values (NaN/inf), first at {first}"
        )


def _as_points(name: str, arr: np.ndarray, path: Path) -> np.ndarray:
    """Validate a [N, d] array of finite real numbers and return it as float64."""
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{path}: '{name}' expected shape [N, d] with N, d >= 1, got {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: '{name}' must hold real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    check_finite(out, f"{path}: '{name}'")
    return out


def _as_ids(arr: np.ndarray, n: int, path: Path) -> np.ndarray:
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{path}: 'ids' expected shape ({n},) to match 'x', got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise DataError(f"{path}: 'ids' must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and n and int(arr.max()) > np.iinfo(np.int64).max:
        raise DataError(f"{path}: 'ids' do not fit in int64")
    ids = arr.astype(np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != ids.size:
        dup = uniq[counts > 1]
        raise DataError(f"{path}: 'ids' must be unique; {dup.size} duplicated, e.g. {int(dup[0])}")
    return ids


def load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz file (no pickles); `what` names the file in error messages.

    Each member is read through `zipfile` against the size its .npy header declares (the
    declared sizes together under `limits` npz_bytes), in chunks: a member holding more or less
    than its header declares is refused, whatever sizes the archive's records claim."""
    check_regular(path, what, DataError, missing="is missing (not found)")
    try:
        if not zipfile.is_zipfile(path):
            raise DataError(f"{what} is corrupt: not an .npz archive (not a zip file)")
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = [info.filename for info in members]
            for name in names:
                if names.count(name) > 1:
                    raise DataError(f"{what} holds {_key(name)!r} twice")
            arrays: dict[str, np.ndarray] = {}
            budget = limit("npz_bytes")
            for info in members:
                arrays[_key(info.filename)] = _read_member(archive, info, what, budget)
                budget -= arrays[_key(info.filename)].nbytes
            return arrays
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DataError(f"{what} is corrupt or unreadable: {e}") from None


_CHUNK = 1 << 22


def _key(name: str) -> str:
    return name[:-4] if name.endswith(".npy") else name


def _read_header(fh: Any, what: str, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy stream `fh`, read from its header alone."""
    try:
        major, _ = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        return read_header(fh)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as e:
        raise DataError(f"{what}: array {key!r} has a malformed .npy header ({e})") from None


def npz_shape(path: Path, key: str, what: str) -> tuple[int, ...] | None:
    """The shape array `key` of the .npz `path` declares (None when absent), from its .npy
    header alone: what tells vectors from images before the file is loaded."""
    check_regular(path, what, DataError, missing="is missing (not found)")
    try:
        if not zipfile.is_zipfile(path):
            raise DataError(f"{what} is corrupt: not an .npz archive (not a zip file)")
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename == f"{key}.npy":
                    with archive.open(info) as fh:
                        return tuple(int(s) for s in _read_header(fh, what, key)[0])
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DataError(f"{what} is corrupt or unreadable: {e}") from None
    return None


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, budget: int
) -> np.ndarray:
    """One .npy member, read in chunks into an array of its declared size (at most `budget`)."""
    key = _key(info.filename)
    if not info.filename.endswith(".npy"):
        raise DataError(f"{what}: member {info.filename!r} is not an .npy array")
    with archive.open(info) as fh:
        shape, fortran, dtype = _read_header(fh, what, key)
        if dtype.hasobject:
            raise DataError(f"{what}: array {key!r} holds pickled (object) data: not loaded")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared > budget:
            raise DataError(
                f"{what}: array {key!r} declares shape {shape} ({declared:,} bytes), above the "
                f"limit {limit('npz_bytes'):,} bytes of all arrays (raise it with "
                f"{env_name('npz_bytes')})"
            )
        try:
            arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        except MemoryError:
            raise DataError(
                f"{what}: array {key!r} needs {declared:,} bytes, more than this machine has"
            ) from None
        view = memoryview(arr.reshape(-1, order="A").view(np.uint8)) if declared else None
        done = 0
        while done < declared:
            got = fh.readinto(view[done : done + _CHUNK])
            if not got:
                raise DataError(
                    f"{what}: array {key!r} holds fewer bytes ({done:,}) than its header "
                    f"declares ({declared:,})"
                )
            done += got
        if fh.read(1):
            raise DataError(f"{what}: array {key!r} holds more data than its header declares")
    return arr


def as_class_labels(name: str, arr: np.ndarray, n: int, where: str) -> np.ndarray:
    """`arr` as int64 class labels: [n] non-negative whole numbers (integers, or floats holding
    whole numbers, as a CSV with a missing value turns a column into floats), under the classes
    limit; else a DataError naming `where` and the key `name`."""
    arr = np.asarray(arr)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(
            f"{where}: '{name}' expected shape ({n},), one label per row of 'x', got {arr.shape}"
        )
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            bad = arr[~whole][0].item()
            raise DataError(f"{where}: '{name}' must hold integer class labels, found {bad}")
    elif arr.dtype.kind not in "biu":
        raise DataError(f"{where}: '{name}' must hold integer class labels, got dtype {arr.dtype}")
    if n and arr.min() < 0:
        raise DataError(
            f"{where}: '{name}' must hold non-negative class labels, found {arr.min().item()}"
        )
    top = limit("classes")
    if n and arr.max() >= top:
        raise DataError(
            f"{where}: '{name}' holds label {int(arr.max()):,}, above the limit {top:,} classes "
            f"(raise it with {env_name('classes')})"
        )
    return arr.astype(np.int64)


def check_eval_frac(eval_frac: object) -> float:
    if isinstance(eval_frac, bool) or not (
        isinstance(eval_frac, int | float) and 0.0 < eval_frac < 1.0
    ):
        raise ConfigError(f"eval_frac must be in (0, 1), got {eval_frac!r}")
    return float(eval_frac)


def holdout(n: int, eval_frac: object, seed: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, evaluation rows), each in file order: a seeded random `eval_frac` of the
    `n` rows, at least one, is held out. `what` names the data in the error of too few rows."""
    eval_frac = check_eval_frac(eval_frac)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    n_eval = max(1, round_half_up(eval_frac * n))
    if n_eval >= n:
        raise DataError(f"{what}: {n} rows are too few to hold out eval_frac={eval_frac}")
    perm = np.random.default_rng(int(seed)).permutation(n)
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


def split_params(eval_frac: float, seed: int) -> dict[str, Any]:
    """What the manifest records of a held-out split (`holdout`)."""
    return {"eval_source": "split", "eval_frac": float(eval_frac), "seed": int(seed)}


def eval_file_params(eval_path: Path) -> dict[str, Any]:
    """What the manifest records of an evaluation set given as a file of its own."""
    return {
        "eval_source": "eval_file",
        "eval_path": str(eval_path),
        "eval_sha256": sha256_file(eval_path),
    }


def _npz_labels(arrays: dict[str, np.ndarray], key: str, n: int, path: Path) -> np.ndarray | None:
    return as_class_labels(key, arrays[key], n, str(path)) if key in arrays else None


def _eval_npz(
    eval_path: Path, labelled: bool, as_x: Callable[[str, np.ndarray, Path], np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """`x` and (iff the input has labels) `y` of an evaluation .npz file; `as_x` checks `x`."""
    arrays = load_npz(eval_path, f"evaluation file {eval_path}")
    if "x" not in arrays:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(f"{eval_path}: missing array 'x' (found: {found})")
    x_eval = as_x("x", arrays["x"], eval_path)
    if labelled != ("y" in arrays):
        need = (
            "needs labels 'y' since the input has them"
            if labelled
            else ("has labels 'y' but the input has none")
        )
        raise DataError(f"evaluation file {eval_path} {need}")
    y_eval = _npz_labels(arrays, "y", x_eval.shape[0], eval_path)
    return x_eval, y_eval


def check_eval_columns(eval_path: Path, n_eval: int, path: Path, n: int, unit: str) -> None:
    """The one error of an evaluation file whose rows do not match the input's."""
    if n_eval != n:
        raise DataError(
            f"evaluation file {eval_path} has {n_eval} {unit} per row but the input {path} has {n}"
        )


@DATASETS.register("npz")
def npz(
    path: str | Path,
    eval_frac: float = 0.2,
    seed: int = 0,
    eval_path: str | Path | None = None,
) -> RawData:
    """User data from an `.npz` with `x` [N, d], optional `y` [N] integer class labels, `x_eval`
    [M, d] (with `y_eval` [M] when `y` is given) and `ids` [N].

    The evaluation set: `x_eval` from the file, else the `x` (and `y`) of the file `eval_path`,
    else a random `eval_frac` of the rows (at least one, seeded), the remaining rows in their
    file order. Without `ids`, the ids are the row numbers in the file, so removed instances can
    always be traced back to the user's rows.
    """
    path = Path(path).expanduser().resolve()
    arrays = load_npz(path, f"dataset file {path}")
    if "x" not in arrays:
        raise DataError(f"{path}: missing array 'x' (found: {', '.join(sorted(arrays)) or 'none'})")
    x = _as_points("x", arrays["x"], path)
    n = x.shape[0]
    ids = _as_ids(arrays["ids"], n, path) if "ids" in arrays else None
    y = _npz_labels(arrays, "y", n, path)
    if "y_eval" in arrays and (y is None or "x_eval" not in arrays):
        raise DataError(f"{path}: 'y_eval' needs both 'x_eval' and 'y'")

    params: dict[str, Any] = {"path": str(path), "sha256": sha256_file(path)}
    if "x_eval" in arrays:
        if eval_path is not None:
            raise ConfigError(f"{path} holds 'x_eval' already: give it or an evaluation file")
        x_eval = _as_points("x_eval", arrays["x_eval"], path)
        if x_eval.shape[1] != x.shape[1]:
            raise DataError(
                f"{path}: 'x_eval' has {x_eval.shape[1]} columns but 'x' has {x.shape[1]}"
            )
        if y is not None and "y_eval" not in arrays:
            raise DataError(f"{path}: 'x_eval' needs labels 'y_eval' since 'x' has 'y'")
        y_eval = _npz_labels(arrays, "y_eval", x_eval.shape[0], path)
        params["eval_source"] = "file"
    elif eval_path is not None:
        eval_path = Path(eval_path).expanduser().resolve()
        x_eval, y_eval = _eval_npz(eval_path, y is not None, _as_points)
        check_eval_columns(eval_path, x_eval.shape[1], path, x.shape[1], "features")
        params.update(eval_file_params(eval_path))
    else:
        train_idx, eval_idx = holdout(n, eval_frac, seed, str(path))
        x_eval, x = x[eval_idx], x[train_idx]
        y_eval, y = (None, None) if y is None else (y[eval_idx], y[train_idx])
        ids = train_idx.astype(np.int64) if ids is None else ids[train_idx]
        params.update(split_params(eval_frac, seed))
    return RawData(x=x, x_eval=x_eval, is_anomaly=None, params=params, ids=ids, y=y, y_eval=y_eval)


# Registers the image and table datasets; at the bottom because they import this module's names.
from ganinf_mlops.data import cifar as _cifar  # noqa: E402, F401
from ganinf_mlops.data import images as _images  # noqa: E402, F401
from ganinf_mlops.data import sklearn_tables as _sklearn_tables  # noqa: E402, F401
from ganinf_mlops.data import tables as _tables  # noqa: E402, F401
