"""Tables as a dataset source, registered as `table`: CSV and Parquet files read with pandas.

Every column but the label and the id column is a feature: numeric and finite, or the file is
refused in one line naming the columns. Labels are integers, or strings mapped to 0..C-1 in
sorted order (the names recorded in the manifest as `class_names`). Files are read bounded: a
file over the `table_bytes` limit is refused by its size before it is read.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ganinf_mlops.bounded import read_bounded
from ganinf_mlops.data.datasets import (
    DATASETS,
    RawData,
    _as_ids,
    as_class_labels,
    eval_file_params,
    holdout,
    split_params,
)
from ganinf_mlops.errors import ConfigError, DataError
from ganinf_mlops.hashing import sha256_file
from ganinf_mlops.limits import env_name, limit

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SHOWN = 5  # column names listed in one error


def table_format(path: Path) -> str | None:
    """'csv' or 'parquet' by the file's suffix (any case), None for another file."""
    return TABLE_SUFFIXES.get(path.suffix.lower())


def _names(columns: list[str]) -> str:
    more = f", ... ({len(columns)} in all)" if len(columns) > _SHOWN else ""
    return ", ".join(columns[:_SHOWN]) + more


def read_table(path: Path, what: str) -> pd.DataFrame:
    """The table in the CSV or Parquet file `path`, its column names as strings."""
    import pandas as pd

    fmt = table_format(path)
    if fmt is None:
        raise ConfigError(f"{what}: not a table ({', '.join(TABLE_SUFFIXES)})")
    data = read_bounded(path, what, "table_bytes", DataError, missing="is missing (not found)")
    try:
        if fmt == "csv":
            frame = pd.read_csv(io.BytesIO(data))
        else:
            frame = _read_parquet(data, what)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{what} is not a readable {fmt.upper()} table: {first}") from None
    columns = [str(c) for c in frame.columns]
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise DataError(f"{what} has duplicate column names: {_names(dup)}")
    frame.columns = columns
    if frame.shape[0] == 0:
        raise DataError(f"{what} has no rows")
    return frame


def _read_parquet(data: bytes, what: str) -> pd.DataFrame:
    """A Parquet file's table, refused before decoding when its rows x columns, at 8 bytes a
    value, exceed the npz_bytes limit (a compressed file decodes to many times its size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(io.BytesIO(data))
        meta = source.metadata
        decoded = meta.num_rows * meta.num_columns * 8
        top = limit("npz_bytes")
        if decoded > top:
            raise DataError(
                f"{what} holds {meta.num_rows:,} rows x {meta.num_columns} columns, above the "
                f"limit {top:,} bytes decoded (raise it with {env_name('npz_bytes')})"
            )
        return source.read().to_pandas()
    except pa.ArrowException as e:
        raise ValueError(str(e)) from None


def _features(frame: pd.DataFrame, columns: list[str], where: str) -> np.ndarray:
    """The feature columns as float64 [N, d]: each numeric, none with a missing or NaN/inf."""
    import pandas as pd

    text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise DataError(
            f"{where}: feature columns must be numeric; not numeric: {_names(text)} (encode "
            "them as numbers, drop them, or name the label column)"
        )
    x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        listed = [f"{columns[j]} ({int(bad[:, j].sum())})" for j in cols]
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(
            f"{where}: missing or NaN/inf values in feature columns {_names(listed)}; first at "
            f"row {first} (data rows counted from 0)"
        )
    return x


def _labels(
    parts: list[tuple[str, pd.Series]], column: str
) -> tuple[list[np.ndarray], list[str] | None]:
    """The label column of each (where, values) part as int64 classes, and the class names when
    they are strings (mapped to 0..C-1 in sorted order over all parts)."""
    import pandas as pd

    numeric = [pd.api.types.is_numeric_dtype(s) for _, s in parts]
    for where, values in parts:
        missing = int(values.isna().sum())
        if missing:
            raise DataError(f"{where}: label column {column!r} has {missing} missing values")
    if all(numeric):
        arrays = [as_class_labels(column, s.to_numpy(), len(s), where) for where, s in parts]
        return arrays, None
    if any(numeric):
        kinds = ", ".join(
            f"{w}: {'numbers' if n else 'text'}" for (w, _), n in zip(parts, numeric, strict=True)
        )
        raise DataError(
            f"label column {column!r} holds numbers in one file, text in another ({kinds})"
        )
    for where, values in parts:
        odd = [v for v in values.tolist() if not isinstance(v, str)]
        if odd:
            raise DataError(f"{where}: label column {column!r} mixes text with {odd[0]!r}")
    names = sorted({v for _, s in parts for v in s.tolist()})
    top = limit("classes")
    if len(names) > top:
        raise DataError(
            f"label column {column!r} holds {len(names):,} classes, above the limit {top:,} "
            f"(raise it with {env_name('classes')})"
        )
    lookup = np.asarray(names, dtype=object)
    arrays = [
        np.searchsorted(lookup, np.asarray(s.tolist(), dtype=object)).astype(np.int64)
        for _, s in parts
    ]
    return arrays, names


def _check_column(frame: pd.DataFrame, name: str | None, option: str, where: str) -> None:
    if name is not None and name not in frame.columns:
        raise DataError(
            f"{where}: no column {name!r} ({option}); its columns: {_names(list(frame.columns))}"
        )


@DATASETS.register("table")
def table(
    path: str | Path,
    label_column: str | None = None,
    id_column: str | None = None,
    eval_path: str | Path | None = None,
    eval_frac: float = 0.2,
    seed: int = 0,
) -> RawData:
    """User data from a CSV (`.csv`) or Parquet (`.parquet`, `.pq`) table: one row an instance.

    Features are every column but `label_column` (class labels: integers, or strings mapped to
    0..C-1 in sorted order) and `id_column` (unique integer ids; without it, the ids are the
    data rows' numbers from 0). The evaluation set: the table `eval_path` (the same feature
    columns, in any order; the label column iff the input has one), else a random `eval_frac`
    of the rows (at least one, seeded), the others in file order.
    """
    for name, value in (("label_column", label_column), ("id_column", id_column)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a column name, got {value!r}")
    if label_column is not None and label_column == id_column:
        raise ConfigError(f"label_column and id_column are the same column {label_column!r}")
    path = Path(path).expanduser().resolve()
    where = str(path)
    frame = read_table(path, f"dataset file {path}")
    _check_column(frame, label_column, "label_column", where)
    _check_column(frame, id_column, "id_column", where)
    features = [c for c in frame.columns if c not in (label_column, id_column)]
    if not features:
        raise DataError(f"{where}: no feature columns besides the label and id columns")
    x = _features(frame, features, where)
    n = x.shape[0]
    ids = _as_ids(frame[id_column].to_numpy(), n, path) if id_column is not None else None

    params: dict[str, Any] = {"path": where, "sha256": sha256_file(path)}
    params.update({k: v for k, v in (("label_column", label_column), ("id_column", id_column))
                   if v is not None})  # fmt: skip
    label_parts = [(where, frame[label_column])] if label_column is not None else []
    if eval_path is not None:
        eval_path = Path(eval_path).expanduser().resolve()
        ev = read_table(eval_path, f"evaluation file {eval_path}")
        ev_features = [c for c in ev.columns if c not in (label_column, id_column)]
        if sorted(ev_features) != sorted(features):
            absent = [c for c in features if c not in ev_features]
            extra = [c for c in ev_features if c not in features]
            detail = "; ".join(
                f"{label}: {_names(cols)}"
                for label, cols in (("missing", absent), ("not in the input", extra))
                if cols
            )
            raise DataError(
                f"evaluation file {eval_path} has {len(ev_features)} feature columns but the "
                f"input {path} has {len(features)} ({detail})"
            )
        x_eval = _features(ev, features, str(eval_path))  # the input's column order
        if label_column is not None:
            _check_column(ev, label_column, "label_column, which the input has", str(eval_path))
            label_parts.append((str(eval_path), ev[label_column]))
        params.update(eval_file_params(eval_path))
        rows, eval_rows = np.arange(n), None
    else:
        rows, eval_rows = holdout(n, eval_frac, seed, where)
        params.update(split_params(eval_frac, seed))
    y = y_eval = None
    if label_column is not None:
        labels, class_names = _labels(label_parts, label_column)
        if class_names is not None:
            params["class_names"] = class_names
        y, y_eval = (
            (labels[0], labels[1]) if eval_rows is None else (labels[0][rows], labels[0][eval_rows])
        )
    if eval_rows is not None:
        x, x_eval = x[rows], x[eval_rows]
    ids = rows.astype(np.int64) if ids is None else ids[rows]
    return RawData(x=x, x_eval=x_eval, is_anomaly=None, params=params, ids=ids, y=y, y_eval=y_eval)
