"""``sglrp evaluate``: every method on every shipped digit-scene model, scored.

``run.py`` computes the maps and the metrics (``sglrp.metrics``), ``report.py`` writes
``evaluation.json`` and the markdown tables, ``figures.py`` the pictures, ``cli.py`` is the
command-line parser on top.
"""

from .run import Settings, evaluate, evaluate_model

__all__ = ["Settings", "evaluate", "evaluate_model"]
