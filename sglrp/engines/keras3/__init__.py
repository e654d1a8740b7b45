"""The native Keras 3 engine: LRP rules and gradients as compiled TensorFlow functions.

``graph.py`` walks the model, ``kernels.py`` runs a kernel layer with any weights and its
transpose, ``rules.py`` holds one class per layer rule and ``propagate.py`` compiles the
backward passes of one model under one rule set (:class:`~.propagate.Propagation`);
``base.py`` and ``cam.py`` are the analyzers over them, with the names every engine exports.
"""

from .base import (
    Analyzer,
    BoundedDeepTaylor,
    Epsilon,
    EpsilonPlusBox,
    Gradient,
    GuidedBackprop,
    PresetAFlat,
    PresetBFlat,
    ReverseAnalyzer,
    ZPlus,
)
from .cam import CAMAnalyzer

__all__ = [
    "Analyzer",
    "ReverseAnalyzer",
    "CAMAnalyzer",
    "BoundedDeepTaylor",
    "PresetAFlat",
    "PresetBFlat",
    "Epsilon",
    "EpsilonPlusBox",
    "ZPlus",
    "GuidedBackprop",
    "Gradient",
]
