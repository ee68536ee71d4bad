"""The MLflow figures say what they show: legends, colour bars, directions, cut-offs."""

from __future__ import annotations

import numpy as np
import pytest

from ganinf_mlops import keys
from ganinf_mlops.tracking import figures, image_figures
from ganinf_mlops.tracking.figures import plt


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data(n: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)), rng.normal(size=n), rng.normal(size=(80, 2))


def _legend_texts(where) -> list[str]:
    """The legend's texts of an axes, or of a figure (the scatter's legend sits below the plot)."""
    legend = where.legends[0] if getattr(where, "legends", None) else where.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


@pytest.mark.parametrize("harm", [None, "zeros"])
def test_scatter_without_scores_has_no_colour_bar(harm):
    x, _, gen = _data()
    harmfulness = np.zeros(len(x)) if harm == "zeros" else None
    fig = figures.influence_scatter(x, harmfulness, gen)
    assert len(fig.axes) == 1
    texts = _legend_texts(fig)
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


def test_scatter_marks_removed_and_anomalies():
    x, harm, gen = _data()
    removed = np.zeros(len(x), bool)
    removed[:3] = True
    anomalies = np.zeros(len(x), bool)
    anomalies[-4:] = True
    fig = figures.influence_scatter(x, harm, gen, removed, anomalies=anomalies)
    texts = _legend_texts(fig)
    assert "injected anomaly (4)" in texts
    assert any("removed" in t and "(3)" in t for t in texts)


@pytest.mark.parametrize("harm", [None, "scores"])
def test_samples_drawn_over_the_data_in_a_contrasting_colour(harm):
    x, h, gen = _data()
    fig = figures.influence_scatter(x, h if harm else None, gen)
    by_label = {c.get_label(): c for c in fig.axes[0].collections}
    data, samples = by_label["training data (50)"], by_label["generated (80)"]
    assert samples.get_zorder() > data.get_zorder()
    assert samples.get_alpha() is None or samples.get_alpha() >= 0.5
    assert samples.get_sizes().min() >= 12
    fig.canvas.draw()  # the data's colours come from the colour map at draw time
    sample_rgb = samples.get_facecolor()[:, :3]
    # Far (in RGB) from every colour the data can take (the whole map when scored, plain blue
    # otherwise) and from the black markers: grey, the old faint colour, is not.
    data_rgb = data.get_facecolor()[:, :3]
    if harm:
        data_rgb = np.vstack([data_rgb, data.get_cmap()(np.linspace(0, 1, 256))[:, :3]])
    gap = np.linalg.norm(data_rgb[:, None, :] - sample_rgb[None, :, :], axis=-1).min()
    assert gap > 0.5
    assert np.linalg.norm(sample_rgb, axis=-1).min() > 0.3


def _extent(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer())


@pytest.mark.parametrize("harm", [None, "scores"])
def test_scatter_legend_outside_the_data_area(harm):
    x, h, gen = _data()
    removed = np.zeros(len(x), bool)
    removed[:3] = True
    fig = figures.influence_scatter(x, h if harm else None, gen, removed)
    fig.canvas.draw()
    legend = fig.legends[0] if fig.legends else fig.axes[0].get_legend()
    box, data = _extent(legend, fig), fig.axes[0].get_window_extent()
    assert not box.overlaps(data)
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width
    assert box.y1 <= fig.bbox.height


def _titles_inside(fig) -> list[str]:
    """Every title (axes and suptitle), after drawing at the figure's own size and dpi, as
    MLflow saves it; fails naming the first one that reaches past an edge."""
    fig.canvas.draw()
    shown = []
    for t in [ax.title for ax in fig.axes] + list(fig.texts):
        if not t.get_text():
            continue
        box = _extent(t, fig)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width + 0.5, t.get_text()
        assert box.y0 >= 0 and box.y1 <= fig.bbox.height + 0.5, t.get_text()
        shown.append(t.get_text())
    return shown


LONG = "training instances scored by fid_ensemble_average_order, removed ones circled"


def test_scatter_title_names_the_version_and_fits():
    x, harm, gen = _data()
    fig = figures.influence_scatter(x, harm, gen, title=LONG, version="v1 (440d857ece83)")
    (title,) = (t for t in _titles_inside(fig) if t)
    assert title.startswith("v1 (440d857ece83): ") and "\n" in title  # wrapped, not clipped
    assert " ".join(title.split()) == f"v1 (440d857ece83): {LONG}"


def test_every_figure_keeps_its_titles_inside():
    x, harm, gen = _data()
    report = {
        "metric": "avg_log_likelihood",
        "kendall_tau": 0.912,
        "instances": [
            {"group": g, "estimated_change": e, "true_change": t}
            for g, e, t in [("top", 0.2, 0.1), ("bottom", -0.1, -0.2), ("random", 0.0, 0.05)]
        ],
    }
    groups = {
        "random": {"0.01": {"predicted": [0.1, 0.2], "actual": [0.1, 0.3], "spearman": 1.0}},
        "top": {"top 1%": {"predicted": 0.3, "actual": 0.2}},
    }
    metric = "avg_log_likelihood"
    rows = [{**r, metric: r.pop("fd")} for r in _rows("fd")]
    images = np.random.default_rng(0).uniform(-1, 1, size=(40, 1, 8, 8))
    figs = [
        figures.influence_scatter(x, harm, gen, title=LONG, version="v12 (440d857ece83)"),
        figures.influence_scatter(x, None, gen, version="v1 (440d857ece83)"),
        figures.scores_histogram(harm, "fid_ensemble_average_order", cutoff=0.5),
        figures.estimate_vs_truth(report),
        figures.metric_vs_removed(rows, metric),
        figures.group_predicted_vs_actual(groups, metric),
        image_figures.sample_grid(images, "generated samples (fixed evaluation latents) " * 2),
        image_figures.harmful_and_helpful(
            images, np.arange(40.0), np.arange(40) < 3, "fid_ensemble_average_order"
        ),
        image_figures.before_after(images, images, "v0 (8e3d98f5a1b2) -> v1 (440d857ece83)"),
    ]
    for fig in figs:
        assert _titles_inside(fig)
    tau = " ".join(figs[3].axes[0].get_title().split())
    assert tau.endswith("(Kendall tau 0.912)")  # the words survive the wrapping


def test_wrap_keeps_the_words_in_even_lines():
    line = "change of avg_log_likelihood per removed instance (Kendall tau 0.912)"
    wrapped = figures._wrap(line, 50).split("\n")
    assert len(wrapped) == 2 and " ".join(wrapped) == line
    assert abs(len(wrapped[0]) - len(wrapped[1])) < 15  # no lone word on the last line
    assert figures._wrap("short", 50) == "short"


def test_harmfulness_vmax_is_the_largest_finite_magnitude():
    assert figures.harmfulness_vmax(np.array([0.1, -0.4, np.nan])) == 0.4
    assert figures.harmfulness_vmax(np.array([0.1]), np.array([-0.3, 0.2])) == 0.3
    assert figures.harmfulness_vmax(np.zeros(3)) == 1.0
    assert figures.harmfulness_vmax(np.array([np.inf, 0.2])) == 0.2
    assert figures.harmfulness_vmax() == 1.0


def test_scatter_colour_scale_is_symmetric_and_shared():
    x, harm, gen = _data()
    lim = np.abs(harm).max()
    norm = figures.influence_scatter(x, harm, gen).axes[0].collections[0].norm
    assert (norm.vmin, norm.vcenter, norm.vmax) == (-lim, 0.0, lim)
    # Two iterations with other scores but the job's one vmax draw one scale.
    vmax = 2 * lim
    a = figures.influence_scatter(x, harm, gen, vmax=vmax)
    b = figures.influence_scatter(x, harm * 0.1, gen, vmax=vmax)
    for fig in (a, b):
        scatter = fig.axes[0].collections[0]
        assert (scatter.norm.vmin, scatter.norm.vcenter, scatter.norm.vmax) == (-vmax, 0, vmax)
        assert fig.axes[1].get_ylim() == (-vmax, vmax)
        assert scatter.colorbar.extend == "neither"
    # Scores past the shared scale: the colour bar says so with arrows.
    past = figures.influence_scatter(x, harm, gen, vmax=lim / 2).axes[0].collections[0]
    assert past.colorbar.extend == "both"


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
