"""The native Keras 3 engine: LRP rules and gradients as compiled TensorFlow functions.

``graph.py`` walks the model, ``kernels.py`` runs a kernel layer with any weights and its
transpose, ``rules.py`` holds one class per layer rule and ``propagate.py`` compiles the
backward passes of one model under one rule set (:class:`~.propagate.Propagation`);
``base.py`` and ``cam.py`` are the analyzers over them. It exports ``sglrp.engines.NAMES``.
"""

from .. import NAMES as __all__  # noqa: F401
from .base import *  # noqa: F403  (the analyzers and the rule bases)
from .cam import CAMAnalyzer  # noqa: F401
