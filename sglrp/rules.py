"""Rules innvestigate lacks. Every other rule is innvestigate's own (see ``relevance.py``)."""

from __future__ import annotations

import tensorflow as tf
from innvestigate.analyzer.relevance_based.relevance_rule import WSquareRule
from innvestigate.backend.graph import copy_layer_wo_activation

__all__ = ["WPlusRule"]


class WPlusRule(WSquareRule):
    """The w+ input rule of Deep Taylor decomposition (Montavon et al. 2017).

    ``R_i = sum_j w+_ij / (sum_i w+_ij) R_j``: the z+ rule with every input activation set to
    one, so the input map does not depend on the pixel values.
    """

    def __init__(self, layer, _state) -> None:  # noqa: D107 - replaces W**2 by max(0, W)
        kernel = layer.weights[0]
        self._layer_wo_act_b = copy_layer_wo_activation(
            layer,
            keep_bias=False,
            weights=[tf.nn.relu(kernel)],
            name_template="reversed_kernel_wplus_%s",
        )
