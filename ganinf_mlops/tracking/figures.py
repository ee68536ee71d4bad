"""Figures people look at instead of tables (matplotlib, no display needed).

Every figure uses the constrained layout and ends with `fit_titles`, so nothing is clipped at
the size MLflow saves it (its own size and dpi).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from ganinf_mlops import keys  # noqa: E402
from ganinf_mlops.metrics.specs import axis_label, direction_phrase  # noqa: E402

# Generated samples: drawn over the data in a colour neither the harmfulness map (blue, grey,
# red) nor the unscored data (blue) nor the black markers use, so a shrinking generator shows.
SAMPLES_COLOUR = "tab:green"


def _name(metric: str) -> str:
    """A metric's display name: short acronyms (all, fd, fid) in capitals."""
    return metric.upper() if len(metric) <= 4 else metric


def _titles(fig: Figure) -> list[Text]:
    """The axes titles and the figure's own texts (its suptitle) that hold any text."""
    texts = [ax.title for ax in fig.axes] + list(fig.texts)
    return [t for t in texts if t.get_text()]


def _room(text: Text, fig: Figure) -> float:
    """The fraction of its width a title may keep (< 1: it reaches past the figure's edges).

    A centred title may be as wide as twice the distance from its centre to the nearer edge."""
    box = text.get_window_extent()
    centre = (box.x0 + box.x1) / 2
    allowed = 2 * min(centre, fig.bbox.width - centre)
    if box.y0 < 0 or box.y1 > fig.bbox.height + 0.5:  # cut at the top or bottom: narrower
        return min(0.8, allowed / box.width)
    return allowed / box.width if box.x0 < 0 or box.x1 > fig.bbox.width + 0.5 else 1.0


def _wrap(line: str, width: int) -> str:
    """`line` in as few lines of at most about `width` characters as it needs, of even length
    (no single word left on the last line)."""
    if len(line) <= width:
        return line
    n = -(-len(line) // width)
    for w in range(-(-len(line) // n), len(line) + 1):
        wrapped = textwrap.wrap(line, w)
        if len(wrapped) <= n:
            return "\n".join(wrapped)
    return line


def fit_titles(fig: Figure, rounds: int = 8) -> Figure:
    """Wrap each title that reaches past the figure's edges (drawn at the figure's own size and
    dpi, as it is saved) to the width it has, until all lie inside; returns `fig`."""
    for _ in range(rounds):
        fig.canvas.draw()  # runs the layout, so the axes (and their titles) are where saved
        wide = [(t, r) for t in _titles(fig) if (r := _room(t, fig)) < 1.0]
        if not wide:
            break
        for t, room in wide:
            lines = t.get_text().split("\n")
            width = max(12, int(max(len(line) for line in lines) * room * 0.95))
            t.set_text("\n".join(_wrap(line, width) for line in lines))
    return fig


def harmfulness_vmax(*harmfulness: np.ndarray) -> float:
    """One symmetric colour scale (-vmax, vmax) for the influence scatters of a job: the largest
    finite |harmfulness| in the given score tables (a job passes its first), 1.0 when all are
    zero or empty. Pure, so every iteration's figure can share the first one's scale."""
    values = [np.abs(np.asarray(h, dtype=float)).ravel() for h in harmfulness]
    finite = np.concatenate(values) if values else np.zeros(0)
    finite = finite[np.isfinite(finite)]
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


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
    version: str | None = None,
    vmax: float | None = None,
) -> Figure:
    """2-D training points, coloured by harmfulness (red = removing helps) when given.

    `harmfulness`: predicted improvement of the metric on removing each instance; None or all
    zeros draws the points in one colour without a colour bar. `generated`: samples, drawn over
    the data as green crosses. `removed`, `anomalies`: bool masks over `x`, circled and marked
    with triangles. `metric`, `higher_is_better`: named in the colour-bar label. `version`: the
    data's label (`notes.version_label`), leading the title. `vmax`: the colour scale runs from
    -vmax to vmax (`harmfulness_vmax`: one for every iteration of a job); by default this
    figure's largest |harmfulness|. The legend sits below the plot, off the data.
    """
    fig, ax = plt.subplots(figsize=(6.5, 6.2), layout="constrained")
    n = len(x)
    scored = harmfulness is not None and bool(np.any(np.asarray(harmfulness) != 0))
    if scored:
        lim = float(vmax) if vmax is not None and vmax > 0 else harmfulness_vmax(harmfulness)
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
        beyond = bool(np.nanmax(np.abs(harmfulness)) > lim)  # past a shared scale: arrows
        fig.colorbar(sc, ax=ax, label=label, extend="both" if beyond else "neither")
    else:
        ax.scatter(x[:, 0], x[:, 1], c="tab:blue", s=9, linewidths=0, zorder=2,
                   label=f"training data ({n})")  # fmt: skip
    if generated is not None:
        ax.scatter(generated[:, 0], generated[:, 1], marker="x", s=16, c=SAMPLES_COLOUR,
                   alpha=0.75, linewidths=0.9, zorder=3,
                   label=f"generated ({len(generated)})")  # fmt: skip
    if removed is not None and removed.any():
        ax.scatter(x[removed, 0], x[removed, 1], facecolors="none", edgecolors="black", s=40,
                   linewidths=0.8, zorder=4,
                   label=f"removed as most harmful ({int(removed.sum())})")  # fmt: skip
    if anomalies is not None and anomalies.any():
        ax.scatter(x[anomalies, 0], x[anomalies, 1], marker="^", facecolors="none",
                   edgecolors="black", s=30, linewidths=0.8, zorder=5,
                   label=f"injected anomaly ({int(anomalies.sum())})")  # fmt: skip
    if not title:
        title = "training data by harmfulness" if scored else "training data"
        title += " and generated samples" if generated is not None else ""
    if version:
        title = f"{version}: {title}"
    ax.set(title=title, xlabel="x1", ylabel="x2")
    ax.set_aspect("equal", adjustable="datalim")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    return fit_titles(fig)


def scores_histogram(
    harmfulness: np.ndarray, method: str, *, cutoff: float | None = None
) -> Figure:
    """Histogram of the harmfulness scores of `method`, with the line at 0 and, when given, the
    removal `cutoff` (the smallest harmfulness among the removed instances)."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
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
    return fit_titles(fig)


def estimate_vs_truth(report: dict[str, Any]) -> Figure:
    """Estimated (influence) vs leave-one-out change of the validated instances, by group."""
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
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
    return fit_titles(fig)


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
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
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
    return fit_titles(fig)


def group_predicted_vs_actual(groups: dict[str, Any], metric: str) -> Figure:
    """Predicted (summed first-order) vs actual (replayed) change of removing sets: random sets
    per fraction, and the top-ranked sets cleansing removes."""
    fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
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
    return fit_titles(fig)
