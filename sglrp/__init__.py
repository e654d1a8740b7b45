"""sglrp: class-discriminative relevance maps for Keras image classifiers.

Softmax-Gradient LRP (Iwana, Kuroki, Uchida, ICCV Workshops 2019, arXiv:1908.04351) and the
methods it is compared with, with the target chosen at call time::

    from sglrp import SGLRP
    analysis = SGLRP(model, target_id=340, low=-123.68, high=151.061).analyze(images)

``sglrp.engine`` names the engine that computes them, chosen by the installed Keras:
``"innvestigate"`` (Keras 2.14 with innvestigate) or ``"keras3"`` (native Keras 3).
"""

from . import _backend  # noqa: F401, I001  (first: refuses a Keras backend other than TensorFlow)
from . import _stderr  # noqa: F401, I001  (only in `sglrp explain --quiet`, Ray workers)
from ._version import __version__
from .analyzer import Analyzer, Bounded, ContrastLostWarning
from .cam import GradCAM, GuidedGradCAM, MultiGradCAM
from .engines import ENGINE as engine
from .engines.active import ReverseAnalyzer
from .gradients import GBP, IG, SG
from .registry import available_methods, create_analyzer
from .relevance import (
    CLRP,
    LRP,
    LRPA,
    LRPB,
    LRPE,
    SGLRP,
    ContrastiveAnalyzer,
    LRPZPlus,
    SGLRPEpsilonPlusBox,
    SGLRPSeqA,
    SGLRPSeqB,
)

__all__ = [
    "__version__",
    "engine",
    "Analyzer",
    "Bounded",
    "ContrastLostWarning",
    "ReverseAnalyzer",
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
    "GBP",
    "SG",
    "IG",
    "GradCAM",
    "MultiGradCAM",
    "GuidedGradCAM",
    "available_methods",
    "create_analyzer",
]
