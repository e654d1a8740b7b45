"""The rules, as innvestigate analyzers: the second base of every method class.

=====================  =====================================================================
name                   innvestigate analyzer
=====================  =====================================================================
BoundedDeepTaylor      BoundedDeepTaylor (z^B first layer), fast z+ on kernel layers fed by
                       ReLUs, the z rule at Add and average pooling
PresetAFlat / BFlat    LRPSequentialPresetAFlat / BFlat
EpsilonPlusBox         LRP with epsilon on dense layers, z+ on convolutions, z^B at the input
                       layer (:class:`EpsilonPlusBox`)
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
from innvestigate.analyzer.relevance_based.relevance_rule import (
    EpsilonRule,
    WSquareRule,
    ZPlusFastRule,
    ZPlusRule,
)
from innvestigate.backend.checks import (
    contains_kernel,
    is_add_layer,
    is_average_pooling,
    is_conv_layer,
    is_dense_layer,
)
from innvestigate.backend.graph import copy_layer_wo_activation

from ...keras_graph import keeps_sign, producers
from ...validation import activation_name

__all__ = [
    "BoundedDeepTaylor",
    "PresetAFlat",
    "PresetBFlat",
    "EpsilonPlusBox",
    "Epsilon",
    "ZPlus",
    "GuidedBackprop",
    "Gradient",
]

PresetAFlat = innvestigate_analyzer.LRPSequentialPresetAFlat
PresetBFlat = innvestigate_analyzer.LRPSequentialPresetBFlat
Epsilon = innvestigate_analyzer.LRPEpsilon
GuidedBackprop = innvestigate_analyzer.GuidedBackprop
Gradient = innvestigate_analyzer.Gradient

def _non_negative_output(layer) -> bool:
    """Whether ``layer``'s output is >= 0 for every input (a ReLU, or pooling of ReLUs...)."""
    if activation_name(layer) == "relu":
        return True
    return keeps_sign(layer) and _non_negative_inputs(layer)


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


class EpsilonPlusBox(innvestigate_analyzer.LRP):
    """An LRP composite: epsilon on dense layers, z+ on convolutions, z^B at the input layer.

    The composite Kohlbrenner et al. (*Towards Best Practice in Explaining Neural Network
    Decisions with LRP*, IJCNN 2020) recommend for ReLU CNNs (zennit calls the flat-input variant
    ``EpsilonPlusFlat``): ``R_i = sum_j x_i w_ij / (z_j + epsilon sign(z_j)) R_j`` (bias in
    ``z_j``) on dense layers, z+ (bias ignored) on convolutions, the z^B rule with the input
    range ``[low, high]`` on the first layer; ``Add`` and average pooling get the z rule.

    Parameters
    ----------
    low, high : float
        The range of the input values.
    epsilon : float
        The stabilizer of the dense layers.
    """

    def __init__(self, model, *args, low=-1.0, high=1.0, epsilon=1e-6, **kwargs) -> None:
        class DenseEpsilonRule(EpsilonRule):
            def __init__(self, *a, **kw):
                super().__init__(*a, epsilon=epsilon, bias=True, **kw)

        kwargs.pop("rule", None)
        kwargs.pop("input_layer_rule", None)
        super().__init__(
            model,
            *args,
            rule=[(is_dense_layer, DenseEpsilonRule), (is_conv_layer, ZPlusRule)],
            input_layer_rule=(float(low), float(high)),
            **kwargs,
        )
