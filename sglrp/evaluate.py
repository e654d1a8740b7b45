"""Class discrimination of relevance maps on scenes with known object boxes.

For a map explaining the *target* object in a scene that also holds a *distractor*:

* ``relevance_mass`` - the share of positive relevance inside the target box
  (relevance mass accuracy, Arras et al. 2022);
* ``contrast`` - ``(P_target - P_distractor) / (P_target + P_distractor)`` with ``P_box`` the
  positive relevance inside a box: +1 all on the target, -1 all on the distractor;
* ``pointing_game`` - 1 if the maximum of the map lies in the target box (Zhang et al. 2018).

Each is reported as the mean over scenes with a seeded bootstrap 95% interval. The metrics are
a few lines of NumPy; Quantus implements the first and the last, but needs pandas and OpenCV and
a model callable, for what is here a sum over a box.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "box_mask", "scores", "summarize"]

METRICS = ("relevance_mass", "contrast", "pointing_game")


def box_mask(shape, box) -> np.ndarray:
    """Boolean (H, W) mask of a half-open box (row0, col0, row1, col1)."""
    mask = np.zeros(shape, bool)
    r0, c0, r1, c1 = (int(v) for v in box)
    mask[r0:r1, c0:c1] = True
    return mask


def scores(maps, target_boxes, distractor_boxes) -> dict[str, np.ndarray]:
    """Per-scene metrics of (N, H, W[, C]) maps (channels are summed)."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 4:
        maps = maps.sum(-1)
    out = {name: np.zeros(len(maps)) for name in METRICS}
    for i, (h, tb, db) in enumerate(zip(maps, target_boxes, distractor_boxes)):
        target, distractor = box_mask(h.shape, tb), box_mask(h.shape, db)
        positive = np.maximum(h, 0)
        total = positive.sum()
        p_target, p_distractor = positive[target].sum(), positive[distractor].sum()
        out["relevance_mass"][i] = p_target / total if total > 0 else 0.0
        both = p_target + p_distractor
        out["contrast"][i] = (p_target - p_distractor) / both if both > 0 else 0.0
        peak = np.unravel_index(np.argmax(h), h.shape)
        out["pointing_game"][i] = float(target[peak]) if np.max(h) > 0 else 0.0
    return out


def summarize(values, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean and bootstrap 95% interval of per-scene values."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "ci95": [float(lo), float(hi)]}
