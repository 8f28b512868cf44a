"""Matplotlib figures of the practical: photos with their saliency maps, a map over its photo
with a colour bar, the fooling figure with its magnified difference, class visualizations.

Every helper returns a `matplotlib.figure.Figure` (built without pyplot, so nothing is shown
or saved behind your back): a notebook displays it, `fig.savefig(path)` writes it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["display", "maps", "overlay", "fooling", "images"]

#: Share of the highest values saturated when a map is drawn (as the CLI's pictures).
DISPLAY_CLIP = 0.01


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def display(m: np.ndarray, clip: float = DISPLAY_CLIP) -> np.ndarray:
    """A map scaled to 0-1 for drawing: magnitudes, the top `clip` share saturated (Captum's
    outlier percentage)."""
    a = np.abs(np.asarray(m, dtype=np.float64))
    hi = np.quantile(a, 1.0 - clip) if a.size else 0.0
    if not np.isfinite(hi) or hi <= 0:
        hi = a.max() if a.size and a.max() > 0 else 1.0
    return np.clip(a / hi, 0.0, 1.0)


def maps(
    photos: Sequence[np.ndarray],
    saliency: Sequence[np.ndarray],
    titles: Optional[Sequence[str]] = None,
    cmap: str = "inferno",
    size: float = 2.2,
):
    """Photos on the top row, their maps below (the practical's figure 1). `photos` are
    uint8 H x W x 3 (a `saliency()` result's "inputs"), `saliency` its "maps"."""
    n = len(photos)
    fig = _figure(size * n, size * 2.1)
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        axes[0, i].imshow(photos[i])
        axes[1, i].imshow(display(saliency[i]), cmap=cmap, vmin=0, vmax=1)
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=9)
        for ax in axes[:, i]:
            ax.axis("off")
    return fig


def overlay(
    photo: np.ndarray,
    m: np.ndarray,
    title: Optional[str] = None,
    alpha: float = 0.6,
    cmap: str = "inferno",
    size: float = 4.0,
):
    """The map drawn over its photo, with a colour bar of the map's scale (0 = no influence,
    1 = the top of the map)."""
    fig = _figure(size * 1.25, size)
    ax = fig.subplots()
    ax.imshow(photo)
    im = ax.imshow(display(m), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="saliency (clipped, 0-1)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.axis("off")
    return fig


def fooling(
    original: np.ndarray,
    fooled: np.ndarray,
    titles: Sequence[str] = ("original", "fooling image"),
    magnify: float = 10.0,
    size: float = 3.0,
):
    """The practical's fooling figure: original, fooling image, their difference (grey = no
    change) and the difference magnified `magnify` times."""
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(fooled, dtype=np.float64)
    diff = b - a
    fig = _figure(size * 4, size * 1.1)
    axes = fig.subplots(1, 4)
    panels = [
        (a / 255.0, titles[0]),
        (b / 255.0, titles[1]),
        (np.clip(0.5 + diff / 255.0, 0, 1), "difference"),
        (np.clip(0.5 + magnify * diff / 255.0, 0, 1), f"difference x{magnify:g}"),
    ]
    for ax, (img, t) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    return fig


def images(
    pictures: Sequence[np.ndarray],
    titles: Optional[Sequence[str]] = None,
    columns: int = 5,
    size: float = 2.4,
):
    """Images in a grid with their titles (class visualizations, fooling images)."""
    n = len(pictures)
    cols = max(1, min(columns, n))
    rows = (n + cols - 1) // cols
    fig = _figure(size * cols, size * rows * 1.1)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            ax.imshow(pictures[i])
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    return fig
