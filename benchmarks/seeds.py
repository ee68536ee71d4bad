"""Seed lists and the per-seed loop shared by the classifier and memorization benchmarks."""

from __future__ import annotations

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
