"""Relevance methods: a head (``heads.py``) on a rule (``rules.py``), written once for both engines.

=================  ==================================  =========================================
class              head                                rule
=================  ==================================  =========================================
LRP                output ``z_t``                      BoundedDeepTaylor (z^B first layer, z+)
CLRP               ``z_t`` minus ``z_t/(C-1)`` dual      BoundedDeepTaylor
SGLRP              ``y_t(1-y_t)`` minus ``y_t y_n`` dual   BoundedDeepTaylor
SGLRPSeqA / B      signed softmax gradient, one pass   PresetAFlat / PresetBFlat
SGLRPEpsilonPlusBox  signed softmax gradient, one pass EpsilonPlusBox (epsilon dense, z+ conv,
                                                       z^B first layer)
LRPA / LRPB        output ``z_t``                      PresetAFlat / PresetBFlat
LRPE               output ``z_t``                      Epsilon
LRPZPlus           output ``z_t``                      ZPlus (w+ rule at the input layer)
=================  ==================================  =========================================
"""

from __future__ import annotations

from . import heads
from .analyzer import Bounded, Contrastive
from .engines.active import ReverseAnalyzer
from .registry import register
from .rules import BoundedDeepTaylor, Epsilon, EpsilonPlusBox, PresetAFlat, PresetBFlat, ZPlus
from .validation import LRP_NETWORKS, RELU_NETWORKS, finite_number

__all__ = [
    "ContrastiveAnalyzer",
    "LRP",
    "CLRP",
    "SGLRP",
    "SGLRPSeqA",
    "SGLRPSeqB",
    "SGLRPEpsilonPlusBox",
    "LRPA",
    "LRPB",
    "LRPE",
    "LRPZPlus",
]


class ContrastiveAnalyzer(Contrastive, ReverseAnalyzer):
    """A target head and a dual head (``heads``), the dual map subtracted (see ``Contrastive``)."""

    heads: tuple = (heads.output, heads.contrastive_dual)


@register("lrp")
class LRP(Bounded, ReverseAnalyzer, BoundedDeepTaylor):
    """One-hot LRP: bounded Deep Taylor started from the target's logit ``R_t = z_t``.

    Parameters
    ----------
    model : keras.Model
        A ReLU classifier (a final softmax is stripped).
    target_id : int, optional
        Default target; ``None`` explains the predicted class.
    relu : bool
        Keep only positive relevance.
    low, high : float
        Range of the input values, for the z^B rule at the first layer (default -1, 1; a
        batch outside the range gets a warning).
    """

    supports = RELU_NETWORKS
    heads = (heads.output,)


@register("clrp")
class CLRP(Bounded, ContrastiveAnalyzer, BoundedDeepTaylor):
    """Contrastive LRP (Gu, Yang, Tresp 2018): target map minus the dual map.

    The dual starts from ``z_t / (C - 1)`` at every other class; with ``scaling=True`` the
    dual map is scaled per image to the sum of the target map before subtracting.
    """

    supports = RELU_NETWORKS
    heads = (heads.output, heads.contrastive_dual)


@register("sglrp")
class SGLRP(Bounded, ContrastiveAnalyzer, BoundedDeepTaylor):
    """Softmax-Gradient LRP (Iwana, Kuroki, Uchida 2019).

    The target map starts from ``y_t (1 - y_t)`` at the target, the dual map from ``y_t y_n``
    at every other class ``n`` (``y`` = softmax of the logits); the result is
    ``target - dual * (sum(target) / sum(dual))`` per image (``scaling=True``, as the paper).
    """

    supports = RELU_NETWORKS
    heads = (heads.softmax_gradient_target, heads.softmax_gradient_dual)


@register("sglrp.sequential_preset_a")
class SGLRPSeqA(ReverseAnalyzer, PresetAFlat):
    """SGLRP in one signed pass, ``R_t = y_t (1 - y_t)``, ``R_n = -y_t y_n``, LRP preset A flat."""

    supports = LRP_NETWORKS
    heads = (heads.softmax_gradient,)


@register("sglrp.sequential_preset_b")
class SGLRPSeqB(ReverseAnalyzer, PresetBFlat):
    """SGLRP in one signed pass, ``R_t = y_t (1 - y_t)``, ``R_n = -y_t y_n``, LRP preset B flat."""

    supports = LRP_NETWORKS
    heads = (heads.softmax_gradient,)


@register("sglrp.epsilon_plus_box")
class SGLRPEpsilonPlusBox(Bounded, ReverseAnalyzer, EpsilonPlusBox):
    """SGLRP in one signed pass on an LRP composite: epsilon on dense layers, z+ on
    convolutions, z^B at the input layer (Kohlbrenner et al. 2020).

    ``R_t = y_t (1 - y_t)``, ``R_n = -y_t y_n`` at the logits, as ``SGLRPSeqA``; the rules are
    linear in the relevance, so the map is the target map minus the unscaled dual map. Where the
    bounded Deep Taylor of ``SGLRP`` loses contrast on a network with dense hidden layers (z+
    there makes the target and dual maps alike, Sixt et al. 2020), epsilon keeps it
    (``sglrp evaluate``, README).

    Parameters
    ----------
    low, high : float
        Range of the input values, for the z^B rule at the first layer (default -1, 1).
    epsilon : float
        The stabilizer of the dense layers, > 0 (0.1, as innvestigate's preset A).
    """

    supports = RELU_NETWORKS
    heads = (heads.softmax_gradient,)

    def __init__(self, model, target_id=None, relu=False, low=-1.0, high=1.0, epsilon=0.1):
        self.epsilon = finite_number("epsilon", epsilon, above=0)
        super().__init__(model, target_id, relu, low=low, high=high)

    def _rule_options(self) -> dict:
        return {**super()._rule_options(), "epsilon": self.epsilon}


@register("lrp.sequential_preset_a_flat")
class LRPA(ReverseAnalyzer, PresetAFlat):
    """One-hot LRP, innvestigate preset A: epsilon dense, alpha1-beta0 conv, flat input."""

    supports = LRP_NETWORKS


@register("lrp.sequential_preset_b_flat")
class LRPB(ReverseAnalyzer, PresetBFlat):
    """One-hot LRP, innvestigate preset B: epsilon dense, alpha2-beta1 conv, flat input."""

    supports = LRP_NETWORKS


@register("lrp.epsilon")
class LRPE(ReverseAnalyzer, Epsilon):
    """One-hot LRP-epsilon: ``R_i = sum_j x_i w_ij / (z_j + epsilon sign(z_j)) R_j``.

    Parameters
    ----------
    epsilon : float
        The stabilizer, > 0 (``1e-7`` as innvestigate).
    """

    supports = LRP_NETWORKS

    def __init__(self, model, target_id=None, relu=False, epsilon=1e-7):
        self.epsilon = finite_number("epsilon", epsilon, above=0)
        super().__init__(model, target_id, relu)

    def _rule_options(self) -> dict:
        return {**super()._rule_options(), "epsilon": self.epsilon}


@register("lrp.z_plus")
class LRPZPlus(ReverseAnalyzer, ZPlus):
    """One-hot LRP-z+ (bias ignored) with the w+ rule at the input layer."""

    supports = RELU_NETWORKS
