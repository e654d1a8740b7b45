"""Import the Keras 3 engine modules while ``sglrp/__init__.py`` still needs innvestigate.

Until the package imports on Keras 3, ``sglrp`` is stood in by an empty package whose path is the
source folder, so only the engine modules and ``heads.py`` are loaded (nothing else of the
package runs). Once ``import sglrp`` works on Keras 3, the real package is used.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sglrp")


def load(name: str):
    """``sglrp.<name>``, e.g. ``load("engines.keras3.propagate")``."""
    try:
        import sglrp  # noqa: F401
    except ImportError:
        stub = types.ModuleType("sglrp")
        stub.__path__ = [SOURCE]
        sys.modules["sglrp"] = stub
    return importlib.import_module(f"sglrp.{name}")
