"""Group fidelity: does the estimate predict the removal of a *set*, as cleansing does?

(a) A linear-datamodeling-style score (Park et al. 2023, TRAK): for each fraction alpha, M random
    subsets S of round(alpha N) instances; Spearman's rank correlation over the subsets between
    the predicted change sum_{j in S} predicted_change_j and the actual change V(without S) -
    V(all) by counterfactual replay.
(b) The sets cleansing removes: the top-k by harmfulness for k a fraction of N; predicted,
    actual and actual / predicted.
All replays run batched (loo.removal_changes); the time they took is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ganinf_mlops.data.datasets import round_half_up

FRACS = (0.01, 0.05, 0.2)
TOP_FRACS = (0.01, 0.02, 0.05, 0.1)


def pct(frac: float) -> str:
    """0.05 -> '5pct': the suffix of the group metric names."""
    return f"{frac * 100:g}pct".replace(".", "_")


def _size(n: int, frac: float) -> int:
    return min(n - 1, max(1, round_half_up(frac * n)))


def n_group_replays(n_subsets: int) -> int:
    """The replays `group_fidelity` runs per run: `n_subsets` random sets per fraction, and the
    top-ranked sets (none when `n_subsets` is 0: `validate` skips the group score)."""
    return len(FRACS) * n_subsets + len(TOP_FRACS) if n_subsets > 0 else 0


def group_fidelity(
    n: int,
    actual_of: Callable[[list[np.ndarray]], np.ndarray],
    harmfulness: np.ndarray,
    change: np.ndarray,
    *,
    n_subsets: int = 50,
    fracs: Sequence[float] = FRACS,
    top_fracs: Sequence[float] = TOP_FRACS,
    seed: int = 0,
) -> dict[str, Any]:
    """Scores (a) and (b) for estimates aligned with the `n` dataset positions.

    `actual_of(subsets)`: the actual change of each set of positions by replay, the mean over
    the runs the estimate is of (one run, or an ensemble over training seeds:
    `loo.mean_removal_changes`).
    """
    rng = np.random.default_rng(seed)
    random_sets = [
        (frac, rng.choice(n, size=_size(n, frac), replace=False))
        for frac in fracs
        for _ in range(n_subsets)
    ]
    order = np.argsort(-harmfulness, kind="stable")
    top_sets = [(frac, order[: _size(n, frac)]) for frac in top_fracs]
    subsets = [s for _, s in random_sets] + [s for _, s in top_sets]
    start = time.perf_counter()
    actual = actual_of(subsets)
    seconds = time.perf_counter() - start
    predicted = np.array([change[s].sum() for s in subsets])

    out: dict[str, Any] = {
        "n_subsets": n_subsets,
        "group_seconds": seconds,
        "random": {},
        "top": {},
    }
    for frac in fracs:
        rows = [i for i, (f, _) in enumerate(random_sets) if f == frac]
        rho = spearmanr(predicted[rows], actual[rows])[0] if len(rows) >= 3 else float("nan")
        out["random"][pct(frac)] = {
            "size": _size(n, frac),
            "spearman": float(rho),
            "predicted": predicted[rows].tolist(),
            "actual": actual[rows].tolist(),
        }
    for i, (frac, s) in enumerate(top_sets, start=len(random_sets)):
        ratio = actual[i] / predicted[i] if predicted[i] != 0 else float("nan")
        out["top"][pct(frac)] = {
            "size": len(s),
            "predicted": float(predicted[i]),
            "actual": float(actual[i]),
            "ratio": float(ratio),
        }
    return out


def group_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The flat numbers of a group report, named for MLflow and summaries."""
    out = {f"group_spearman_{k}": v["spearman"] for k, v in report["random"].items()}
    out.update({f"top_{k}_ratio": v["ratio"] for k, v in report["top"].items()})
    return out
