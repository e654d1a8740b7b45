"""The innvestigate engine (Keras 2.14, TensorFlow 2.14): innvestigate 2.1.2's analyzers, each
in a private graph, with sglrp's heads. It exports ``sglrp.engines.NAMES``."""

from .. import NAMES as __all__  # noqa: F401
from .base import Analyzer, ReverseAnalyzer  # noqa: F401
from .cam import CAMAnalyzer  # noqa: F401
from .rules import *  # noqa: F403  (the rule bases)
