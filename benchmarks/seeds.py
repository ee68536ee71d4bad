"""Command-line pieces shared by the benchmarks: seed lists and the per-seed loop (classifier
and memorization benchmarks), KEY=VALUE overrides (cleansing, fidelity, cost)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def parse_seeds(text: str) -> list[int]:
    """'1-10' (inclusive) or '1,2,3'."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def per_seed(seeds: str, run: Callable[[int, Path], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`run(seed, workdir)` for each seed, each in a temporary directory removed afterwards."""
    for seed in parse_seeds(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            yield run(seed, Path(tmp))


def key_values(
    p: argparse.ArgumentParser,
    items: list[str],
    option: str,
    parse: Callable[[str], Any] = json.loads,
) -> dict[str, Any]:
    """Repeated `option KEY=VALUE` arguments as {KEY: parse(VALUE)}; a usage error without '='
    or with a VALUE that `parse` refuses (for JSON: strings need quotes, e.g. KEY='"text"')."""
    pairs = [kv.split("=", 1) for kv in items]
    if any(len(kv) != 2 for kv in pairs):
        p.error(f"{option} takes KEY=VALUE")
    out = {}
    for k, v in pairs:
        try:
            out[k] = parse(v)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            p.error(f"{option} {k}={v}: VALUE must be JSON ({exc})")
    return out


def benchmarks_on_pythonpath() -> None:
    """This directory first on PYTHONPATH, which Ray's workers get (ganinf_mlops/executor.py):
    a benchmark's seeds as Ray tasks import its modules there."""
    here, rest = str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([here, *([rest] if rest else [])])
