"""The engines: one implementation of the analyzers' computations per Keras generation.

* ``innvestigate``: Keras 2 (TensorFlow 2.14) with innvestigate 2.1.2, graph mode inside
  each analyzer's private graph (``pip install "sglrp[innvestigate]"``).
* ``keras3``: native Keras 3 on current TensorFlow, one compiled function per analyzer.

The engine follows the installed Keras, once, at import: :data:`ENGINE` names it. Both export
the same names (:data:`NAMES`: the analyzer bases and the rule bases); everything else of
sglrp is written once above them.
"""

from __future__ import annotations

import importlib
import sys

import tensorflow as tf

__all__ = ["ENGINE", "NAMES", "active"]

#: What every engine package exports (its ``__all__``).
NAMES = (
    "Analyzer",
    "ReverseAnalyzer",
    "CAMAnalyzer",
    "BoundedDeepTaylor",
    "PresetAFlat",
    "PresetBFlat",
    "EpsilonPlusBox",
    "Epsilon",
    "ZPlus",
    "GuidedBackprop",
    "Gradient",
)


def _keras_major() -> int:
    version = getattr(tf.keras, "__version__", None)
    if version is None:  # Keras 2.x inside TensorFlow <= 2.15
        import keras

        version = keras.__version__
    return int(version.split(".")[0])


def _detect() -> str:
    if _keras_major() >= 3:
        return "keras3"
    tf_major_minor = tuple(int(v) for v in tf.__version__.split(".")[:2])
    if tf_major_minor >= (2, 16):
        raise ImportError(
            f"TensorFlow {tf.__version__} is set to legacy Keras 2 (tf_keras, "
            "TF_USE_LEGACY_KERAS=1); sglrp runs on Keras 3 there: unset TF_USE_LEGACY_KERAS, or "
            'install the Keras 2 stack with pip install "sglrp[innvestigate]"'
        )
    try:
        import innvestigate  # noqa: F401
    except ImportError:
        raise ImportError(
            f"sglrp on Keras 2 (TensorFlow {tf.__version__}) needs innvestigate 2.1.2: "
            'pip install "sglrp[innvestigate]" (or install TensorFlow >= 2.16 for the native '
            "Keras 3 engine)"
        ) from None
    return "innvestigate"


#: The engine in use: ``"innvestigate"`` or ``"keras3"``.
ENGINE = _detect()
#: Its package: the analyzer bases and rules of :data:`ENGINE`.
#: ``sglrp.engines.active`` imports like a module (as ``os.path`` does).
active = importlib.import_module(f".{ENGINE}", __name__)
sys.modules[f"{__name__}.active"] = active
