"""The MLflow figures say what they show: legends, colour bars, directions, cut-offs."""

from __future__ import annotations

import numpy as np
import pytest

from ganinf_mlops import keys
from ganinf_mlops.tracking import figures
from ganinf_mlops.tracking.figures import plt


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(n: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)), rng.normal(size=n), rng.normal(size=(80, 2))


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


@pytest.mark.parametrize("harm", [None, "zeros"])
def test_scatter_without_scores_has_no_colour_bar(harm):
    x, _, gen = _data()
    harmfulness = np.zeros(len(x)) if harm == "zeros" else None
    fig = figures.influence_scatter(x, harmfulness, gen)
    assert len(fig.axes) == 1
    texts = _legend_texts(fig.axes[0])
    assert "training data (50)" in texts
    assert "generated (80)" in texts
    assert "harmfulness" not in fig.axes[0].get_title()


def test_scatter_with_scores_has_labelled_colour_bar():
    x, harm, gen = _data()
    fig = figures.influence_scatter(x, harm, gen, title="my title", metric=keys.FD)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "my title"
    label = fig.axes[1].get_ylabel()
    assert "predicted improvement of FD on removal" in label
    assert "lower is better" in label
    fig = figures.influence_scatter(x, harm, metric=keys.ALL, higher_is_better=True)
    assert "ALL: higher is better" in fig.axes[1].get_ylabel()


def test_scatter_generated_underneath_and_marks_removed_and_anomalies():
    x, harm, gen = _data()
    removed = np.zeros(len(x), bool)
    removed[:3] = True
    anomalies = np.zeros(len(x), bool)
    anomalies[-4:] = True
    fig = figures.influence_scatter(x, harm, gen, removed, anomalies=anomalies)
    ax = fig.axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    assert by_label["generated (80)"].get_zorder() < by_label["training data (50)"].get_zorder()
    assert by_label["generated (80)"].get_alpha() <= 0.3
    texts = _legend_texts(ax)
    assert "injected anomaly (4)" in texts
    assert any("removed" in t and "(3)" in t for t in texts)


def test_histogram_draws_zero_and_cutoff_with_legend():
    _, harm, _ = _data()
    fig = figures.scores_histogram(harm, "if", cutoff=0.7)
    ax = fig.axes[0]
    xs = [line.get_xdata()[0] for line in ax.lines]
    assert 0.0 in xs and 0.7 in xs
    cut = next(line for line in ax.lines if line.get_xdata()[0] == 0.7)
    assert cut.get_linestyle() == "--"
    texts = _legend_texts(ax)
    assert "removal cut-off" in texts and "0: removal predicted neutral" in texts
    assert "predicted improvement on removal" in ax.get_title()
    assert len(figures.scores_histogram(harm, "if").axes[0].lines) == 1


def _rows(metric: str) -> list[dict]:
    rows = []
    for k in range(3):
        row = {keys.ITERATION: k, keys.N_REMOVED_TOTAL: 10 * k, metric: 1.0 - 0.1 * k}
        if k:
            row |= {keys.PREDICTED_CHANGE: 0.1, keys.ACTUAL_CHANGE: 0.1, keys.FRESH_CHANGE: 0.05}
        rows.append(row)
    return rows


@pytest.mark.parametrize(("metric", "direction"), [("fd", "lower"), ("all", "higher")])
def test_metric_vs_removed_states_direction_and_shows_prediction(metric, direction):
    fig = figures.metric_vs_removed(_rows(metric), metric)
    a, b = fig.axes
    assert f"{direction} is better" in a.get_ylabel()
    assert f"{direction} is better" in b.get_ylabel()
    assert not a.get_title().startswith(f"{metric}:")
    lines = {line.get_label(): line for line in b.lines}
    pred, replay = lines["predicted (influence)"], lines["replay (same schedule)"]
    assert pred.get_zorder() > replay.get_zorder()
    assert pred.get_linestyle() == "--"
    assert pred.get_marker() != replay.get_marker()


def test_validation_figures_have_titles_in_words():
    report = {
        "metric": "all",
        "kendall_tau": 0.5,
        "instances": [
            {"group": g, "estimated_change": e, "true_change": t}
            for g, e, t in [("top", 0.2, 0.1), ("bottom", -0.1, -0.2), ("random", 0.0, 0.05)]
        ],
    }
    title = figures.estimate_vs_truth(report).axes[0].get_title()
    assert not title.startswith("all:") and "Kendall tau 0.500" in title
    groups = {
        "random": {"0.01": {"predicted": [0.1, 0.2], "actual": [0.1, 0.3], "spearman": 1.0}},
        "top": {"top 1%": {"predicted": 0.3, "actual": 0.2}},
    }
    title = figures.group_predicted_vs_actual(groups, "all").axes[0].get_title()
    assert "predicted vs actual" in title
