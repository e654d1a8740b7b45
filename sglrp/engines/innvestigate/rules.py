"""The rules, as innvestigate analyzers: the second base of every method class.

=====================  =====================================================================
name                   innvestigate analyzer
=====================  =====================================================================
BoundedDeepTaylor      BoundedDeepTaylor (z^B first layer), fast z+ on kernel layers fed by
                       ReLUs, the z rule at Add and average pooling
PresetAFlat / BFlat    LRPSequentialPresetAFlat / BFlat
Epsilon                LRPEpsilon
ZPlus                  LRPZPlus with the w+ rule at the input layer (:class:`WPlusRule`)
GuidedBackprop         GuidedBackprop
Gradient               Gradient
=====================  =====================================================================
"""

from __future__ import annotations

import tensorflow as tf
from innvestigate import analyzer as innvestigate_analyzer
from innvestigate.analyzer.relevance_based.relevance_analyzer import (
    AddReverseLayer,
    AveragePoolingReverseLayer,
)
from innvestigate.analyzer.relevance_based.relevance_rule import WSquareRule, ZPlusFastRule
from innvestigate.backend.checks import contains_kernel, is_add_layer, is_average_pooling
from innvestigate.backend.graph import copy_layer_wo_activation
from tensorflow.keras import layers as klayers

from ...keras_graph import producers
from ...validation import activation_name

__all__ = [
    "BoundedDeepTaylor",
    "PresetAFlat",
    "PresetBFlat",
    "Epsilon",
    "ZPlus",
    "GuidedBackprop",
    "Gradient",
    "WPlusRule",
]

PresetAFlat = innvestigate_analyzer.LRPSequentialPresetAFlat
PresetBFlat = innvestigate_analyzer.LRPSequentialPresetBFlat
Epsilon = innvestigate_analyzer.LRPEpsilon
GuidedBackprop = innvestigate_analyzer.GuidedBackprop
Gradient = innvestigate_analyzer.Gradient

#: Layers whose output is non-negative when all their inputs are.
_KEEPS_SIGN = (
    klayers.Add,
    klayers.Concatenate,
    klayers.Cropping2D,
    klayers.Dropout,
    klayers.Flatten,
    klayers.GlobalAveragePooling2D,
    klayers.GlobalMaxPooling2D,
    klayers.AveragePooling2D,
    klayers.MaxPooling2D,
    klayers.Reshape,
    klayers.UpSampling2D,
    klayers.ZeroPadding2D,
)


def _non_negative_output(layer) -> bool:
    """Whether ``layer``'s output is >= 0 for every input (a ReLU, or pooling of ReLUs...)."""
    if activation_name(layer) == "relu":
        return True
    return isinstance(layer, _KEEPS_SIGN) and _non_negative_inputs(layer)


def _non_negative_inputs(layer) -> bool:
    inputs = producers(layer)
    return bool(inputs) and all(_non_negative_output(producer) for producer in inputs)


def _z_plus_on_non_negative_inputs(layer) -> bool:
    return contains_kernel(layer) and _non_negative_inputs(layer)


class BoundedDeepTaylor(innvestigate_analyzer.BoundedDeepTaylor):
    """Bounded Deep Taylor (Montavon et al. 2017) with the input range ``[low, high]``.

    ``Add`` and average pooling get innvestigate's z-rule layers instead of Deep Taylor's
    gradient, which copies the relevance to every summand (ResNet50's maps summed to ~2e4 z_t).
    Kernel layers whose inputs are ReLU outputs get innvestigate's fast z+ rule: Deep Taylor's
    rule there (alpha1-beta0) also propagates through ``x- w-``, which is zero on those inputs,
    at the price of a second convolution forward and backward - the same numbers at half the cost.
    """

    def _create_analysis(self, *args, **kwargs):
        self._add_conditional_reverse_mapping(
            is_add_layer, AddReverseLayer, name="sglrp_add_z", priority=5
        )
        self._add_conditional_reverse_mapping(
            is_average_pooling,
            AveragePoolingReverseLayer,
            name="sglrp_average_pooling_z",
            priority=5,
        )
        self._add_conditional_reverse_mapping(
            _z_plus_on_non_negative_inputs, ZPlusFastRule, name="sglrp_z_plus_fast", priority=5
        )
        return super()._create_analysis(*args, **kwargs)


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


class ZPlus(innvestigate_analyzer.LRPZPlus):
    """LRP-z+ (bias ignored) with the w+ rule at the input layer."""

    def __init__(self, model, **kwargs) -> None:
        kwargs.setdefault("input_layer_rule", WPlusRule)
        super().__init__(model, **kwargs)
