"""The rules of the engine in use (``sglrp.engine``), by the names both engines export.

A method is a head (``heads.py``) on a rule: list the engine's ``ReverseAnalyzer`` and a rule
among the bases and set ``heads``::

    from sglrp import ReverseAnalyzer, heads
    from sglrp.rules import Epsilon

    class SGLRPEpsilon(ReverseAnalyzer, Epsilon):
        heads = (heads.softmax_gradient,)
"""

from .engines.active import (
    BoundedDeepTaylor,
    Epsilon,
    EpsilonPlusBox,
    Gradient,
    GuidedBackprop,
    PresetAFlat,
    PresetBFlat,
    ZPlus,
)

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
