"""The layer graph of a Keras 3 functional model, in execution order, and its forward pass.

:class:`Graph` lists the model's calls (``keras_graph.Call``: a layer, its arguments, its input
and output tensors) in Keras' order of evaluation (``keras_graph.calls``). :meth:`Graph.forward`
runs the calls on real tensors and keeps every activation, keyed by the id of the symbolic tensor
it stands for; the backward passes (``propagate.py``) read them.

The sign analysis that chooses innvestigate's fast z+ rule (inputs known to be >= 0, because
they come out of ReLUs, directly or through pooling, padding, ``Add``...) lives here too: it is a
property of the graph; so do the multiplicative gates (squeeze-and-excitation: a signal times a
sigmoid of a function of it), the calls that only compute gates, and the preprocessing chain
between a model input and the first kernel layer (``Rescaling``, ``Normalization``, padding).
"""

from __future__ import annotations

import keras
from keras import tree

from ...keras_graph import calls, is_graph, keeps_sign
from ...validation import activation_name

__all__ = [
    "Graph",
    "activation_name",
    "is_relu_layer",
    "is_operation",
    "is_op",
    "is_layer_scale",
    "is_scaled_add",
    "IDENTITY_ACTIVATIONS",
    "GATE_ACTIVATIONS",
]

layers = keras.layers

#: Element-wise activations other than the ReLU, passed through by the identity rule (their
#: names as ``activation_name`` gives them: swish is ``silu``, hard swish ``hard_silu``).
IDENTITY_ACTIVATIONS = frozenset({"silu", "gelu", "hard_silu", "elu", "leaky_relu", "tanh"})
#: Activations whose output is in [0, 1]: a gate.
GATE_ACTIVATIONS = frozenset({"sigmoid", "hard_sigmoid"})


def is_operation(op) -> bool:
    """A ``keras.ops`` call in a functional graph (``x + y``, ``x * 0.5``), not a layer."""
    return not isinstance(op, layers.Layer)


def is_op(op, name: str) -> bool:
    """An operation of ``keras.ops.numpy`` named ``name`` ("Add", "Multiply")."""
    return is_operation(op) and type(op).__name__ == name


def is_layer_scale(layer) -> bool:
    """ConvNeXt's ``LayerScale`` (``x * gamma`` per channel) of ``keras.applications``."""
    cls = type(layer)
    return cls.__name__ == "LayerScale" and cls.__module__.endswith("applications.convnext")


def is_scaled_add(layer) -> bool:
    """InceptionResNetV2's ``CustomScaleLayer``: ``inputs[0] + inputs[1] * scale``."""
    cls = type(layer)
    return cls.__name__ == "CustomScaleLayer" and cls.__module__.endswith(
        "applications.inception_resnet_v2"
    )


#: Layers between a model input and the first kernel layer whose bounds are mapped through.
_AFFINE_INPUT = (layers.Rescaling, layers.Normalization)
_PADDING = (layers.ZeroPadding1D, layers.ZeroPadding2D)


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
        #: id(tensor) -> [(call, position of the tensor among its inputs), ...]
        self.consumers: dict[int, list] = {}
        for call in self.calls:
            for i, t in enumerate(call.inputs):
                self.consumers.setdefault(id(t), []).append((call, i))
        #: call key -> index of its gate input, for the multiplicative gates.
        self._gates = {c.key: g for c in self.calls if (g := self._gate(c)) is not None}
        self._gate_only = self._gate_only_calls()
        #: The values of the latest forward pass (inside the compiled function).
        self.values: dict = {}

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
        self.values = values
        return values

    # -- structure ---------------------------------------------------------------------------
    def is_model_input(self, tensor) -> bool:
        return id(tensor) not in self.producer

    def reads_model_inputs(self, layer) -> bool:
        """innvestigate's ``is_input_layer``: every input of ``layer`` is a model input,
        looking through Flatten, Permute and Reshape - and, where Keras 2 models have no such
        layers, through a preprocessing chain (see :meth:`input_chain`)."""
        return all(self.input_chain(c) is not None for c in self.calls_of[id(layer)])

    def input_chain(self, call):
        """The calls from a model input to ``call``'s one input, in forward order, or ``None``.

        The chain may hold Flatten, Permute and Reshape (innvestigate's ``is_input_layer``
        looks through them), ``Rescaling`` and ``Normalization`` (a per-channel affine
        preprocessing inside the model), and zero padding after one of these two (padding
        right at the input is merged into the convolution by ``canonize``, as on Keras 2).
        """
        if len(call.inputs) != 1:
            return None
        chain, tensor = [], call.inputs[0]
        while not self.is_model_input(tensor):
            producer = self.producer[id(tensor)]
            if not isinstance(producer.layer, (*_RESHAPES, *_AFFINE_INPUT, *_PADDING)):
                return None
            if len(producer.inputs) != 1:
                return None
            chain.insert(0, producer)
            tensor = producer.inputs[0]
        for i, c in enumerate(chain):
            if isinstance(c.layer, _PADDING) and not any(
                isinstance(b.layer, _AFFINE_INPUT) for b in chain[:i]
            ):
                return None
        return chain

    # -- multiplicative gates ----------------------------------------------------------------
    def _is_gate(self, tensor) -> bool:
        """A tensor in [0, 1] by construction: a sigmoid or hard sigmoid, or ``ReLU(max_value=m)``
        times a constant ``c`` with ``0 < c m <= 1`` (MobileNetV3's ``ReLU6(x + 3) / 6``)."""
        if self.is_model_input(tensor):
            return False
        call = self.producer[id(tensor)]
        if activation_name(call.layer) in GATE_ACTIVATIONS:
            return True
        if is_op(call.layer, "Multiply") and len(call.inputs) == 1:
            consts = [a for a in call.args if not isinstance(a, keras.KerasTensor)]
            (inner,) = call.inputs
            if len(consts) != 1 or not isinstance(consts[0], (int, float)):
                return False
            if self.is_model_input(inner):
                return False
            relu = self.producer[id(inner)].layer
            return (
                isinstance(relu, layers.ReLU)
                and activation_name(relu) == "relu"
                and relu.max_value is not None
                and 0 < float(consts[0]) * float(relu.max_value) <= 1 + 1e-9
            )
        return False

    def _gate(self, call):
        """The index of the gate among the two inputs of a ``Multiply``, or ``None``.

        A multiplicative gate multiplies a signal by a gate (:meth:`_is_gate`) that the signal
        feeds (squeeze-and-excitation: ``x * sigmoid(f(x))``).
        """
        layer = call.layer
        if not (isinstance(layer, layers.Multiply) or is_op(layer, "Multiply")):
            return None
        if len(call.inputs) != 2 or len(call.outputs) != 1:
            return None
        gates = [i for i, t in enumerate(call.inputs) if self._is_gate(t)]
        if len(gates) != 1:
            return None
        (gate,) = gates
        signal, g = call.inputs[1 - gate], call.inputs[gate]
        if tuple(signal.shape) != tuple(call.outputs[0].shape):
            return None
        return gate if self.reaches(signal, g) else None

    def reaches(self, source, tensor) -> bool:
        """Whether the tensor ``source`` is ``tensor`` or one of its ancestors."""
        seen, stack = set(), [tensor]
        while stack:
            t = stack.pop()
            if t is source:
                return True
            if id(t) in seen or self.is_model_input(t):
                continue
            seen.add(id(t))
            stack.extend(self.producer[id(t)].inputs)
        return False

    def gate_index(self, call):
        """The index of the gate input of a multiplicative gate's call, or ``None``."""
        return self._gates.get(call.key)

    def _gate_only_calls(self) -> set:
        """Keys of the calls whose outputs reach the model output only through gate inputs."""
        out: set = set()
        for call in reversed(self.calls):
            uses = [u for t in call.outputs for u in self.consumers.get(id(t), [])]
            if any(t is self.output for t in call.outputs) or not uses:
                continue
            if all(c.key in out or self._gates.get(c.key) == i for c, i in uses):
                out.add(call.key)
        return out

    def gate_only(self, call) -> bool:
        """Whether ``call`` only computes gates (it gets no relevance under signal-take-all)."""
        return call.key in self._gate_only

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
        call = self.producer[id(tensor)]
        layer = call.layer
        if activation_name(layer) == "relu":  # not a ReLU with a negative slope or a threshold
            return True
        if is_operation(layer):  # x + y of tensors >= 0 (not x + c: c may be negative)
            return (
                is_op(layer, "Add")
                and len(call.inputs) == len(call.args) == 2
                and all(self.non_negative(t) for t in call.inputs)
            )
        return keeps_sign(layer) and self.non_negative_inputs(layer)

    def non_negative_inputs(self, layer) -> bool:
        """Whether every input of every call of ``layer`` is >= 0."""
        return all(self.non_negative(t) for c in self.calls_of[id(layer)] for t in c.inputs)
