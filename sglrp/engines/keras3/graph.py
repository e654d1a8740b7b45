"""The layer graph of a Keras 3 functional model, in execution order, and its forward pass.

:class:`Graph` lists the model's calls (``keras_graph.Call``: a layer, its arguments, its input
and output tensors) in Keras' order of evaluation (``keras_graph.calls``). :meth:`Graph.forward`
runs the calls on real tensors and keeps every activation, keyed by the id of the symbolic tensor
it stands for; the backward passes (``propagate.py``) read them.

The sign analysis that chooses innvestigate's fast z+ rule (inputs known to be >= 0, because
they come out of ReLUs, directly or through pooling, padding, ``Add``...) lives here too: it is a
property of the graph.
"""

from __future__ import annotations

import keras
from keras import tree

from ...keras_graph import calls, is_graph, keeps_sign
from ...validation import activation_name

__all__ = ["Graph", "activation_name", "is_relu_layer"]

layers = keras.layers


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


class Graph:
    """The calls of a functional (or Sequential) Keras 3 model, inputs first.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential model with one output. Nested models are not looked into:
        canonize the model first.
    """

    def __init__(self, model) -> None:
        if not is_graph(model):
            raise ValueError(
                f"model {model.name!r} ({type(model).__name__}) is not a built functional or "
                "Sequential model: it has no graph of layers to propagate through"
            )
        self.model = model
        self.inputs = list(model.inputs)
        if len(model.outputs) != 1:
            raise ValueError(f"model {model.name!r} has {len(model.outputs)} outputs; expected one")
        self.output = model.outputs[0]
        self.calls = calls(model)
        #: id(symbolic tensor) -> the call that computes it.
        self.producer = {id(t): c for c in self.calls for t in c.outputs}
        #: layer -> its calls in this model (a shared layer has several).
        self.calls_of: dict[int, list] = {}
        for call in self.calls:
            self.calls_of.setdefault(id(call.layer), []).append(call)
        self._sign: dict[int, bool] = {}

    # -- forward -----------------------------------------------------------------------------
    def forward(self, inputs) -> dict:
        """Run the model on ``inputs`` (real tensors); return id(symbolic tensor) -> value."""
        values = {id(t): v for t, v in zip(self.inputs, inputs)}

        def fill(v):
            return values[id(v)] if isinstance(v, keras.KerasTensor) else v

        for call in self.calls:
            args, kwargs = tree.map_structure(fill, (call.args, call.kwargs))
            out = call.layer(*args, **kwargs)
            for t, v in zip(call.outputs, tree.flatten(out)):
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
        if activation_name(layer) == "relu":  # not a ReLU with a negative slope or a threshold
            return True
        return keeps_sign(layer) and self.non_negative_inputs(layer)

    def non_negative_inputs(self, layer) -> bool:
        """Whether every input of every call of ``layer`` is >= 0."""
        return all(self.non_negative(t) for c in self.calls_of[id(layer)] for t in c.inputs)
