"""Localisation: how much of a map lies on the explained object rather than on the other one.

For a map explaining the *target* object of a scene that also holds a *distractor*, with known
boxes:

* ``relevance_mass`` - the share of the positive relevance inside the target box (relevance
  mass accuracy, Arras, Osman, Samek 2022, on the positive part of the map);
* ``contrast`` - ``(P_target - P_distractor) / (P_target + P_distractor)`` with ``P_box`` the
  positive relevance inside a box: +1 all on the target, -1 all on the distractor;
* ``pointing_game`` - 1 if the maximum of the map lies in the target box, else 0 (Zhang et
  al. 2018); with several equal maxima, a hit if any of them does (as Quantus).

A metric is undefined (NaN) where its denominator is zero - no positive relevance in the map,
or none in either box - and the pointing game on a constant map.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "box_mask", "scores", "channel_sum"]

METRICS = ("relevance_mass", "contrast", "pointing_game")


def box_mask(shape, box) -> np.ndarray:
    """Boolean (H, W) mask of a half-open box (row0, col0, row1, col1)."""
    mask = np.zeros(shape, bool)
    r0, c0, r1, c1 = (int(v) for v in box)
    mask[r0:r1, c0:c1] = True
    return mask


def channel_sum(maps) -> np.ndarray:
    """(N, H, W) float64 maps from (N, H, W) or (N, H, W, C) ones (channels summed)."""
    maps = np.asarray(maps, np.float64)
    return maps.sum(-1) if maps.ndim == 4 else maps


def scores(maps, target_boxes, distractor_boxes) -> dict[str, np.ndarray]:
    """Per-map localisation metrics of (N, H, W[, C]) maps (channels are summed).

    Returns
    -------
    dict
        ``{metric: (N,) float64}`` for the metrics of :data:`METRICS`; NaN where undefined.
    """
    maps = channel_sum(maps)
    out = {name: np.full(len(maps), np.nan) for name in METRICS}
    for i, (h, tb, db) in enumerate(zip(maps, target_boxes, distractor_boxes)):
        target, distractor = box_mask(h.shape, tb), box_mask(h.shape, db)
        positive = np.maximum(h, 0)
        total = positive.sum()
        p_target, p_distractor = positive[target].sum(), positive[distractor].sum()
        if total > 0:
            out["relevance_mass"][i] = p_target / total
        if p_target + p_distractor > 0:
            out["contrast"][i] = (p_target - p_distractor) / (p_target + p_distractor)
        if h.max() > h.min():
            out["pointing_game"][i] = float(np.any(target & (h == h.max())))
    return out
