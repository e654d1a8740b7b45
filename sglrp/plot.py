"""Pictures from relevance arrays: a thin layer, matplotlib is imported only when used.

Maps are shown as the channel sum, with a diverging colour map symmetric at +-max|h|
(red: evidence for the target, blue: against), as in the paper's figures.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["project", "heatmap", "overlay", "overlay_rgb", "grid", "comparison", "to_rgb"]


def project(h, channel_axis: int = -1) -> np.ndarray:
    """Sum a (..., H, W, C) map over its channels; a 2-D map is returned as it is."""
    h = np.asarray(h, np.float64)
    return h if h.ndim == 2 else h.sum(axis=channel_axis)


def _limit(h2d: np.ndarray, M: float | None) -> float:
    if M is None:
        M = float(np.abs(h2d).max())
    return M if M > 0 else 1.0


def to_rgb(h, cmap: str = "seismic", M: float | None = None) -> np.ndarray:
    """The map as an (H, W, 3) uint8 image, colour-mapped symmetrically at ``+-M``."""
    from matplotlib import colormaps

    h2d = project(h)
    M = _limit(h2d, M)
    rgba = colormaps[cmap]((h2d / M + 1) / 2)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def heatmap(h, cmap: str = "seismic", colorbar: bool = False, M: float | None = None, ax=None):
    """Show a relevance map (the original helper's call): channel sum, limits ``+-M``.

    Parameters
    ----------
    h : array_like
        (H, W) or (H, W, C) relevance.
    cmap : str
        A diverging matplotlib colour map.
    colorbar : bool
        Add a colour bar.
    M : float, optional
        The colour limit; by default ``max|h|`` (1 for an all-zero map).
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current axes by default.
    """
    import matplotlib.pyplot as plt

    ax = plt.gca() if ax is None else ax
    h2d = project(h)
    M = _limit(h2d, M)
    image = ax.imshow(h2d, cmap=cmap, vmin=-M, vmax=M, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    return image


def _display(image) -> np.ndarray:
    image = np.asarray(image, np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    lo, hi = image.min(), image.max()
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def overlay(image, h, cmap: str = "seismic", alpha: float = 0.6, M: float | None = None, ax=None):
    """Draw ``image`` in grey with the relevance map on top (transparent where |h| is small)."""
    import matplotlib.pyplot as plt

    ax = plt.gca() if ax is None else ax
    shown = _display(image)
    ax.imshow(shown if shown.ndim == 2 else shown.mean(-1), cmap="gray")
    h2d = project(h)
    M = _limit(h2d, M)
    from matplotlib import colormaps

    rgba = colormaps[cmap]((h2d / M + 1) / 2)
    rgba[..., 3] = alpha * np.clip(np.abs(h2d) / M, 0, 1)
    ax.imshow(rgba, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def overlay_rgb(
    pixels: np.ndarray, h: np.ndarray, cmap: str = "seismic", alpha: float = 0.6
) -> np.ndarray:
    """The map over the grey image as uint8 RGB (as :func:`overlay`, without a figure).

    Parameters
    ----------
    pixels : numpy.ndarray
        (H, W, C) image in [0, 255].
    h : numpy.ndarray
        (H, W, C) or (H, W) relevance; opaque where ``|h|`` is largest.
    """
    grey = np.asarray(pixels, np.float64).mean(axis=-1, keepdims=True) / 255.0
    h2d = project(h)
    top = float(np.abs(h2d).max())
    weight = alpha * (np.abs(h2d) / top if top > 0 else np.zeros_like(h2d))[..., None]
    colour = to_rgb(h2d, cmap) / 255.0
    blend = (1 - weight) * grey + weight * colour
    return (blend.clip(0, 1) * 255).round().astype(np.uint8)


def grid(
    image,
    maps: Mapping[str, np.ndarray],
    ncols: int = 4,
    cmap: str = "seismic",
    title: str | None = None,
    size: float = 2.2,
):
    """A figure comparing methods: the input, then one heatmap per method (a dict name -> map)."""
    import matplotlib.pyplot as plt

    n = len(maps) + 1
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * bool(title)))
    axes = np.atleast_1d(axes).ravel()
    shown = _display(image)
    axes[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
    axes[0].set_title("input", fontsize=9)
    for ax, (name, h) in zip(axes[1:], maps.items()):
        heatmap(h, cmap=cmap, ax=ax)
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def comparison(
    image,
    rows: Mapping[str, Mapping[str, np.ndarray]],
    cmap: str = "seismic",
    title: str | None = None,
    size: float = 1.6,
):
    """One row per explained class (a dict row title -> {method -> map}), the input first."""
    import matplotlib.pyplot as plt

    methods = list(next(iter(rows.values())))
    fig, axes = plt.subplots(
        len(rows),
        len(methods) + 1,
        squeeze=False,
        figsize=(size * (len(methods) + 1), size * len(rows) + 0.4),
    )
    shown = _display(image)
    for r, (row_title, maps) in enumerate(rows.items()):
        axes[r, 0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        axes[r, 0].set_ylabel(row_title, fontsize=9)
        for c, name in enumerate(methods, start=1):
            heatmap(maps[name], cmap=cmap, ax=axes[r, c])
            if r == 0:
                axes[r, c].set_title(name, fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
