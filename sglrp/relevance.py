"""Relevance methods: a head (``heads.py``) on an innvestigate rule.

=================  ==================================  =========================================
class              head                                rule (innvestigate base)
=================  ==================================  =========================================
LRP                output ``z_t``                      BoundedDeepTaylor (z^B first layer, z+)
CLRP               ``z_t`` minus ``z_t/(C-1)`` dual      BoundedDeepTaylor
SGLRP              ``y_t(1-y_t)`` minus ``y_t y_n`` dual   BoundedDeepTaylor
SGLRPSeqA / B      signed softmax gradient, one pass   LRPSequentialPresetAFlat / BFlat
LRPA / LRPB        output ``z_t``                      LRPSequentialPresetAFlat / BFlat
LRPE               output ``z_t``                      LRPEpsilon
LRPZPlus           output ``z_t``                      LRPZPlus with the w+ input rule
=================  ==================================  =========================================
"""

from __future__ import annotations

import tensorflow as tf
from innvestigate.analyzer import (
    BoundedDeepTaylor,
    LRPEpsilon,
    LRPSequentialPresetAFlat,
    LRPSequentialPresetBFlat,
)
from innvestigate.analyzer import (
    LRPZPlus as _ZPlusBase,
)
from innvestigate.analyzer.relevance_based.relevance_analyzer import (
    AddReverseLayer,
    AveragePoolingReverseLayer,
)
from innvestigate.analyzer.relevance_based.relevance_rule import ZPlusFastRule
from innvestigate.backend.checks import contains_kernel, is_add_layer, is_average_pooling
from tensorflow.keras import layers as klayers

from . import heads
from .base import ContrastiveAnalyzer, ReverseAnalyzer
from .registry import register
from .rules import WPlusRule
from .validation import activation_name, check_bounds

__all__ = ["LRP", "CLRP", "SGLRP", "SGLRPSeqA", "SGLRPSeqB", "LRPA", "LRPB", "LRPE", "LRPZPlus"]


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
    if isinstance(layer, klayers.ReLU):
        return not layer.negative_slope and layer.threshold >= 0
    if activation_name(layer) == "relu":
        return True
    return isinstance(layer, _KEEPS_SIGN) and _non_negative_inputs(layer)


def _non_negative_inputs(layer) -> bool:
    nodes = layer.inbound_nodes
    return bool(nodes) and all(
        _non_negative_output(producer)
        for node in nodes
        for producer in tf.nest.flatten(node.inbound_layers)
    )


def _z_plus_on_non_negative_inputs(layer) -> bool:
    return contains_kernel(layer) and _non_negative_inputs(layer)


class _Bounded:
    """Bounded Deep Taylor (Montavon et al. 2017) with the input range ``[low, high]``.

    ``Add`` and average pooling get innvestigate's z-rule layers instead of Deep Taylor's
    gradient, which copies the relevance to every summand (ResNet50's maps summed to ~2e4 z_t).
    Kernel layers whose inputs are ReLU outputs get innvestigate's fast z+ rule: Deep Taylor's
    rule there (alpha1-beta0) also propagates through ``x- w-``, which is zero on those inputs,
    at the price of a second convolution forward and backward - the same numbers at half the cost.
    """

    requires_relu = True

    def __init__(self, model, target_id=None, relu=False, low=-1.0, high=1.0, **kwargs):
        check_bounds(low, high)
        self.low, self.high = float(low), float(high)
        super().__init__(model, target_id, relu, low=self.low, high=self.high, **kwargs)

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


@register("lrp")
class LRP(_Bounded, ReverseAnalyzer, BoundedDeepTaylor):
    """One-hot LRP: bounded Deep Taylor started from the target's logit ``R_t = z_t``.

    Parameters
    ----------
    model : tf.keras.Model
        A ReLU classifier (a final softmax is stripped).
    target_id : int, optional
        Default target; ``None`` explains the predicted class.
    relu : bool
        Keep only positive relevance.
    low, high : float
        Range of the input values, for the z^B rule at the first layer.
    """

    heads = (heads.output,)


@register("clrp")
class CLRP(_Bounded, ContrastiveAnalyzer, BoundedDeepTaylor):
    """Contrastive LRP (Gu, Yang, Tresp 2018): target map minus the dual map.

    The dual starts from ``z_t / (C - 1)`` at every other class; with ``scaling=True`` the
    dual map is scaled per image to the sum of the target map before subtracting.
    """

    heads = (heads.output, heads.contrastive_dual)


@register("sglrp")
class SGLRP(_Bounded, ContrastiveAnalyzer, BoundedDeepTaylor):
    """Softmax-Gradient LRP (Iwana, Kuroki, Uchida 2019).

    The target map starts from ``y_t (1 - y_t)`` at the target, the dual map from ``y_t y_n``
    at every other class ``n`` (``y`` = softmax of the logits); the result is
    ``target - dual * (sum(target) / sum(dual))`` per image (``scaling=True``, as the paper).
    """

    heads = (heads.softmax_gradient_target, heads.softmax_gradient_dual)


@register("sglrp.sequential_preset_a")
class SGLRPSeqA(ReverseAnalyzer, LRPSequentialPresetAFlat):
    """SGLRP in one signed pass, ``R_t = y_t (1 - y_t)``, ``R_n = -y_t y_n``, LRP preset A flat."""

    heads = (heads.softmax_gradient,)


@register("sglrp.sequential_preset_b")
class SGLRPSeqB(ReverseAnalyzer, LRPSequentialPresetBFlat):
    """SGLRP in one signed pass, ``R_t = y_t (1 - y_t)``, ``R_n = -y_t y_n``, LRP preset B flat."""

    heads = (heads.softmax_gradient,)


@register("lrp.sequential_preset_a_flat")
class LRPA(ReverseAnalyzer, LRPSequentialPresetAFlat):
    """One-hot LRP, innvestigate preset A: epsilon dense, alpha1-beta0 conv, flat input."""


@register("lrp.sequential_preset_b_flat")
class LRPB(ReverseAnalyzer, LRPSequentialPresetBFlat):
    """One-hot LRP, innvestigate preset B: epsilon dense, alpha2-beta1 conv, flat input."""


@register("lrp.epsilon")
class LRPE(ReverseAnalyzer, LRPEpsilon):
    """One-hot LRP-epsilon (``epsilon=1e-7`` as innvestigate; pass ``epsilon=`` to change it)."""


@register("lrp.z_plus")
class LRPZPlus(ReverseAnalyzer, _ZPlusBase):
    """One-hot LRP-z+ (bias ignored) with the w+ rule at the input layer."""

    requires_relu = True

    def __init__(self, model, target_id=None, relu=False, **kwargs):
        kwargs.setdefault("input_layer_rule", WPlusRule)
        super().__init__(model, target_id, relu, **kwargs)
