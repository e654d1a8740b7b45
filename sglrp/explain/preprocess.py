"""How decoded pixels become the model's input: ``--preprocess``.

Every choice maps pixels on the 0-255 scale (uint8 for 8-bit images, float32 for 16-bit ones,
see :mod:`sglrp.explain.inputs`) to float32 model input, and has the range ``(low, high)`` of
what it produces, the default ``--low/--high``:

==========  =====================================================  ==========================
choice      model input                                            range
==========  =====================================================  ==========================
``0-1``     ``x / 255``                                            0, 1
``0-255``   ``x`` (for models that scale inside, e.g. a first      0, 255
            ``Rescaling`` or ``Normalization`` layer)
``-1-1``    ``x / 127.5 - 1`` (keras.applications' ``tf`` mode)   -1, 1
``caffe``   RGB -> BGR, minus the ImageNet mean (VGG, ResNet50)   -123.68, 151.061
``torch``   ``(x / 255 - mean) / std`` per RGB channel (DenseNet)  -2.118, 2.640
==========  =====================================================  ==========================

``auto`` resolves per model (:func:`resolve`): ``demo`` -> ``0-1``, ``vgg16`` -> ``caffe``, a
model file -> ``0-255`` when its first layer (inside a nested first model too) is
``Rescaling`` or ``Normalization``, as keras.applications' EfficientNet and ConvNeXt expect,
else ``0-1``. ``caffe`` and ``torch`` need an RGB model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import UsageError

__all__ = ["AUTO", "CHOICES", "LEGACY", "preprocess_function", "preprocess_range", "resolve"]

AUTO = "auto"
#: The resolved choices, in the order ``--help`` lists them.
CHOICES = ("0-1", "0-255", "-1-1", "caffe", "torch")
#: What each kind of model was fed before ``--preprocess`` existed: a run with this choice keeps
#: the signatures (and output names) of earlier versions.
LEGACY = {"demo": "0-1", "vgg16": "caffe", "file": "0-1"}

_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _zero_one(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32) / np.float32(255.0)


def _zero_255(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32)


def _minus_one_one(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32) / np.float32(127.5) - np.float32(1.0)


def _caffe(x: np.ndarray) -> np.ndarray:
    from ..models import preprocess_caffe

    return preprocess_caffe(x)


def _torch(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float32) / np.float32(255.0) - _TORCH_MEAN) / _TORCH_STD


_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "0-1": _zero_one, "0-255": _zero_255, "-1-1": _minus_one_one, "caffe": _caffe,
    "torch": _torch,
}


def preprocess_function(choice: str) -> Callable[[np.ndarray], np.ndarray]:
    """The function of a resolved choice: pixels (N, H, W, C) on the 0-255 scale -> float32."""
    return _FUNCTIONS[choice]


def preprocess_range(choice: str) -> tuple[float, float]:
    """``(low, high)`` of a resolved choice's output (black and white over all channels)."""
    from ..models import IMAGENET_CAFFE_HIGH, IMAGENET_CAFFE_LOW, preprocessing_bounds

    if choice == "caffe":  # the original example's bounds, as vgg16 always had
        return IMAGENET_CAFFE_LOW, IMAGENET_CAFFE_HIGH
    if choice == "torch":
        return preprocessing_bounds(choice)
    return {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}[choice]


def _first_layer(model):
    """The first layer after the input, inside a nested first model too (``None`` if none)."""
    for _ in range(32):  # nested models, at most this deep
        layers = [layer for layer in getattr(model, "layers", [])
                  if type(layer).__name__ != "InputLayer"]
        if not layers:
            return None
        if not hasattr(layers[0], "layers"):
            return layers[0]
        model = layers[0]
    return None


def resolve(choice: str, kind: str, model=None, channels: int = 3) -> str:
    """The resolved choice of ``--preprocess`` for a model.

    Parameters
    ----------
    choice : str
        ``"auto"`` or one of :data:`CHOICES`.
    kind : {"demo", "vgg16", "file"}
        The kind of model.
    model : keras.Model, optional
        The model (for ``auto`` with a model file).
    channels : int
        Input channels; ``caffe`` and ``torch`` need 3.

    Raises
    ------
    UsageError
        For an unknown choice, or ``caffe``/``torch`` with a one-channel model.
    """
    if choice == AUTO:
        if kind != "file":
            return LEGACY[kind]
        first = _first_layer(model)
        return "0-255" if type(first).__name__ in ("Rescaling", "Normalization") else "0-1"
    if choice not in CHOICES:
        raise UsageError(f"unknown --preprocess {choice!r}; valid: {AUTO}, {', '.join(CHOICES)}")
    if choice in ("caffe", "torch") and channels != 3:
        raise UsageError(f"--preprocess {choice} needs an RGB model (ImageNet colour channels); "
                         f"this model has {channels} input channel(s)")
    return choice
