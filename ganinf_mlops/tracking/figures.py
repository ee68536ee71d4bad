"""Figures people look at instead of tables (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ganinf_mlops import keys  # noqa: E402


def influence_scatter(
    x: np.ndarray,
    harmfulness: np.ndarray,
    generated: np.ndarray | None = None,
    removed: np.ndarray | None = None,
    title: str = "",
) -> Figure:
    """2D training set coloured by harmfulness (red = removing helps), generated samples on top."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    lim = float(np.abs(harmfulness).max()) or 1.0
    sc = ax.scatter(
        x[:, 0],
        x[:, 1],
        c=harmfulness,
        cmap="coolwarm",
        s=9,
        norm=TwoSlopeNorm(0.0, -lim, lim),
        linewidths=0,
    )
    fig.colorbar(sc, ax=ax, label="harmfulness (predicted improvement on removal)")
    if generated is not None:
        ax.scatter(
            generated[:, 0],
            generated[:, 1],
            marker="x",
            s=7,
            c="black",
            alpha=0.35,
            linewidths=0.6,
            label="generated",
        )
    if removed is not None and removed.any():
        ax.scatter(
            x[removed, 0],
            x[removed, 1],
            facecolors="none",
            edgecolors="black",
            s=40,
            linewidths=0.8,
            label="most harmful (cleansed)",
        )
    ax.set(title=title, xlabel="x1", ylabel="x2")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig


def scores_histogram(harmfulness: np.ndarray, method: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(harmfulness, bins=60, color="tab:blue", alpha=0.8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set(title=f"harmfulness by {method}", xlabel="harmfulness", ylabel="instances")
    ax.set_yscale("log")
    fig.tight_layout()
    return fig


def estimate_vs_truth(report: dict[str, Any]) -> Figure:
    """Estimated vs leave-one-out change of the validated instances, by group."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    colours = {"top": "tab:red", "bottom": "tab:blue", "random": "tab:gray"}
    for group, colour in colours.items():
        pts = [
            (r["estimated_change"], r["true_change"])
            for r in report["instances"]
            if r["group"] == group
        ]
        if pts:
            est, true = np.array(pts).T
            ax.scatter(est, true, s=16, c=colour, label=group)
    lo = min(min(r["estimated_change"], r["true_change"]) for r in report["instances"])
    hi = max(max(r["estimated_change"], r["true_change"]) for r in report["instances"])
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.7)
    ax.set(
        xlabel="estimated change (influence)",
        ylabel="true change (leave-one-out)",
        title=f"{report['metric']}: Kendall tau {report['kendall_tau']:.3f}",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_vs_removed(rows: Sequence[dict[str, Any]], metric: str) -> Figure:
    """Metric after each cleanse iteration against the cumulative number removed, and the
    change each iteration's scores predicted next to what replay and fresh retraining showed.

    `rows`: the iterations of a chain summary (`report.summarize`), iteration 0 first."""
    removed = [r[keys.N_REMOVED_TOTAL] for r in rows]
    fresh = [r[metric] for r in rows]
    rows = rows[1:]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(removed, fresh, "o-", label="fresh retraining")
    a.set(xlabel="instances removed (cumulative)", ylabel=metric, title=f"{metric} vs removed")
    a.legend(fontsize=8)
    it = [r[keys.ITERATION] for r in rows]

    def col(key: str) -> list[float]:
        return [r.get(key, np.nan) for r in rows]

    b.plot(it, col(keys.PREDICTED_CHANGE), "o-", label="predicted (influence)")
    b.plot(it, col(keys.ACTUAL_CHANGE), "s-", label="replay (same schedule)")
    b.plot(it, col(keys.FRESH_CHANGE), "^-", label="fresh retraining")
    b.axhline(0.0, color="black", linewidth=0.7)
    b.set(xlabel="iteration", ylabel=f"change of {metric}", title="predicted vs observed")
    b.set_xticks(it)
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def group_predicted_vs_actual(groups: dict[str, Any], metric: str) -> Figure:
    """Predicted (summed first-order) vs actual (replayed) change of removing sets: random sets
    per fraction, and the top-ranked sets cleansing removes."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    pts: list[float] = []
    for (frac, r), colour in zip(
        groups["random"].items(), ("tab:blue", "tab:green", "tab:purple"), strict=False
    ):
        ax.scatter(r["predicted"], r["actual"], s=12, c=colour, alpha=0.7,
                   label=f"random {frac} (Spearman {r['spearman']:.2f})")  # fmt: skip
        pts += r["predicted"] + r["actual"]
    top = groups["top"]
    tp = [v["predicted"] for v in top.values()]
    ta = [v["actual"] for v in top.values()]
    ax.scatter(tp, ta, s=40, marker="*", c="tab:red", label="top-ranked sets " + ", ".join(top))
    pts += tp + ta
    lo, hi = min(pts), max(pts)
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.7)
    ax.set(
        xlabel=f"predicted change of {metric} (sum of influences)",
        ylabel=f"actual change of {metric} (replay without the set)",
        title="removing sets: predicted vs actual",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
