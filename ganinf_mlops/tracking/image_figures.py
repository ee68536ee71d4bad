"""Figures of image data: sample grids, the most harmful and most helpful training images, and
generated samples before and after cleansing from the same latents (Terashita et al., Fig. 5)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ganinf_mlops.tracking.figures import fit_titles, plt


def is_images(x: np.ndarray) -> bool:
    return x.ndim == 4


def _tile(images: np.ndarray, cols: int) -> np.ndarray:
    """[n, C, H, W] in [-1, 1] -> one [rows*(H+1), cols*(W+1)(, C)] array in [0, 1]."""
    n, c, h, w = images.shape
    rows = max(1, -(-n // cols))
    canvas = np.ones((rows * (h + 1), cols * (w + 1), c))
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = img.transpose(
            1, 2, 0
        )
    canvas = np.clip((canvas + 1) / 2, 0, 1)
    return canvas[..., 0] if c == 1 else canvas


def _show(ax, images: np.ndarray, cols: int, title: str) -> None:
    ax.imshow(_tile(images, cols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def sample_grid(images: np.ndarray, title: str, n: int = 64) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    _show(ax, images[:n], 8, title)
    return fit_titles(fig)


def harmful_and_helpful(
    x: np.ndarray,
    harmfulness: np.ndarray,
    anomalies: np.ndarray | None,
    method: str,
    n: int = 36,
    labels: np.ndarray | None = None,
) -> Figure:
    """The n training images whose removal is predicted to help most (left) and hurt most
    (right); injected anomalies framed in red; with `labels`, each image's training label in its
    corner (a flipped label shows as a digit that does not match the image)."""
    order = np.argsort(-harmfulness, kind="stable")
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4), layout="constrained")
    for ax, idx, what in (
        (axes[0], order[:n], "most harmful (removal predicted to help)"),
        (axes[1], order[::-1][:n], "most helpful (removal predicted to hurt)"),
    ):
        _show(ax, x[idx], 6, what)
        h, w = x.shape[2:]
        if labels is not None:
            for i, j in enumerate(idx):
                r, k = divmod(i, 6)
                ax.text(
                    k * (w + 1) + 0.2, r * (h + 1) + 0.2, str(int(labels[j])), color="yellow",
                    fontsize=7, va="top", ha="left",
                )  # fmt: skip
        if anomalies is not None:
            for i, j in enumerate(idx):
                if anomalies[j]:
                    r, k = divmod(i, 6)
                    ax.add_patch(
                        plt.Rectangle(
                            (k * (w + 1) - 0.5, r * (h + 1) - 0.5), w, h, fill=False,
                            edgecolor="red", linewidth=1.2,
                        )
                    )  # fmt: skip
    title = f"scored by {method}" + ("; yellow: training label" if labels is not None else "")
    if anomalies is not None:
        hits = int(anomalies[order[:n]].sum())
        title += f"; red frame: injected anomaly ({hits} of the {n} most harmful)"
    fig.suptitle(title, fontsize=10)
    return fit_titles(fig)


def before_after(before: np.ndarray, after: np.ndarray, title: str, n: int = 36) -> Figure:
    """Samples of two generators from the same latents, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4), layout="constrained")
    _show(axes[0], before[:n], 6, "before cleansing")
    _show(axes[1], after[:n], 6, "after cleansing (same latents)")
    fig.suptitle(title, fontsize=10)
    return fit_titles(fig)
