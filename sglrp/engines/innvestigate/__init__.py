"""The innvestigate engine (Keras 2.14, TensorFlow 2.14): innvestigate 2.1.2's analyzers, each
in a private graph, with sglrp's heads. Its names are the ones every engine exports."""

from .base import Analyzer, ReverseAnalyzer
from .cam import CAMAnalyzer
from .rules import (
    BoundedDeepTaylor,
    Epsilon,
    Gradient,
    GuidedBackprop,
    PresetAFlat,
    PresetBFlat,
    ZPlus,
)

__all__ = [
    "Analyzer",
    "ReverseAnalyzer",
    "CAMAnalyzer",
    "BoundedDeepTaylor",
    "PresetAFlat",
    "PresetBFlat",
    "Epsilon",
    "ZPlus",
    "GuidedBackprop",
    "Gradient",
]
