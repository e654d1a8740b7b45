"""The Keras backend must be TensorFlow: checked at ``import sglrp``, first, with one line."""

from __future__ import annotations

import json
import os

__all__ = ["check_keras_backend"]


def _message(backend: str, source: str) -> str:
    return (
        f"sglrp needs the TensorFlow backend of Keras, but {source} names {backend!r}: both "
        "engines compute with TensorFlow. Set KERAS_BACKEND=tensorflow (or remove it) before "
        "Python starts, or os.environ['KERAS_BACKEND'] = 'tensorflow' before the first import "
        "of keras"
    )


def _configured() -> tuple[str, str] | None:
    """The backend named by ``KERAS_BACKEND`` or Keras' config file, and where, or ``None``."""
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name, "KERAS_BACKEND"
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "keras.json")
    try:
        with open(path) as f:
            name = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return (name, path) if isinstance(name, str) and name else None


def check_keras_backend() -> None:
    """Raise an ``ImportError`` (one line) unless Keras uses, or will use, TensorFlow."""
    configured = _configured()
    if configured and configured[0].strip().lower() != "tensorflow":
        raise ImportError(_message(*configured))
    import sys

    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    if callable(backend) and backend() != "tensorflow":  # Keras imported with another backend
        raise ImportError(_message(backend(), "keras.backend.backend()"))


check_keras_backend()
