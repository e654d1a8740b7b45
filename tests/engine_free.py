"""sglrp's engine-free modules, importable where ``import sglrp`` is not (yet).

``sglrp/__init__.py`` imports the engine of the installed Keras; where that engine is missing
(the Keras 3 one while it is being written), the engine-free modules (``canonize``,
``keras_graph``...) are loaded inside a bare ``sglrp`` package whose ``__init__`` is not run.
Where ``import sglrp`` works, this is plain ``import sglrp.<name>``.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import types


def sglrp_module(name: str):
    """The module ``sglrp.<name>``."""
    try:
        return importlib.import_module(f"sglrp.{name}")
    except ImportError:
        package = types.ModuleType("sglrp")
        package.__path__ = [str(pathlib.Path(__file__).parents[1] / "sglrp")]
        sys.modules["sglrp"] = package
        return importlib.import_module(f"sglrp.{name}")
