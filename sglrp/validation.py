"""Checks of models, inputs and targets, done before any work; each error names the bad value."""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["ModelSpec", "check_input", "selection_from_target", "check_bounds"]


_WARNED_SOFTMAX: weakref.WeakSet = weakref.WeakSet()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside sglrp."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def activation_name(layer) -> str | None:
    if isinstance(layer, tf.keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, tf.keras.layers.ReLU):
        return "relu"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def _flat_layers(model) -> list:
    out = []
    for layer in model.layers:
        out.extend(_flat_layers(layer) if isinstance(layer, tf.keras.Model) else [layer])
    return out


class ModelSpec:
    """What sglrp needs to know about a user's Keras model, checked once.

    Parameters
    ----------
    model : tf.keras.Model
        A Sequential or functional model with one output of shape (N, C): logits, or
        probabilities from a final softmax (which is stripped; a warning says so once).
    """

    def __init__(self, model) -> None:
        if not isinstance(model, tf.keras.Model):
            raise TypeError(f"model must be a tf.keras.Model, got {type(model).__name__}")
        if not model.built or model.outputs is None:
            raise ValueError(
                f"model {model.name!r} is not built or has no graph of layers (a subclassed "
                "model); give it an Input (tf.keras.Input(shape)) or build it with "
                "model.build(input_shape)"
            )
        if len(model.outputs) != 1:
            raise ValueError(
                f"model {model.name!r} has {len(model.outputs)} outputs; sglrp explains "
                "a classifier with exactly one output (build a Model(inputs, outputs[k]))"
            )
        output_shape = tuple(model.outputs[0].shape)
        if len(output_shape) != 2 or output_shape[-1] is None or output_shape[-1] < 2:
            raise ValueError(
                f"model {model.name!r} has output shape {output_shape}; expected (N, C) class "
                "scores with C >= 2"
            )
        self.model = model
        self.name = model.name
        self.n_classes = int(output_shape[-1])
        self.input_shapes = [tuple(t.shape) for t in model.inputs]
        last = model.layers[-1]
        self.ends_in_softmax = activation_name(last) == "softmax"
        if self.ends_in_softmax and model not in _WARNED_SOFTMAX:
            _WARNED_SOFTMAX.add(model)
            warnings.warn(
                f"model {model.name!r} ends in a softmax (layer {last.name!r}); sglrp analyzes "
                "its logits, the input of that softmax",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        for layer in model.layers[:-1]:
            if activation_name(layer) == "softmax":
                raise ValueError(
                    f"layer {layer.name!r} applies a softmax inside the model; only a final "
                    "softmax can be stripped"
                )

    @property
    def n_inputs(self) -> int:
        return len(self.input_shapes)

    def layers(self) -> list:
        """All layers, nested models flattened."""
        return _flat_layers(self.model)

    def require_relu(self, method: str) -> None:
        """Raise if a hidden layer has an activation other than ReLU/linear."""
        body = self.layers()[:-1] if self.ends_in_softmax else self.layers()
        for layer in body:
            name = activation_name(layer)
            if name not in (None, "relu", "linear"):
                raise ValueError(
                    f"{method} is defined for ReLU networks, but layer {layer.name!r} uses the "
                    f"activation {name!r}; use a rule without that assumption (e.g. LRPE, LRPA) "
                    "or a model with ReLU activations"
                )

    def forbid_lambda(self) -> None:
        for layer in self.layers():
            if isinstance(layer, tf.keras.layers.Lambda):
                raise ValueError(
                    f"layer {layer.name!r} is a Lambda layer, which cannot be reversed; replace it "
                    "with a built-in Keras layer"
                )


def check_bounds(low: float, high: float) -> None:
    if not (np.isfinite(low) and np.isfinite(high)) or low >= high:
        raise ValueError(
            f"the input bounds must satisfy low < high, got low={low!r}, high={high!r} "
            "(for caffe-preprocessed ImageNet images: low=-123.68, high=151.061)"
        )


def check_input(x, input_shape: Sequence, name: str = "x") -> np.ndarray:
    """Return ``x`` as float32 after checking rank, size, dtype, emptiness and finiteness."""
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]) and np.ndim(x[0]) > 0:
        x = np.stack([np.asarray(v) for v in x])
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold numbers (float or int), got dtype {x.dtype}")
    expected = "(N, " + ", ".join("?" if d is None else str(d) for d in input_shape[1:]) + ")"
    if x.ndim != len(input_shape):
        hint = "; add a batch axis: x[None]" if x.ndim == len(input_shape) - 1 else ""
        raise ValueError(
            f"{name} has shape {x.shape}, the model expects a batch of shape {expected}{hint}"
        )
    for axis, (got, want) in enumerate(zip(x.shape[1:], input_shape[1:]), start=1):
        if want is not None and got != want:
            raise ValueError(
                f"{name} has shape {x.shape}, the model expects {expected}: axis {axis} is {got}, "
                f"expected {want}"
            )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape}); pass at least one sample")
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite values (first at index {first})"
        )
    return x.astype(np.float32, copy=False)


def selection_from_target(target, n: int, n_classes: int) -> np.ndarray:
    """The selection ``t`` (n, n_classes) for a target given at call time.

    ``target`` is an int (every sample), one int per sample, or float weights of shape
    (n_classes,) or (n, n_classes) to explain several classes at once.
    """
    arr = np.asarray(target)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(
            f"target must be an int, one int per sample, or float weights of shape "
            f"({n_classes},) or ({n}, {n_classes}); got {target!r}"
        )
    if arr.dtype.kind == "f" and arr.ndim >= 1 and arr.shape[-1] == n_classes:
        weights = np.broadcast_to(arr, (n, n_classes)) if arr.ndim == 1 else arr
        if weights.shape != (n, n_classes):
            raise ValueError(
                f"target weights have shape {arr.shape}; expected ({n_classes},) or "
                f"({n}, {n_classes}) for a batch of {n}"
            )
        if not np.isfinite(weights).all():
            raise ValueError("target weights contain NaN or infinite values")
        empty = np.flatnonzero(~weights.any(axis=1))
        if empty.size:
            raise ValueError(f"target weights of sample {int(empty[0])} are all zero")
        return np.ascontiguousarray(weights, dtype=np.float32)
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
            raise TypeError(f"target must be an integer class index, got {target!r}")
        arr = arr.astype(np.int64)
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    elif arr.ndim != 1 or arr.size != n:
        raise ValueError(
            f"got {arr.size} targets for a batch of {n} samples; pass one int, or one per sample"
        )
    out_of_range = (arr < 0) | (arr >= n_classes)
    if out_of_range.any():
        raise ValueError(
            f"target {int(arr[out_of_range][0])} is out of range for a model with {n_classes} "
            f"classes (valid: 0..{n_classes - 1})"
        )
    return np.eye(n_classes, dtype=np.float32)[arr]
