"""The localisation metrics under their first name; they live in ``sglrp.metrics`` now.

``scores`` is ``sglrp.metrics.localisation.scores`` (relevance mass, contrast, pointing game)
with the first version's convention kept: a value that is undefined for a map (no positive
relevance, a constant map) is 0 here, so ``scores(...)[metric].mean()`` stays a number;
``sglrp.metrics`` marks it NaN and ``sglrp.metrics.summarize`` counts it apart. The command
that runs every metric on every shipped model is ``sglrp evaluate`` (``sglrp/evaluation/``).
"""

from __future__ import annotations

import numpy as np

from .metrics import localisation
from .metrics.localisation import METRICS, box_mask
from .metrics.summary import summarize

__all__ = ["METRICS", "box_mask", "scores", "summarize"]


def scores(maps, target_boxes, distractor_boxes) -> dict[str, np.ndarray]:
    """Per-map localisation metrics of (N, H, W[, C]) maps; 0 where undefined."""
    return {
        name: np.nan_to_num(values, nan=0.0)
        for name, values in localisation.scores(maps, target_boxes, distractor_boxes).items()
    }
