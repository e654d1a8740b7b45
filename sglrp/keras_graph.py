"""A Keras model's graph of layers as sglrp reads it, the same on Keras 2 and Keras 3.

Keras keeps a functional model's graph in private attributes that differ between Keras 2.14
(``node.layer``, ``node.call_args``, ``node.keras_inputs``, ``layer.inbound_nodes``) and
Keras 3 (``node.operation``, ``node.arguments``, ``node.input_tensors``,
``layer._inbound_nodes``; a Sequential model keeps its graph in a functional model of its own).
One small adapter per Keras generation reads them; the installed Keras picks one, once, at
import. Everything that walks a graph (canonization, the rules that look at a layer's inputs,
Grad-CAM's default layer) uses the names of this module only.

A layer call is a :class:`Call`: the layer, its arguments with the Keras tensors in place
(``args``, ``kwargs``), and its input and output Keras tensors as flat lists.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

__all__ = [
    "KERAS_MAJOR",
    "Call",
    "is_graph",
    "calls",
    "layer_of",
    "producers",
    "feeds",
    "nested_name",
    "softmax_op",
    "output_call",
]


def _keras_major() -> int:
    version = getattr(tf.keras, "__version__", None)
    if version is None:  # Keras 2.x inside TensorFlow <= 2.15
        import keras

        version = keras.__version__
    return int(version.split(".")[0])


#: The major version of the installed Keras (2 or 3).
KERAS_MAJOR = _keras_major()


class Call(NamedTuple):
    """One call of a layer in a model's graph."""

    key: int  # identifies the call (its Keras node) while the model lives
    layer: Any
    args: tuple
    kwargs: dict
    inputs: list  # the Keras tensors among the arguments, flattened
    outputs: list  # the output Keras tensors, flattened


class _Keras2:
    separator = "/"

    @staticmethod
    def is_graph(model) -> bool:
        return (
            isinstance(model, tf.keras.Model)
            and model.built
            and getattr(model, "_is_graph_network", False)
            and model.outputs is not None
        )

    @staticmethod
    def nodes_by_depth(model) -> dict:
        return model._nodes_by_depth

    @staticmethod
    def call(node) -> Call | None:
        if node.is_input:
            return None
        return Call(
            id(node),
            node.layer,
            tuple(node.call_args),
            dict(node.call_kwargs),
            list(node.keras_inputs),
            tf.nest.flatten(node.outputs),
        )

    @staticmethod
    def layer_of(tensor):
        return tensor._keras_history.layer

    @staticmethod
    def producers(layer) -> list:
        return [p for node in layer.inbound_nodes for p in tf.nest.flatten(node.inbound_layers)]


class _Keras3:
    separator = "."  # Keras 3 refuses "/" in names (it separates the parts of a path)

    @staticmethod
    def _graph(model):
        """The functional model that holds ``model``'s graph, or ``None``."""
        if isinstance(model, tf.keras.Sequential):
            model = getattr(model, "_functional", None)
        return model if hasattr(model, "_nodes_by_depth") else None

    @staticmethod
    def is_graph(model) -> bool:
        return (
            isinstance(model, tf.keras.Model) and model.built and _Keras3._graph(model) is not None
        )

    @staticmethod
    def nodes_by_depth(model) -> dict:
        return _Keras3._graph(model)._nodes_by_depth

    @staticmethod
    def call(node) -> Call | None:
        if node.is_input:
            return None
        return Call(
            id(node),
            node.operation,
            tuple(node.arguments.args),
            dict(node.arguments.kwargs),
            list(node.input_tensors),
            list(node.output_tensors),
        )

    @staticmethod
    def layer_of(tensor):
        return tensor._keras_history.operation

    @staticmethod
    def producers(layer) -> list:
        return [
            t._keras_history.operation for node in layer._inbound_nodes for t in node.input_tensors
        ]


_ACCESS = _Keras3 if KERAS_MAJOR >= 3 else _Keras2


def is_graph(model) -> bool:
    """Whether ``model`` is a built Sequential or functional model (a graph of layer calls)."""
    return _ACCESS.is_graph(model)


def calls(model) -> list[Call]:
    """The layer calls of ``model``'s own graph in Keras' order of evaluation.

    Input layers are left out; a nested model is one call (its layers are not entered).
    """
    by_depth = _ACCESS.nodes_by_depth(model)
    nodes = [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]
    return [call for call in map(_ACCESS.call, nodes) if call is not None]


def layer_of(tensor):
    """The layer (an ``InputLayer`` for a model input) whose call produced a Keras tensor."""
    return _ACCESS.layer_of(tensor)


def producers(layer) -> list:
    """The layers whose outputs feed ``layer``, over all its calls (none for an input layer)."""
    return _ACCESS.producers(layer)


def nested_name(model_name: str, layer_name: str) -> str:
    """The name of a nested model's layer outside it: ``"base/conv"`` (``"base.conv"`` on
    Keras 3, which refuses ``"/"`` in names)."""
    return f"{model_name}{_ACCESS.separator}{layer_name}"


def feeds(source, layer) -> bool:
    """Whether ``source``'s output reaches ``layer``, directly or through other layers."""
    seen, stack = set(), [layer]
    while stack:
        current = stack.pop()
        if current is source:
            return True
        for producer in producers(current):
            if id(producer) not in seen:
                seen.add(id(producer))
                stack.append(producer)
    return False


#: Layers whose output is >= 0 when all their inputs are: the sign analysis that picks the fast
#: z+ rule (both engines).
KEEPS_SIGN = frozenset(
    {
        "Add", "Concatenate", "Cropping2D", "Dropout", "Flatten", "GlobalAveragePooling2D",
        "GlobalMaxPooling2D", "AveragePooling2D", "MaxPooling2D", "Reshape", "UpSampling2D",
        "ZeroPadding2D",
    }
)  # fmt: skip


def keeps_sign(layer) -> bool:
    """Whether ``layer``'s output is >= 0 whenever all its inputs are (see ``KEEPS_SIGN``)."""
    return any(cls.__name__ in KEEPS_SIGN for cls in type(layer).__mro__)


#: Keras 2's ``TFOpLambda`` symbols of a softmax written as a TensorFlow function.
_SOFTMAX_SYMBOLS = {
    "nn.softmax": "softmax", "math.softmax": "softmax",
    "nn.log_softmax": "log_softmax", "math.log_softmax": "log_softmax",
}  # fmt: skip


def softmax_op(layer) -> str | None:
    """``"softmax"`` or ``"log_softmax"`` for a softmax written as an operation, else ``None``.

    Keras 3: ``keras.ops.softmax`` / ``log_softmax`` (also ``keras.activations.softmax``), an
    operation that is no layer; Keras 2: ``tf.nn.softmax``, ``tf.math.softmax`` and their
    ``log_softmax`` (a ``TFOpLambda`` layer). The ``Softmax`` layer is not an operation here.
    """
    kind = type(layer).__name__
    if kind in ("Softmax", "LogSoftmax") and not isinstance(layer, tf.keras.layers.Layer):
        return "softmax" if kind == "Softmax" else "log_softmax"
    if kind == "TFOpLambda":
        return _SOFTMAX_SYMBOLS.get(getattr(layer, "symbol", None))
    return None


def output_call(model) -> Call | None:
    """The call (of a layer or an operation) that computes ``model``'s only output."""
    if not is_graph(model) or len(model.outputs) != 1:
        return None
    out = id(model.outputs[0])
    return next((c for c in calls(model) if any(id(t) == out for t in c.outputs)), None)
