"""sglrp: class-discriminative relevance maps for Keras image classifiers.

Softmax-Gradient LRP (Iwana, Kuroki, Uchida, ICCV Workshops 2019, arXiv:1908.04351) and the
methods it is compared with, as innvestigate analyzers with the target chosen at call time::

    from sglrp import SGLRP
    analysis = SGLRP(model, target_id=340, low=-123.68, high=151.061).analyze(images)
"""

from . import backend as _backend  # noqa: F401  (quiet TF before anything else imports it)
from ._version import __version__
from .base import Analyzer, ContrastiveAnalyzer, ReverseAnalyzer
from .cam import GradCAM, GuidedGradCAM, MultiGradCAM
from .gradients import GBP, IG, SG
from .registry import available_methods, create_analyzer
from .relevance import CLRP, LRP, LRPA, LRPB, LRPE, SGLRP, LRPZPlus, SGLRPSeqA, SGLRPSeqB

__all__ = [
    "__version__",
    "Analyzer",
    "ReverseAnalyzer",
    "ContrastiveAnalyzer",
    "LRP",
    "CLRP",
    "SGLRP",
    "SGLRPSeqA",
    "SGLRPSeqB",
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
