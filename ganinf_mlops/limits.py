"""Upper limits on sizes and counts: one place, each named in its error and raisable.

A value past its limit is refused in one line naming the limit and how to raise it: the
environment variable `GANINF_MAX_<NAME>` (e.g. `GANINF_MAX_STEPS=1000000000`). The defaults are
generous for real runs; they stop a typo (`--steps 1000000000000`) or a hostile file from running
for days or asking for terabytes.
"""

from __future__ import annotations

import os

from ganinf_mlops.errors import ConfigError, GaninfError

LIMITS: dict[str, int] = {
    # inputs read
    "json_bytes": 256 << 20,  # manifest.json, meta.json, sidecars: settings and id lists
    "params_bytes": 1_000_000,  # a params file is a page of settings, not data
    "nesting": 64,  # JSON/YAML depth; ours nest 4 deep
    "npz_bytes": 0,  # the arrays of one .npz, decompressed: half this machine's memory (below)
    "table_bytes": 1 << 30,  # a CSV or Parquet file (pandas holds several times its size)
    "classes": 10_000,  # class labels of images_npz (a label of 1e9 is a 1e9-way output layer)
    # training
    "steps": 10**8,
    "epochs": 10**6,
    "width": 65_536,  # latent_dim, each hidden width
    "layers": 256,  # hidden layers per network
    "n": 10**8,  # instances a generator draws (n, n_eval)
    "n_gen": 10**7,  # generated samples of the metrics
    # jobs
    "ensemble": 256,
    "retrain_seeds": 1000,
    "loo": 100_000,
    "group_subsets": 100_000,
    "iterations": 10_000,
    "chunks": 10_000,
}


def _half_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


LIMITS["npz_bytes"] = min(_half_memory(), 64 << 30)


def env_name(name: str) -> str:
    return f"GANINF_MAX_{name.upper()}"


def limit(name: str) -> int:
    """The limit `name`: GANINF_MAX_<NAME> when set to a positive integer, else the default."""
    value = os.environ.get(env_name(name))
    if value is None:
        return LIMITS[name]
    try:
        parsed = int(value)
    except ValueError:
        parsed = 0
    if parsed < 1:
        raise ConfigError(f"{env_name(name)} must be a positive integer, got {value!r}")
    return parsed


def check_widths(name: str, widths: tuple[int, ...]) -> None:
    """Hidden layer widths: each under the width limit, their number under the layers limit."""
    check_max("layers", len(widths), f"{name}: hidden layers")
    for w in widths:
        check_max("width", w, f"{name} width")


def check_max(
    name: str, value: int | float, what: str | None = None, error: type[GaninfError] = ConfigError
) -> None:
    """Refuse `value` above limit `name` in one line naming the limit and how to raise it."""
    top = limit(name)
    if value > top:
        raise error(
            f"{what or name} = {value:,} is above the limit {top:,} "
            f"(raise it with {env_name(name)})"
        )
