"""Metrics of relevance maps, each a few lines of NumPy on precomputed maps.

* ``localisation``: relevance mass, contrast, pointing game (needs object boxes);
* ``faithfulness``: deletion and insertion AUC (needs the model's probabilities);
* ``sanity``: randomization similarity and random-logit similarity (need maps of a randomised
  model and of another class);
* ``summary``: mean and bootstrap interval, undefined values counted apart.
"""

from .faithfulness import auc, perturbation_curves
from .localisation import box_mask, scores
from .sanity import random_other_classes, rank_similarity, spearman
from .summary import summarize

#: Every metric of ``sglrp evaluate``, in the order of its tables.
METRICS = (
    "relevance_mass",
    "contrast",
    "pointing_game",
    "deletion_auc",
    "insertion_auc",
    "randomization_similarity",
    "random_logit_similarity",
)

__all__ = [
    "METRICS",
    "auc",
    "box_mask",
    "perturbation_curves",
    "random_other_classes",
    "rank_similarity",
    "scores",
    "spearman",
    "summarize",
]
