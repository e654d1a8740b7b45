"""The layer graph of a Keras 3 functional model, in execution order, and its forward pass.

:class:`Graph` lists the model's calls (:class:`Call`: a layer, its input and output tensors) in
topological order from the inputs to the output, the way Keras runs them
(``keras/src/ops/function.py``, ``_run_through_graph``). :meth:`Graph.forward` runs the calls on
real tensors and keeps every activation, keyed by the id of the symbolic tensor it stands for;
the backward passes (``propagate.py``) read them.

The sign analysis that chooses innvestigate's fast z+ rule (inputs known to be >= 0, because
they come out of ReLUs, directly or through pooling, padding, ``Add``...) lives here too: it is a
property of the graph.
"""

from __future__ import annotations

import keras

from ...keras_graph import keeps_sign

__all__ = ["Call", "Graph", "activation_name", "is_relu_layer"]

layers = keras.layers


class Call:
    """One call of a layer in the model: ``outputs = layer(*args, **kwargs)``.

    Attributes
    ----------
    layer : keras.layers.Layer
    node : keras Node
        The call as Keras recorded it (its arguments hold the symbolic tensors).
    inputs, outputs : list of KerasTensor
        The symbolic tensors read and written.
    """

    def __init__(self, node) -> None:
        self.node = node
        self.layer = node.operation
        self.inputs = list(node.input_tensors)
        self.outputs = list(node.outputs)

    def __repr__(self) -> str:
        return f"Call({self.layer.name!r}: {type(self.layer).__name__})"


def activation_name(layer) -> str | None:
    """Name of the activation ``layer`` applies (``None`` for a layer without one)."""
    if isinstance(layer, layers.Softmax):
        return "softmax"
    if isinstance(layer, layers.ReLU):
        return "relu"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def is_relu_layer(layer) -> bool:
    """A layer whose output is a ReLU of something.

    innvestigate's ``contains_activation(layer, "relu")``: a ``ReLU`` layer (any variant), or a
    layer whose ``activation`` is ``relu``.
    """
    if isinstance(layer, layers.ReLU):
        return True
    return getattr(layer, "activation", None) is keras.activations.relu



#: Layers innvestigate's input-layer check looks through (``checks.is_input_layer``).
_RESHAPES = (layers.Flatten, layers.Permute, layers.Reshape)


def _functional(model):
    """The functional graph behind ``model`` (a Sequential keeps one inside)."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(
                f"Sequential model {model.name!r} has no input shape yet; give it a "
                "keras.Input(shape) or call it once on data"
            )
        return graph
    if not hasattr(model, "_nodes_by_depth"):
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) is not a functional or Sequential "
            "model: it has no graph of layers to propagate through"
        )
    return model


class Graph:
    """The calls of a functional (or Sequential) Keras 3 model, inputs first.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model with one output. Nested models are not looked into:
        canonize the model first.
    """

    def __init__(self, model) -> None:
        graph = _functional(model)
        self.model = model
        self.inputs = list(graph.inputs)
        if len(graph.outputs) != 1:
            raise ValueError(f"model {model.name!r} has {len(graph.outputs)} outputs; expected one")
        self.output = graph.outputs[0]
        self.calls: list[Call] = []
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if node.operation is None or node.is_input:
                    continue
                self.calls.append(Call(node))
        #: id(symbolic tensor) -> the call that computes it.
        self.producer = {id(t): c for c in self.calls for t in c.outputs}
        #: layer -> its calls in this model (a shared layer has several).
        self.calls_of: dict[int, list[Call]] = {}
        for call in self.calls:
            self.calls_of.setdefault(id(call.layer), []).append(call)
        self._sign: dict[int, bool] = {}

    # -- forward -----------------------------------------------------------------------------
    def forward(self, inputs) -> dict:
        """Run the model on ``inputs`` (real tensors); return id(symbolic tensor) -> value."""
        values = {id(t): v for t, v in zip(self.inputs, inputs)}
        for call in self.calls:
            args, kwargs = call.node.arguments.fill_in(values)
            out = call.layer(*args, **kwargs)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for t, v in zip(call.outputs, outs):
                values[id(t)] = v
        return values

    # -- structure ---------------------------------------------------------------------------
    def is_model_input(self, tensor) -> bool:
        return id(tensor) not in self.producer

    def reads_model_inputs(self, layer) -> bool:
        """innvestigate's ``is_input_layer``: every input of ``layer`` is a model input,
        looking through Flatten, Permute and Reshape."""
        tensors = [t for c in self.calls_of[id(layer)] for t in c.inputs]
        while tensors:
            tensor = tensors.pop()
            if self.is_model_input(tensor):
                continue
            producer = self.producer[id(tensor)]
            if not isinstance(producer.layer, _RESHAPES):
                return False
            tensors.extend(producer.inputs)
        return True

    def non_negative(self, tensor) -> bool:
        """Whether ``tensor`` is >= 0 for every input: a ReLU output, or pooling, padding,
        ``Add``... of ReLU outputs (sglrp's ``_non_negative_output``)."""
        key = id(tensor)
        if key not in self._sign:
            self._sign[key] = self._non_negative(tensor)
        return self._sign[key]

    def _non_negative(self, tensor) -> bool:
        if self.is_model_input(tensor):
            return False
        layer = self.producer[id(tensor)].layer
        if isinstance(layer, layers.ReLU):
            return not layer.negative_slope and layer.threshold >= 0
        if activation_name(layer) == "relu":
            return True
        return keeps_sign(layer) and self.non_negative_inputs(layer)

    def non_negative_inputs(self, layer) -> bool:
        """Whether every input of every call of ``layer`` is >= 0."""
        return all(self.non_negative(t) for c in self.calls_of[id(layer)] for t in c.inputs)
