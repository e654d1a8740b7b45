"""Faithfulness: does the model's confidence follow the order of the map? Deletion and insertion.

Pixel flipping (Samek, Binder, Montavon, Lapuschkin, Müller 2017), most relevant first: the
pixels (all channels of a location together) are sorted by the map's relevance, highest first
(channels summed; equal values keep their raster order). At step ``k`` of ``steps`` the first
``round(k / steps * P)`` of the ``P`` pixels are

* **deleted**: set to the baseline in the image, or
* **inserted**: copied from the image into a baseline image,

and the model's softmax probability of the target is read. With ``x = k / steps`` (the fraction
of pixels, 0 to 1) and ``y`` the probability, the area under the curve (trapezoid rule) lies in
[0, 1]: a low deletion AUC and a high insertion AUC mean the map ranks the pixels the model
needs first (insertion as Petsiuk, Das, Saenko 2018).

A constant map orders nothing: its AUCs are undefined (NaN).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .localisation import channel_sum

__all__ = ["METRICS", "pixel_order", "perturbation_counts", "perturbation_curves", "auc"]

METRICS = ("deletion_auc", "insertion_auc")


def pixel_order(h: np.ndarray) -> np.ndarray:
    """Flat pixel indices of an (H, W) map, most relevant first (stable on ties)."""
    return np.argsort(-np.asarray(h, np.float64).ravel(), kind="stable")


def perturbation_counts(n_pixels: int, steps: int) -> np.ndarray:
    """How many pixels are perturbed at each of the ``steps + 1`` points (0 ... n_pixels)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    return np.round(np.arange(steps + 1) / steps * n_pixels).astype(int)


def _perturbed(x, order, counts, baseline, mode):
    """(len(counts), H, W, C) images: the first ``counts[k]`` pixels deleted or inserted."""
    h, w = x.shape[:2]
    ranks = np.empty(h * w, int)
    ranks[order] = np.arange(h * w)
    chosen = (ranks[None, :] < counts[:, None]).reshape(len(counts), h, w, 1)
    base = np.broadcast_to(np.asarray(baseline, x.dtype), x.shape)
    if mode == "deletion":
        return np.where(chosen, base[None], x[None])
    return np.where(chosen, x[None], base[None])


def perturbation_curves(
    predict: Callable[[np.ndarray], np.ndarray],
    x,
    maps,
    targets,
    steps: int = 16,
    baseline=0.0,
    max_batch: int = 4096,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves of (N, H, W, C) images for their maps and targets.

    Parameters
    ----------
    predict : callable
        Maps a batch of images (M, H, W, C) to class probabilities (M, C).
    x : array (N, H, W, C)
        The images.
    maps : array (N, H, W[, C])
        Their relevance maps (channels are summed for the order).
    targets : array of int (N,)
        The class whose probability is read.
    steps : int
        Points on the curve besides 0: fractions ``0, 1/steps, ..., 1``.
    baseline : float or array broadcastable to one image
        The value of a removed pixel (0: black, the scenes' background).
    max_batch : int
        At most this many perturbed images go through ``predict`` at once (the images of one
        map are never split: one call covers one or more maps).

    Returns
    -------
    dict
        ``deletion`` and ``insertion``: (N, steps + 1) probabilities, NaN rows for constant
        maps; ``fractions``: (steps + 1,) the x axis.
    """
    x = np.asarray(x)
    h2d = channel_sum(maps)
    targets = np.asarray(targets)
    n = len(x)
    counts = perturbation_counts(h2d[0].size, steps)
    per_map = 2 * len(counts)
    maps_per_call = max(1, max_batch // per_map)
    out = {mode: np.full((n, len(counts)), np.nan) for mode in ("deletion", "insertion")}
    defined = np.flatnonzero([h.max() > h.min() for h in h2d])
    for start in range(0, len(defined), maps_per_call):
        idx = defined[start : start + maps_per_call]
        batch = np.concatenate(
            [
                _perturbed(x[i], pixel_order(h2d[i]), counts, baseline, mode)
                for i in idx
                for mode in ("deletion", "insertion")
            ]
        )
        probs = np.asarray(predict(batch), np.float64)
        probs = probs.reshape(len(idx), 2, len(counts), -1)
        rows = np.arange(len(idx))
        out["deletion"][idx] = probs[rows, 0, :, targets[idx]]
        out["insertion"][idx] = probs[rows, 1, :, targets[idx]]
    out["fractions"] = counts / counts[-1]
    return out


def auc(curves, fractions) -> np.ndarray:
    """Area under each curve (rows of ``curves``) over ``fractions`` by the trapezoid rule."""
    curves = np.asarray(curves, np.float64)
    dx = np.diff(np.asarray(fractions, np.float64))
    return ((curves[:, 1:] + curves[:, :-1]) / 2 * dx).sum(axis=1)
