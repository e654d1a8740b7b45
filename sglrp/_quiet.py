"""TensorFlow's Python loggers kept quiet during sglrp's own calls, and only then.

``import sglrp`` leaves the process alone: no logger level and no environment variable is set
for the whole process. :func:`quiet_tensorflow` raises the ``tensorflow`` and ``absl`` loggers
to ERROR while an analyzer is built or run (retracing notices and the like are about sglrp's
own functions, not the user's) and restores their levels afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

__all__ = ["quiet_tensorflow", "quietly"]

_LOGGERS = ("tensorflow", "absl")


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Within the block, TensorFlow's Python loggers report errors only."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def quietly(method):
    """Decorator: run ``method`` within :func:`quiet_tensorflow`."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with quiet_tensorflow():
            return method(*args, **kwargs)

    return wrapper
