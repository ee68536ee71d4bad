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
from ganinf_mlops.metrics.specs import axis_label, direction_phrase  # noqa: E402


def _name(metric: str) -> str:
    """A metric's display name: short acronyms (all, fd, fid) in capitals."""
    return metric.upper() if len(metric) <= 4 else metric


def influence_scatter(
    x: np.ndarray,
    harmfulness: np.ndarray | None,
    generated: np.ndarray | None = None,
    removed: np.ndarray | None = None,
    title: str = "",
    *,
    anomalies: np.ndarray | None = None,
    metric: str | None = None,
    higher_is_better: bool | None = None,
) -> Figure:
    """2-D training points, coloured by harmfulness (red = removing helps) when given.

    `harmfulness`: predicted improvement of the metric on removing each instance; None or all
    zeros draws the points in one colour without a colour bar. `generated`: samples, drawn as
    light crosses underneath. `removed`, `anomalies`: bool masks over `x`, circled and marked
    with triangles. `metric`, `higher_is_better`: named in the colour-bar label.
    """
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    n = len(x)
    scored = harmfulness is not None and bool(np.any(np.asarray(harmfulness) != 0))
    if scored:
        lim = float(np.nanmax(np.abs(harmfulness))) or 1.0
        sc = ax.scatter(x[:, 0], x[:, 1], c=harmfulness, cmap="coolwarm", s=9, zorder=2,
                        norm=TwoSlopeNorm(0.0, -lim, lim), linewidths=0,
                        label=f"training data ({n})")  # fmt: skip
        label = "harmfulness (predicted improvement on removal)"
        if metric is not None:
            name = _name(metric)
            label = (
                f"harmfulness: predicted improvement of {name} on removal\n"
                f"({name}: {direction_phrase(metric, higher_is_better)})"
            )
        elif higher_is_better is not None:
            label += f"\n(metric: {direction_phrase('', higher_is_better)})"
        fig.colorbar(sc, ax=ax, label=label)
    else:
        ax.scatter(x[:, 0], x[:, 1], c="tab:blue", s=9, linewidths=0, zorder=2,
                   label=f"training data ({n})")  # fmt: skip
    if generated is not None:
        ax.scatter(generated[:, 0], generated[:, 1], marker="x", s=6, c="grey", alpha=0.25,
                   linewidths=0.5, zorder=1, label=f"generated ({len(generated)})")  # fmt: skip
    if removed is not None and removed.any():
        ax.scatter(x[removed, 0], x[removed, 1], facecolors="none", edgecolors="black", s=40,
                   linewidths=0.8, zorder=3,
                   label=f"removed as most harmful ({int(removed.sum())})")  # fmt: skip
    if anomalies is not None and anomalies.any():
        ax.scatter(x[anomalies, 0], x[anomalies, 1], marker="^", facecolors="none",
                   edgecolors="black", s=30, linewidths=0.8, zorder=4,
                   label=f"injected anomaly ({int(anomalies.sum())})")  # fmt: skip
    if not title:
        title = "training data by harmfulness" if scored else "training data"
        title += " and generated samples" if generated is not None else ""
    ax.set(title=title, xlabel="x1", ylabel="x2")
    for handle in ax.legend(loc="upper left", fontsize=8).legend_handles:
        handle.set_alpha(1.0)  # the faint generated crosses stay readable in the legend
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return fig


def scores_histogram(
    harmfulness: np.ndarray, method: str, *, cutoff: float | None = None
) -> Figure:
    """Histogram of the harmfulness scores of `method`, with the line at 0 and, when given, the
    removal `cutoff` (the smallest harmfulness among the removed instances)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.hist(harmfulness, bins=60, color="tab:blue", alpha=0.8,
            label=f"instances ({len(harmfulness)})")  # fmt: skip
    ax.axvline(0.0, color="black", linewidth=0.8, label="0: removal predicted neutral")
    if cutoff is not None:
        ax.axvline(cutoff, color="tab:red", linestyle="--", linewidth=1.0,
                   label="removal cut-off")  # fmt: skip
    ax.set(
        title=f"harmfulness by {method}\n(predicted improvement on removal; right of 0 = "
        "removal helps)",
        xlabel="harmfulness (predicted improvement on removal)",
        ylabel="instances (log scale)",
    )
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def estimate_vs_truth(report: dict[str, Any]) -> Figure:
    """Estimated (influence) vs leave-one-out change of the validated instances, by group."""
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
            ax.scatter(est, true, s=16, c=colour, label=f"{group} ({len(pts)})")
    lo = min(min(r["estimated_change"], r["true_change"]) for r in report["instances"])
    hi = max(max(r["estimated_change"], r["true_change"]) for r in report["instances"])
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.7, label="estimate = truth")
    metric = report["metric"]
    ax.set(
        xlabel=f"estimated change of {metric} (influence)",
        ylabel=f"true change of {metric} (leave-one-out)",
        title=f"influence estimate vs leave-one-out retraining\n"
        f"change of {metric} per removed instance (Kendall tau {report['kendall_tau']:.3f})",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_vs_removed(rows: Sequence[dict[str, Any]], metric: str) -> Figure:
    """The headline (`metric`, seed mean ± spread) after each cleanse iteration against the
    cumulative number removed, and the change of the scored metric each iteration's scores
    predicted next to what replay and fresh retraining showed.

    `rows`: the iterations of a chain summary (`report.summarize`), iteration 0 first."""
    removed = [r[keys.N_REMOVED_TOTAL] for r in rows]
    value = [r.get(keys.HEADLINE, r.get(metric, np.nan)) for r in rows]
    spread = [r.get(keys.HEADLINE_STD, 0.0) for r in rows]
    rows = rows[1:]
    scored = rows[0].get("metric", metric) if rows else metric  # what the changes measure
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.errorbar(removed, value, yerr=spread, fmt="o-", capsize=3, label="fresh retraining (± seeds)")
    a.set(
        xlabel="instances removed (cumulative)",
        ylabel=axis_label(metric),
        title=f"headline {metric} per iteration",
    )
    a.legend(fontsize=8)
    it = [r[keys.ITERATION] for r in rows]

    def col(key: str) -> list[float]:
        return [r.get(key, np.nan) for r in rows]

    b.plot(it, col(keys.ACTUAL_CHANGE), "s-", color="tab:orange", zorder=2,
           label="replay (same schedule)")  # fmt: skip
    b.plot(it, col(keys.FRESH_CHANGE), "^-", color="tab:green", zorder=2,
           label="fresh retraining")  # fmt: skip
    b.plot(it, col(keys.PREDICTED_CHANGE), "D--", color="tab:blue", markersize=8,
           markerfacecolor="none", markeredgewidth=1.5, linewidth=1.5, zorder=3,
           label="predicted (influence)")  # fmt: skip
    b.axhline(0.0, color="black", linewidth=0.7, zorder=1)
    b.set(
        xlabel="iteration",
        ylabel=f"change of {axis_label(scored)}",
        title=f"change of scored {scored}: predicted vs observed",
    )
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
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.7, label="predicted = actual")
    ax.set(
        xlabel=f"predicted change of {metric} (sum of influences)",
        ylabel=f"actual change of {metric} (replay without the set)",
        title=f"removing sets of instances: predicted vs actual change of {metric}",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
