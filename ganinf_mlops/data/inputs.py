"""A user's own file as a dataset: which source reads it and what kind of data it holds.

`input_data` is the one place that turns `--input FILE` (`--eval-input`, `--label-column`) into a
dataset source and its parameters: an `.npz` whose `x` is [N, H, W] or [N, C, H, W] is read by
`images_npz`, other `.npz` files by `npz`, CSV and Parquet files by `table`. `ganinf prepare`,
`ganinf run` / `loop` and `gi.prepare` all call it, so the same file gives the same version.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganinf_mlops.data.datasets import DATASETS, RawData, npz_shape
from ganinf_mlops.data.tables import TABLE_SUFFIXES, table_format
from ganinf_mlops.errors import ConfigError

# What a file holds, which decides the problem: a GAN on vectors, a classifier of labelled
# vectors, the image GAN.
VECTORS, LABELLED, IMAGES = "vectors", "labelled vectors", "images"


def _format(path: Path) -> str:
    if path.suffix.lower() == ".npz":
        return "npz"
    fmt = table_format(path)
    if fmt is None:
        *first, last = (".npz", *TABLE_SUFFIXES)
        raise ConfigError(
            f"{path}: unknown input format {path.suffix!r}; give an {', '.join(first)} or {last} "
            "file"
        )
    return fmt


def input_data(
    path: str | Path,
    *,
    eval_path: str | Path | None = None,
    label_column: str | None = None,
    **params: Any,
) -> tuple[str, dict[str, Any]]:
    """The dataset source that reads `path` and its parameters (`params`, e.g. eval_frac and
    seed, passed on): what a preset's `data` section holds for the file."""
    path = Path(path).expanduser().resolve()
    fmt = _format(path)
    out: dict[str, Any] = {"path": str(path)}
    if eval_path is not None:
        eval_path = Path(eval_path).expanduser().resolve()
        if (_format(eval_path) == "npz") != (fmt == "npz"):
            like = "an .npz" if fmt == "npz" else "a CSV or Parquet table"
            raise ConfigError(f"the evaluation file {eval_path} must be {like}, as the input is")
        out["eval_path"] = str(eval_path)
    if fmt == "npz":
        if label_column is not None:
            raise ConfigError(
                f"label_column (--label-column) names a column of a CSV or Parquet table; the "
                f".npz {path} holds its labels in the array 'y'"
            )
        shape = npz_shape(path, "x", f"dataset file {path}")
        dataset = "images_npz" if shape is not None and len(shape) in (3, 4) else "npz"
    else:
        dataset = "table"
        if label_column is not None:
            out["label_column"] = label_column
    out.update(params)
    try:
        inspect.signature(DATASETS.get(dataset)).bind(**out)
    except TypeError as e:
        raise ConfigError(f"bad parameters for dataset {dataset!r}: {e}") from None
    return dataset, out


@dataclass(frozen=True)
class UserInput:
    """A user's file read and checked: the source and parameters that read it, and the data."""

    dataset: str
    params: dict[str, Any]
    raw: RawData

    @property
    def kind(self) -> str:
        if self.raw.x.ndim == 4:
            return IMAGES
        return LABELLED if self.raw.y is not None else VECTORS

    @property
    def path(self) -> str:
        return str(self.params["path"])


def read_input(
    path: str | Path,
    *,
    eval_path: str | Path | None = None,
    label_column: str | None = None,
    **params: Any,
) -> UserInput:
    """`path` read and checked in full (see `input_data`), before any output is written."""
    dataset, kwargs = input_data(path, eval_path=eval_path, label_column=label_column, **params)
    return UserInput(dataset, kwargs, DATASETS.get(dataset)(**kwargs))
