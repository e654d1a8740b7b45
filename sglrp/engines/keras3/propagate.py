"""Compiled backward passes: one forward pass, one backward pass per head, one ``tf.function``.

:class:`Propagation` assigns a rule (``rules.py``) to every layer call of a Keras 3 model from a
rule set, and compiles the whole analysis - forward pass, heads, backward passes - into one
``tf.function`` whose inputs are the model's inputs and the selection ``t`` (N, C). The batch
axis is ``None`` in its signature: neither a new target nor a new batch size traces it again.

The rule sets are data: ordered lists of (condition, rule) pairs, the first condition a call
meets picks its rule, as innvestigate's conditional reverse mappings and its presets
(``LRPSequentialPresetA``) do.

Every LRP rule set also has rules for the layers innvestigate has none for (``_modern``): the
identity rule at element-wise activations other than the ReLU and at ``Rescaling``,
``Normalization`` and ``LayerScale``; signal-take-all at multiplicative gates (and no relevance
into what only computes a gate); ``LayerNormalization`` with its standard deviation fixed;
the z-rule at a scaled residual and at ``x + y`` written with ``keras.ops``. Where a model has
none of these layers, the maps are innvestigate's.

=======================  ====================================================================
rule set                 innvestigate analyzer it reproduces (as sglrp configures it)
=======================  ====================================================================
``bounded_deep_taylor``  BoundedDeepTaylor, with sglrp's z-rule at Add / average pooling and the
                         fast z+ rule on kernel layers fed by non-negative outputs
``preset_a_flat``        LRPSequentialPresetAFlat (epsilon=0.1 dense, alpha1-beta0 conv, flat
                         at the input layer)
``preset_b_flat``        LRPSequentialPresetBFlat (alpha2-beta1 conv)
``epsilon``              LRPEpsilon (epsilon=1e-7)
``epsilon_plus_box``     sglrp's EpsilonPlusBox (innvestigate's LRP with epsilon on dense
                         layers, alpha1-beta0 without bias on convolutions, z^B at the input)
``z_plus``               LRPZPlus (alpha1-beta0 without bias) with sglrp's w+ input rule
``guided_backprop``      GuidedBackprop
``gradient``             Gradient
=======================  ====================================================================
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from . import rules as R
from .attention import ATTENTION_LAYERS, Attention, ClassTokenRule, PositionRule, attention_rules
from .graph import (
    IDENTITY_ACTIVATIONS,
    Graph,
    activation_name,
    is_layer_scale,
    is_op,
    is_operation,
    is_relu_layer,
    is_scaled_add,
)
from .kernels import KERNEL_LAYERS, KernelMap, is_kernel_layer

__all__ = ["Propagation", "RULE_SETS"]

layers = keras.layers

#: Layers without weights that every rule set passes relevance through with their gradient.
_GRADIENT_LAYERS = (
    layers.Flatten,
    layers.Reshape,
    layers.Permute,
    layers.Dropout,
    layers.SpatialDropout1D,
    layers.SpatialDropout2D,
    layers.GaussianNoise,
    layers.GaussianDropout,
    layers.ZeroPadding1D,
    layers.ZeroPadding2D,
    layers.Cropping1D,
    layers.Cropping2D,
    layers.UpSampling1D,
    layers.UpSampling2D,
    layers.MaxPooling1D,
    layers.MaxPooling2D,
    layers.GlobalMaxPooling1D,
    layers.GlobalMaxPooling2D,
    layers.Concatenate,
)
_AVERAGE_POOLING = (
    layers.AveragePooling1D,
    layers.AveragePooling2D,
    layers.GlobalAveragePooling1D,
    layers.GlobalAveragePooling2D,
)
_CONV = (layers.Conv1D, layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)
#: Activation layers other than the ReLU: the rule sets of innvestigate's LRP pass them with
#: their gradient (as innvestigate does); Deep Taylor, z+ and epsilon-plus-box pass LeakyReLU
#: and ELU with the identity rule and refuse PReLU.
_OTHER_ACTIVATIONS = (layers.LeakyReLU, layers.ELU, layers.PReLU)
#: Layers passed through unchanged: a per-channel scale and shift (the shift is a bias).
_RESCALING = (layers.Rescaling, layers.Normalization)
_SUPPORTED = (
    *KERNEL_LAYERS,
    *_OTHER_ACTIVATIONS,
    *_GRADIENT_LAYERS,
    *_AVERAGE_POOLING,
    *_RESCALING,
    layers.Add,
    layers.ReLU,
    layers.Activation,
    layers.Multiply,
    layers.LayerNormalization,
    *ATTENTION_LAYERS,
)
#: What each rule set's activations may be: ReLU only, ReLU or an identity activation, any.
_RELU_NAMES = frozenset({None, "relu", "linear"})
_ACTIVATIONS = {"relu": _RELU_NAMES, "identity": _RELU_NAMES | IDENTITY_ACTIVATIONS, None: None}


# -- conditions ------------------------------------------------------------------------------
def _kernel(call, graph) -> bool:
    return is_kernel_layer(call.layer)


def _input_kernel(call, graph) -> bool:
    """A kernel layer reading the model's inputs (innvestigate's ``is_input_layer``)."""
    return is_kernel_layer(call.layer) and graph.reads_model_inputs(call.layer)


def _kernel_on_non_negative(call, graph) -> bool:
    return is_kernel_layer(call.layer) and graph.non_negative_inputs(call.layer)


def _kernel_with_activation(call, graph) -> bool:
    return is_kernel_layer(call.layer) and hasattr(call.layer, "activation")


def _is(*classes):
    def condition(call, graph) -> bool:
        return isinstance(call.layer, classes)

    condition.__name__ = "is_" + "_".join(c.__name__ for c in classes)
    return condition


def _relu_only(call, graph) -> bool:
    """A layer without kernel whose activation, if any, is ReLU or linear."""
    return not is_kernel_layer(call.layer) and activation_name(call.layer) in (
        None,
        "relu",
        "linear",
    )


def _relu(call, graph) -> bool:
    return is_relu_layer(call.layer)


def _always(call, graph) -> bool:
    return True


def _gate_only(call, graph) -> bool:
    return graph.gate_only(call)


def _gate(call, graph) -> bool:
    return graph.gate_index(call) is not None


def _scaled_add(call, graph) -> bool:
    return is_scaled_add(call.layer)


def _tensor_add(call, graph) -> bool:
    """``x + y`` of tensors written with ``keras.ops`` (ConvNeXt's residual)."""
    return is_op(call.layer, "Add") and len(call.inputs) == len(call.args) == 2


def _rescaling(call, graph) -> bool:
    return isinstance(call.layer, _RESCALING) or is_layer_scale(call.layer)


def _identity_activation(call, graph) -> bool:
    """An activation layer applying swish, GELU, hard swish, ELU, leaky ReLU or tanh."""
    return not is_kernel_layer(call.layer) and activation_name(call.layer) in IDENTITY_ACTIVATIONS


def _modern(layer_norm) -> list:
    """The rules of the layers innvestigate has none for, ``layer_norm`` the LayerNorm rule."""
    return [
        (_gate_only, R.NoRelevance),
        (_gate, R.SignalTakeAll),
        (_scaled_add, R.ScaledAdd),
        (_tensor_add, R.ZRule),
        (_is(layers.LayerNormalization), layer_norm),
        (_rescaling, R.Identity),
    ]


#: sglrp's rules for the layers innvestigate has none for.
_SGLRP_RULES = (R.Identity, R.LayerNorm, R.SignalTakeAll, R.ScaledAdd, R.NoRelevance,
                Attention, ClassTokenRule, PositionRule)  # fmt: skip


def _beyond_innvestigate(call, rule, graph, relu_only: bool) -> bool:
    """A call innvestigate has no rule for (for ``relu_only`` rule sets, as Deep Taylor, an
    activation other than the ReLU too): in such a model the kernel layers pass on the
    relevance of units without an activating contribution (``pass_dropped``); elsewhere the
    maps stay innvestigate's."""
    return (
        isinstance(rule, _SGLRP_RULES)
        or _tensor_add(call, graph)
        or (relu_only and activation_name(call.layer) in IDENTITY_ACTIVATIONS)
    )


# -- rule sets -------------------------------------------------------------------------------
def _relu_or_gradient(call, graph):
    if isinstance(call.layer, (layers.ReLU, layers.Activation)):
        return R.ReluMask(call, graph)
    return R.Gradient(call, graph)


def _lrp_default(call, graph):
    """innvestigate's LRP default: ``Activation`` layers pass relevance on, others gradient."""
    if isinstance(call.layer, layers.Activation):
        return R.PassThrough(call, graph)
    return _relu_or_gradient(call, graph)


def bounded_deep_taylor(low: float = -1.0, high: float = 1.0) -> list:
    """innvestigate's DeepTaylor + BoundedDeepTaylor with sglrp's three extra mappings.

    Beyond innvestigate's layers: LRP-0 at LayerNormalization (bias ignored, as z+ ignores
    it), the identity rule at the other element-wise activations; a kernel layer whose inputs
    may be negative gets alpha1-beta0 (its ``x-`` terms included), never z+ for inputs >= 0.
    """
    return [
        *_modern(R.LayerNorm),
        (_input_kernel, functools.partial(R.Bounded, low=low, high=high)),
        (_is(layers.Add), R.ZRule),
        (_is(*_AVERAGE_POOLING), R.ZRule),
        (_kernel_on_non_negative, R.ZPlusFast),
        (_kernel_with_activation, functools.partial(R.AlphaBeta, alpha=1, beta=0, bias=False)),
        (_kernel, R.WSquare),
        (_identity_activation, R.Identity),
        (_relu_only, _relu_or_gradient),
    ]


def _lrp(input_rule, dense_rule, conv_rule, layer_norm, identity_layers=False) -> list:
    """innvestigate's LRP: ``Activation`` layers pass relevance on, LeakyReLU/ELU/PReLU layers
    their gradient (innvestigate's numbers); with ``identity_layers`` (the rule sets that
    innvestigate defines for ReLU networks only) LeakyReLU and ELU layers pass it on too."""
    out = [] if input_rule is None else [(_input_kernel, input_rule)]
    if identity_layers:
        out.append((_identity_activation, R.Identity))
    return [
        *_modern(layer_norm),
        *out,
        (_is(layers.Dense), dense_rule),
        (_is(*_CONV), conv_rule),
        (_is(*_AVERAGE_POOLING), R.ZRule),
        (_is(layers.Add), R.ZRule),
        (_always, _lrp_default),
    ]


def _layer_norm_epsilon(epsilon: float):
    """LayerNormalization as a dense layer of the epsilon rule sets: epsilon, bias counted."""
    return functools.partial(R.LayerNorm, epsilon=epsilon, bias=True)


def preset_a_flat(epsilon: float = 0.1) -> list:
    eps = functools.partial(R.Epsilon, epsilon=epsilon, bias=True)
    ab = functools.partial(R.AlphaBeta, alpha=1, beta=0, bias=True)
    return _lrp(R.Flat, eps, ab, _layer_norm_epsilon(epsilon))


def preset_b_flat(epsilon: float = 0.1) -> list:
    eps = functools.partial(R.Epsilon, epsilon=epsilon, bias=True)
    ab = functools.partial(R.AlphaBeta, alpha=2, beta=1, bias=True)
    return _lrp(R.Flat, eps, ab, _layer_norm_epsilon(epsilon))


def epsilon_plus_box(low: float = -1.0, high: float = 1.0, epsilon: float = 0.1) -> list:
    """Epsilon on dense layers, z+ on convolutions, z^B at the input (sglrp's EpsilonPlusBox)."""
    eps = functools.partial(R.Epsilon, epsilon=epsilon, bias=True)
    z_plus_conv = functools.partial(R.AlphaBeta, alpha=1, beta=0, bias=False)
    box = functools.partial(R.Bounded, low=low, high=high)
    return _lrp(box, eps, z_plus_conv, _layer_norm_epsilon(epsilon), identity_layers=True)


def epsilon(epsilon: float = 1e-7) -> list:
    eps = functools.partial(R.Epsilon, epsilon=epsilon, bias=True)
    return _lrp(None, eps, eps, _layer_norm_epsilon(epsilon))


def z_plus() -> list:
    """LRPZPlus; LRP-0 at LayerNormalization with its bias ignored, as z+ ignores biases."""
    ab = functools.partial(R.AlphaBeta, alpha=1, beta=0, bias=False)
    return _lrp(R.WPlus, ab, ab, R.LayerNorm, identity_layers=True)


def guided_backprop() -> list:
    return [(_relu, R.Guided), (_always, R.Gradient)]


def gradient() -> list:
    return [(_always, R.Gradient)]


#: rule set name -> (factory of its (condition, rule) list, the activations it is defined
#: for: "relu" (ReLU, ReLU6, linear), "identity" (those and ``IDENTITY_ACTIVATIONS``), None: any).
RULE_SETS = {
    "bounded_deep_taylor": (bounded_deep_taylor, "identity"),
    "preset_a_flat": (preset_a_flat, None),
    "preset_b_flat": (preset_b_flat, None),
    "epsilon": (epsilon, None),
    "epsilon_plus_box": (epsilon_plus_box, "identity"),
    "z_plus": (z_plus, "identity"),
    "guided_backprop": (guided_backprop, "relu"),
    "gradient": (gradient, None),
}


# -- the compiled analysis -------------------------------------------------------------------
class Propagation:
    """Compiled backward passes of one model under one rule set, for one or more heads.

    Parameters
    ----------
    model : keras.Model
        A functional or Sequential Keras 3 model with one output of logits (N, C): softmax
        stripped, canonized (no BatchNormalization, no nested model).
    rule : str
        One of :data:`RULE_SETS`.
    heads : sequence of callables
        ``head(z, t) -> R``: the relevance (N, C) that starts each backward pass, from the
        logits ``z`` and the selection ``t`` (see ``sglrp/heads.py``).
    jit_compile : bool
        Compile with XLA (slower on CPU for VGG16; off by default).
    **options
        Options of the rule set: ``low``, ``high`` (bounded_deep_taylor), ``epsilon``
        (epsilon, preset_a_flat, preset_b_flat).

    Raises
    ------
    KeyError
        For an unknown rule set.
    ValueError
        For a layer the rule set cannot propagate through (naming the layer and its class),
        an option the rule set does not take, or a model that is not a classifier of logits.
    """

    def __init__(self, model, rule: str, heads, *, jit_compile: bool = False, **options):
        if rule not in RULE_SETS:
            raise KeyError(f"unknown rule set {rule!r}; valid: {sorted(RULE_SETS)}")
        self.rule = rule
        self.heads = tuple(heads)
        if not self.heads:
            raise ValueError("give at least one head")
        make_rules, kind = RULE_SETS[rule]
        activations = _ACTIVATIONS[kind]
        try:
            conditional_rules = make_rules(**options)
        except TypeError:
            raise ValueError(f"rule set {rule!r} got unknown options {sorted(options)}") from None
        conditional_rules = [*attention_rules(rule, options), *conditional_rules]
        self.graph = graph = Graph(model)
        self.model = model
        if len(graph.output.shape) != 2:
            raise ValueError(
                f"model {model.name!r} has output shape {tuple(graph.output.shape)}; expected "
                "(N, C) logits"
            )
        self.n_classes = int(graph.output.shape[-1])
        self.rules = {}
        for call in graph.calls:
            self._check(call, activations)
            if rule == "gradient":
                continue
            for condition, make in conditional_rules:
                if condition(call, graph):
                    self.rules[call.key] = make(call, graph)
                    break
            else:
                raise ValueError(self._refusal(call, "no rule of this rule set applies to it"))
        relu_only = kind == "identity"  # innvestigate defines these for ReLU networks only
        if any(
            _beyond_innvestigate(call, self.rules.get(call.key), graph, relu_only)
            for call in graph.calls
        ):
            for r in self.rules.values():  # conserve where innvestigate's z+ drops relevance
                if isinstance(r, (R.AlphaBeta, R.ZPlusFast)):
                    r.pass_dropped = True
        dtype = graph.output.dtype
        signature = [
            [tf.TensorSpec((None, *t.shape[1:]), t.dtype) for t in graph.inputs],
            tf.TensorSpec((None, self.n_classes), dtype),
        ]
        self._analyze = tf.function(
            self._analysis, input_signature=signature, jit_compile=jit_compile
        )
        self._logits = tf.function(self._forward_logits, input_signature=signature[:1])

    def _refusal(self, call, why: str) -> str:
        return (
            f"rule set {self.rule!r} cannot propagate relevance through layer "
            f"{call.layer.name!r} ({type(call.layer).__name__}): {why}"
        )

    def _check(self, call, activations) -> None:
        layer = call.layer
        relu_only = activations is not None
        if isinstance(layer, layers.BatchNormalization):
            raise ValueError(
                self._refusal(call, "batch normalization must be folded first (canonize the model)")
            )
        if isinstance(layer, keras.Model):
            raise ValueError(
                self._refusal(call, "nested models must be flattened first (canonize)")
            )
        if self.rule == "gradient":
            return  # automatic differentiation: any layer
        if self.rule != "guided_backprop" and self.graph.gate_only(call):
            return  # computes a gate only: no relevance reaches it (signal-take-all)
        if is_operation(layer):
            if not (_tensor_add(call, self.graph) or _gate(call, self.graph)):
                raise ValueError(
                    self._refusal(
                        call,
                        "this keras.ops operation has no rule (only x + y of two tensors, "
                        "and a signal times its sigmoid gate)",
                    )
                )
            return
        if not (isinstance(layer, _SUPPORTED) or is_layer_scale(layer) or is_scaled_add(layer)):
            raise ValueError(self._refusal(call, "this layer type is not supported"))
        if isinstance(layer, layers.Multiply) and not _gate(call, self.graph):
            raise ValueError(
                self._refusal(
                    call,
                    "a product has a rule only as a multiplicative gate: a signal times a "
                    "sigmoid or hard sigmoid of a function of that signal",
                )
            )
        name = activation_name(layer)
        if relu_only and name not in activations:
            if activations is _RELU_NAMES:
                why = f"the rule is defined for ReLU networks; it uses {name!r}"
            else:
                why = (
                    f"the rule is defined for ReLU networks and the element-wise activations "
                    f"{', '.join(sorted(IDENTITY_ACTIVATIONS))} (identity rule); it uses {name!r}"
                )
            raise ValueError(self._refusal(call, why))
        if is_kernel_layer(layer):
            KernelMap(layer)  # raises for grouped convolutions and the like
        if len(call.outputs) != 1:
            raise ValueError(self._refusal(call, f"it has {len(call.outputs)} outputs"))
        if isinstance(layer, layers.ReLU) and relu_only and layer.negative_slope:
            raise ValueError(
                self._refusal(call, "the rule is defined for ReLU networks; it is a leaky ReLU")
            )

    # -- inside the tf.function --------------------------------------------------------------
    def _forward_logits(self, inputs):
        return self.graph.forward(inputs)[id(self.graph.output)]

    def _analysis(self, inputs, selection):
        graph = self.graph
        values = graph.forward(inputs)
        z = values[id(graph.output)]
        stacks = len(self.heads)
        start = [head(z, selection) for head in self.heads]
        if self.rule == "gradient":
            return self._gradient(inputs, z, start)
        relevance = {id(graph.output): [tf.concat(start, 0) if stacks > 1 else start[0]]}
        for call in reversed(graph.calls):
            parts = relevance.pop(id(call.outputs[0]), None)
            if parts is None:
                continue  # nothing of the output depends on this call
            r = parts[0] if len(parts) == 1 else tf.add_n(parts)
            xs = [values[id(t)] for t in call.inputs]
            y = values[id(call.outputs[0])]
            for t, rx in zip(call.inputs, self.rules[call.key].backward(xs, y, r, stacks)):
                if rx is not None:
                    relevance.setdefault(id(t), []).append(rx)
        out = []
        for t, x in zip(graph.inputs, inputs):
            parts = relevance.get(id(t))
            if parts is None:
                out.append(tf.zeros(tf.concat([[stacks], tf.shape(x)], 0), x.dtype))
                continue
            r = parts[0] if len(parts) == 1 else tf.add_n(parts)
            out.append(R.split_heads(r, stacks))
        return out

    def _gradient(self, inputs, z, start):
        out = []
        grads = [tf.gradients(z, inputs, r) for r in start]
        for i, x in enumerate(inputs):
            per_head = [g[i] if g[i] is not None else tf.zeros_like(x) for g in grads]
            out.append(tf.stack(per_head))
        return out

    # -- public ------------------------------------------------------------------------------
    def __call__(self, inputs, selection) -> list:
        """The maps of every head for every model input: ``out[head][input]``, float arrays.

        Parameters
        ----------
        inputs : list of numpy.ndarray
            One batch (N, ...) per model input.
        selection : numpy.ndarray
            (N, C): what each sample explains (one-hot rows for a target class).
        """
        dtype = self.graph.output.dtype
        xs = [
            tf.convert_to_tensor(np.asarray(x), t.dtype) for x, t in zip(inputs, self.graph.inputs)
        ]
        maps = self._analyze(xs, tf.convert_to_tensor(np.asarray(selection), dtype))
        maps = [m.numpy() for m in maps]
        return [[m[h] for m in maps] for h in range(len(self.heads))]

    def logits(self, inputs) -> np.ndarray:
        """The model's output (N, C) for ``inputs`` (one batch per model input)."""
        xs = [
            tf.convert_to_tensor(np.asarray(x), t.dtype) for x, t in zip(inputs, self.graph.inputs)
        ]
        return self._logits(xs).numpy()
