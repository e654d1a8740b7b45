"""Checks of models, inputs and targets, done before any work; each error names the bad value."""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from . import keras_graph
from .keras_graph import KERAS_MAJOR

__all__ = [
    "ModelSpec",
    "Support",
    "ANY_NETWORK",
    "RELU_ACTIVATIONS",
    "RELU_NETWORKS",
    "LRP_NETWORKS",
    "IDENTITY_ACTIVATIONS",
    "GATE_ACTIVATIONS",
    "KERAS3_LAYERS",
    "check_input",
    "check_number",
    "finite_number",
    "selection_from_target",
    "check_bounds",
    "weights_fingerprint",
    "check_execution_mode",
]


_WARNED_SOFTMAX: weakref.WeakSet = weakref.WeakSet()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside sglrp."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def activation_name(layer) -> str | None:
    """The activation a layer applies: ``"relu"``, ``"softmax"``, ``"linear"``, ... or ``None``.

    A ``ReLU`` layer with a negative slope or a threshold is not a ReLU for the rules:
    its name says so (``"relu(negative_slope=0.1)"``); ``max_value`` (ReLU6) is kept a ReLU.
    """
    if isinstance(layer, tf.keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, tf.keras.layers.ReLU):
        slope, threshold = float(layer.negative_slope), float(layer.threshold)
        if slope or threshold:
            return f"relu(negative_slope={slope:g}, threshold={threshold:g})"
        return "relu"
    names = _class_names(layer) & set(_ACTIVATION_LAYERS)
    if names:
        return _ACTIVATION_LAYERS[names.pop()]
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


#: Layers that are an activation, and its name.
_ACTIVATION_LAYERS = {
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
    "PReLU": "prelu",
    "ThresholdedReLU": "thresholded_relu",
}


def _flat_layers(model) -> list:
    out = []
    for layer in model.layers:
        out.extend(_flat_layers(layer) if isinstance(layer, tf.keras.Model) else [layer])
    return out


def _class_names(layer) -> set[str]:
    return {cls.__name__ for cls in type(layer).__mro__}


class ModelSpec:
    """What sglrp needs to know about a user's Keras model, checked once.

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model with one output of shape (N, C): logits, or
        probabilities from a final softmax (which is stripped; a warning says so once), and
        float inputs.
    original : keras.Model, optional
        The user's model when ``model`` is its canonized copy (the softmax warning is given
        once per user model).
    """

    def __init__(self, model, original=None) -> None:
        if not isinstance(model, tf.keras.Model):
            raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
        if not model.built or not getattr(model, "outputs", None):
            raise ValueError(
                f"model {model.name!r} is not built or has no graph of layers (a subclassed "
                "model); give it an Input (keras.Input(shape)) or build it with "
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
        for x in model.inputs:
            dtype = tf.as_dtype(x.dtype)
            if not dtype.is_floating:
                raise ValueError(
                    f"model input {x.name!r} has dtype {dtype.name}; relevance and gradients "
                    "exist for float inputs only. Explain the model from its first float "
                    "tensor on: apply the Rescaling / Embedding outside and build "
                    "keras.Model(float_input, outputs)"
                )
        producer = keras_graph.output_call(model)
        if producer is not None and isinstance(producer.layer, tf.keras.layers.Lambda):
            raise ValueError(
                f"the last layer {producer.layer.name!r} of model {model.name!r} is a Lambda "
                "layer, whose function sglrp cannot inspect (it may apply a softmax); end the "
                "model in its logits or a softmax (a Dense, Activation or Softmax layer), e.g. "
                "keras.Model(inputs, <the Lambda's input>)"
            )
        self.model = model
        self.name = model.name
        self.n_classes = int(output_shape[-1])
        self.input_shapes = [tuple(t.shape) for t in model.inputs]
        last = model.layers[-1]
        final = activation_name(last)
        self.ends_in_softmax = final == "softmax"
        if final not in (None, "linear", "softmax"):
            raise ValueError(
                f"the last layer {last.name!r} of model {model.name!r} applies {final!r}; sglrp "
                "explains a softmax classifier's logits: end the model in a linear layer "
                "(logits) or a softmax"
            )
        warn_about = original if original is not None else model
        stripped = keras_graph.output_call(original) if original is not None else None
        kind = keras_graph.softmax_op(stripped.layer) if stripped is not None else None
        if kind is not None and original is not model:  # canonize dropped it
            where = f"operation {stripped.layer.name!r}"
        elif self.ends_in_softmax:
            kind, where = "softmax", f"layer {last.name!r}"
        if kind is not None and warn_about not in _WARNED_SOFTMAX:
            _WARNED_SOFTMAX.add(warn_about)
            warnings.warn(
                f"model {model.name!r} ends in a {kind} ({where}); sglrp analyzes "
                f"its logits, the input of that {kind}",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        for layer in self.layers()[:-1]:
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

    def body(self) -> list:
        """The layers whose activations the rules see (a final softmax excluded)."""
        layers = self.layers()
        return layers[:-1] if self.ends_in_softmax else layers


#: Layers that only move, copy, pad, drop or pool values.
_STRUCTURAL = (
    "InputLayer", "Flatten", "Reshape", "Permute", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout", "GaussianDropout", "GaussianNoise",
    "ActivityRegularization", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
    "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "Concatenate", "Add",
)  # fmt: skip
#: Linear layers with a kernel, and inference-mode batch normalization (canonized to one).
_KERNEL = (
    "Dense", "Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
    "DepthwiseConv2D", "BatchNormalization",
)  # fmt: skip


#: Element-wise activations other than the ReLU that the LRP rules of the Keras 3 engine pass
#: relevance through unchanged (the identity rule), as ``activation_name`` names them (swish is
#: ``silu`` in Keras 3, ``swish`` in Keras 2; hard swish ``hard_silu``).
IDENTITY_ACTIVATIONS = ("silu", "swish", "gelu", "hard_silu", "elu", "leaky_relu", "tanh")
#: Activations of multiplicative gates (squeeze-and-excitation); the Keras 3 engine refuses
#: them anywhere but in a gate.
GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
#: Layers with a rule in the Keras 3 engine only: multiplicative gates, layer normalization,
#: per-channel rescaling (the shift is a bias), ConvNeXt's layer scale, InceptionResNetV2's
#: scaled residual, and a ViT's multi-head attention, class token and position embedding
#: (``sglrp/engines/keras3/attention.py``).
KERAS3_LAYERS = (
    "Multiply", "LayerNormalization", "Rescaling", "Normalization", "LayerScale",
    "CustomScaleLayer", "MultiHeadAttention", "ClassToken", "PositionEmbedding",
)  # fmt: skip


class Support:
    """What a method is defined for, checked on the model at construction.

    Parameters
    ----------
    activations : set of str, optional
        The activations hidden layers may apply (see ``activation_name``); ``None``: any.
    layers : tuple of str, optional
        The layer classes the method's rules are defined for; ``None``: any.
    what : str
        The kind of network, for the message ("ReLU networks").
    instead : str
        What else to do, for the message (after the methods defined for the model).
    keras3_activations, keras3_layers : tuple of str
        Activations and layers the method has rules for in the Keras 3 engine only; the
        innvestigate engine refuses them with a message that says so.
    """

    def __init__(
        self, activations=None, layers=None, what="", instead="", keras3_activations=(),
        keras3_layers=(),
    ) -> None:  # fmt: skip
        self.activations = None if activations is None else frozenset(activations)
        self.layers = None if layers is None else frozenset(layers)
        self.keras3_activations = frozenset(keras3_activations)
        self.keras3_layers = frozenset(keras3_layers)
        self.what, self.instead = what, instead

    def _problem(self, layer) -> tuple | None:
        """``None``, or why the method is not defined at ``layer``: ``(kind, detail)``."""
        keras3 = KERAS_MAJOR >= 3
        names = _class_names(layer)
        if self.layers is not None and not (names & self.layers):
            if names & self.keras3_layers:
                return None if keras3 else ("keras3", "")
            return ("layer", "")
        name = activation_name(layer)
        if self.activations is not None and name not in (None, *self.activations):
            if name in self.keras3_activations:
                return None if keras3 else ("keras3", name)
            return ("activation", name)
        return None

    def accepts(self, spec: ModelSpec) -> bool:
        """Whether every layer of ``spec``'s model is one the method is defined for."""
        return all(self._problem(layer) is None for layer in spec.body())

    def check(self, spec: ModelSpec, method: str) -> None:
        """Raise a ValueError naming the first layer ``method`` is not defined for.

        The message suggests the registered methods that accept the model.
        """
        for layer in spec.body():
            problem = self._problem(layer)
            if problem is None:
                continue
            kind, name = type(layer).__name__, problem[1]
            what = f"layer {layer.name!r} ({kind})" + (f" applying {name!r}" if name else "")
            if problem[0] == "keras3":
                gate = " as the gate of a product" if name in GATE_ACTIVATIONS else ""
                raise ValueError(
                    f"{method} has a rule for {what}{gate} in the Keras 3 engine only "
                    "(TensorFlow >= 2.16 with Keras 3: pip install sglrp next to it); this is "
                    f"the innvestigate engine (Keras 2). {_alternatives(spec)}"
                )
            if problem[0] == "layer":
                raise ValueError(
                    f"{method} is defined for {self.what}; layer {layer.name!r} ({kind}) has no "
                    f"rule there. {_alternatives(spec)}{self.instead}"
                )
            raise ValueError(
                f"{method} is defined for {self.what}, but layer {layer.name!r} ({kind}) "
                f"applies {name!r}. {_alternatives(spec)}{self.instead}"
            )


def _alternatives(spec: ModelSpec) -> str:
    """The registered methods defined for ``spec``'s model, as a sentence."""
    from .registry import METHODS

    names = [
        name
        for name, cls in sorted(METHODS.items())
        if spec.n_inputs >= getattr(cls, "min_inputs", 1) and cls.supports.accepts(spec)
    ]
    if not names:
        return "No method of sglrp is defined for this model. "
    return f"Methods defined for this model: {', '.join(names)}. "


ANY_NETWORK = Support()
#: Guided backprop: its definition changes the ReLU's backward pass.
RELU_ACTIVATIONS = Support(
    {"relu", "linear"},
    None,
    "ReLU networks (its backward pass is defined by the ReLU's)",
    "Or use a model with ReLU activations.",
)
#: Deep Taylor decomposition and z+: ReLU networks of kernel, pooling and merge layers; on the
#: Keras 3 engine also the identity activations, gates, layer norm and rescaling layers.
RELU_NETWORKS = Support(
    {"relu", "linear"},
    (*_STRUCTURAL, *_KERNEL, "Activation", "ReLU"),
    "ReLU networks of dense, convolution, pooling and merge layers (Keras 3 engine: also "
    "swish, GELU, hard swish, ELU, leaky ReLU, tanh, squeeze-and-excitation gates, layer "
    "normalization, rescaling layers, multi-head attention and a ViT's class token and position "
    "embedding)",
    "Or use a model with plain ReLU activations.",
    keras3_activations=(*IDENTITY_ACTIVATIONS, *GATE_ACTIVATIONS),
    keras3_layers=(*KERAS3_LAYERS, "LeakyReLU", "ELU"),
)
#: LRP-epsilon and the presets: innvestigate's convolutional-network layers, any activation;
#: on the Keras 3 engine also gates, layer norm and rescaling layers.
LRP_NETWORKS = Support(
    None,
    (*_STRUCTURAL, *_KERNEL, "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU",
     "ThresholdedReLU", "Softmax"),
    "convolutional and dense networks (innvestigate's LRP layers; Keras 3 engine: also "
    "squeeze-and-excitation gates, layer normalization, rescaling layers, multi-head attention "
    "and a ViT's class token and position embedding)",
    "",
    keras3_layers=KERAS3_LAYERS,
)  # fmt: skip


def check_number(name: str, value) -> float:
    """``value`` as a float, or a TypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def finite_number(name: str, value, minimum=None, above=None) -> float:
    """``value`` as a finite float (``>= minimum``, ``> above``), or an error naming ``name``."""
    value = check_number(name, value)
    ok = bool(np.isfinite(value))
    ok = ok and (minimum is None or value >= minimum) and (above is None or value > above)
    if not ok:
        bound = f" >= {minimum}" if minimum is not None else ""
        bound = f" > {above}" if above is not None else bound
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return value


def check_bounds(low, high) -> None:
    low, high = check_number("low", low), check_number("high", high)
    if not (np.isfinite(low) and np.isfinite(high)) or low >= high:
        raise ValueError(
            f"the input bounds must satisfy low < high, both finite, got low={low!r}, "
            f"high={high!r} (for caffe-preprocessed ImageNet images: low=-123.68, high=151.061)"
        )


def check_execution_mode() -> None:
    """Keras 3 runs eagerly only: in a process where eager execution was turned off
    (``tf.compat.v1.disable_eager_execution()``), raise a one-line RuntimeError saying so."""
    from .keras_graph import KERAS_MAJOR

    if KERAS_MAJOR >= 3 and not tf.executing_eagerly():
        raise RuntimeError(
            "Keras 3 needs eager execution, and this process turned it off "
            "(tf.compat.v1.disable_eager_execution()); sglrp's Keras 3 engine cannot run here: "
            "leave eager execution on (the innvestigate engine, TensorFlow 2.14, works either way)"
        )


def weights_fingerprint(model) -> tuple:
    """A cheap fingerprint of ``model``'s weights that changes whenever a weight does.

    Per variable: its shape and integer sums of the bit patterns of its values and of their
    squares (exact and order-free: the same values give the same numbers whatever the
    threads), in one compiled call per model. About 0.1 s for VGG16's 138 M weights on 2 CPU
    cores, a few milliseconds for a small CNN (``benchmarks/RESULTS.md``).
    """
    variables = list(model.weights)
    if not tf.executing_eagerly():  # a graph-mode (TF1-style) process: the values via Keras
        values = tf.keras.backend.batch_get_value(variables) if variables else []
        return tuple((tuple(v.shape), *_bit_sums_numpy(v)) for v in values)
    cached = _FINGERPRINTS.get(model)
    if cached is None or len(cached[0]) != len(variables):
        cached = (variables, tf.function(lambda: [_bit_sums(v) for v in variables]))
        _FINGERPRINTS[model] = cached
    sums = cached[1]()
    return tuple((tuple(v.shape), *map(int, s.numpy())) for v, s in zip(variables, sums))


#: model -> (its variables, the compiled fingerprint of their values).
_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _bit_sums(variable):
    x = tf.reshape(tf.convert_to_tensor(variable), [-1])
    bits = tf.bitcast(x, {2: tf.int16, 4: tf.int32, 8: tf.int64}[x.dtype.size])
    if bits.dtype == tf.int16:
        bits = tf.cast(bits, tf.int32)
    # Integer sums wrap around: exact, and equal whatever the order of summation.
    return tf.cast(tf.stack([tf.reduce_sum(bits), tf.reduce_sum(bits * bits)]), tf.int64)


def _bit_sums_numpy(values: np.ndarray) -> tuple[int, int]:
    """:func:`_bit_sums` in NumPy (the same integers, wrapping around alike)."""
    x = np.ascontiguousarray(values).reshape(-1)
    bits = x.view({2: np.int16, 4: np.int32, 8: np.int64}[x.dtype.itemsize])
    wide = np.int64 if bits.dtype == np.int64 else np.int32
    bits = bits.astype(wide)
    return int(bits.sum(dtype=wide)), int((bits * bits).sum(dtype=wide))


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
    # Checked after the cast: a float64 value beyond the float32 range becomes infinite.
    with np.errstate(over="ignore"):
        x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite values (first at index {first}) "
            "once cast to float32, the type the analysis computes in"
        )
    return x


def selection_from_target(target, n: int, n_classes: int, weights: bool = False) -> np.ndarray:
    """The selection ``t`` (n, n_classes) for a target given at call time.

    ``target`` is an int (every sample), a 1-D sequence of ints (one per sample), or a 2-D
    float array (n, n_classes) of class weights. Ids are integers only, so what a target means
    never depends on the batch size. With ``weights=True`` ``target`` is ``class_weights``:
    (n_classes,) for every sample or (n, n_classes).
    """
    arr = np.asarray(target)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(
            f"target must be an int, one int per sample, or a float (N, C) array of class "
            f"weights; got {target!r}"
        )
    if weights:
        if arr.ndim == 1 and arr.shape[0] == n_classes:
            arr = np.broadcast_to(arr, (n, n_classes))
        if arr.shape != (n, n_classes):
            raise ValueError(
                f"class_weights have shape {arr.shape}; expected ({n_classes},) or "
                f"({n}, {n_classes}) for a batch of {n}"
            )
        return _weights(arr)
    if arr.dtype.kind == "f":
        if arr.ndim == 2:
            if arr.shape != (n, n_classes):
                raise ValueError(
                    f"target weights have shape {arr.shape}; expected ({n}, {n_classes}): one "
                    f"row of {n_classes} class weights per sample"
                )
            return _weights(arr)
        raise TypeError(
            f"target must hold integer class ids (got floats of shape {arr.shape}: {target!r}); "
            "weights are a 2-D (N, C) float array, or class_weights= for one (C,) row"
        )
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    elif arr.ndim == 2 and arr.shape[0] == n:
        raise ValueError(
            f"target has shape {arr.shape}; pass one class id per sample as a 1-D sequence "
            "(shape (N,)); to explain several classes per sample, pass class_weights= (an "
            "N-hot (N, C) float array)"
        )
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


def _weights(weights: np.ndarray) -> np.ndarray:
    if weights.dtype.kind not in "iuf" or weights.dtype.kind == "b":
        raise TypeError(f"class weights must be numbers, got dtype {weights.dtype}")
    if not np.isfinite(weights).all():
        raise ValueError("class weights contain NaN or infinite values")
    empty = np.flatnonzero(~weights.any(axis=1))
    if empty.size:
        raise ValueError(f"class weights of sample {int(empty[0])} are all zero")
    return np.ascontiguousarray(weights, dtype=np.float32)
