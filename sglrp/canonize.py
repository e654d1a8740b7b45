"""Canonization: rewrite a Keras model into an equivalent one the relevance rules can reverse.

:func:`canonize` is applied to every model an analyzer receives, before it is checked. It
returns a new functional model (built in eager mode, weights computed in NumPy in float64)
with the same predictions up to float32 rounding, or the model itself when nothing needs doing.
Every layer that stays keeps its name. The same rewrites run on Keras 2.14 and Keras 3: the
model's graph is read through ``keras_graph.py``, everything else here is written once.

* **Nested models are flattened.** A ``keras.applications`` base inside a Sequential or
  functional model (a transfer model) becomes plain layers of one functional graph;
  innvestigate cannot reverse a model used as a layer. The nested model's own name is gone,
  its layers keep theirs (a name that clashes with a layer outside gets the prefix
  ``"<nested model>/"``; ``"<nested model>."`` on Keras 3, which refuses ``/`` in names).
* **Batch normalization is folded** into the layer before it where that is exact: a
  ``BatchNormalization`` over the channel axis that directly follows a ``Conv1D/2D/3D``,
  ``SeparableConv1D/2D``, ``DepthwiseConv2D`` or ``Dense`` without activation, whose output
  feeds that BN only, becomes part of that layer's kernel and bias (the layer keeps its name
  and now has a bias; the BN's name is gone). This covers every BN of ResNet50, MobileNetV2
  and InceptionV3, and the BN after each convolution of DenseNet.
* **Other batch normalizations become a per-channel linear layer** with the BN's name: on a
  4-D tensor (N, h, w, C) a 1x1 ``DepthwiseConv2D``, on a 2-D tensor (N, C) a ``Dense`` with a
  diagonal kernel, both with ``kernel = gamma / sqrt(var + eps)`` and
  ``bias = beta - mean * kernel``. These are the BNs after a merge, a pooling or an
  activation (DenseNet's pre-activation BNs and its final ``bn``), after a layer with an
  activation or a shared layer, and a BN called more than once (in a nested model used
  twice). innvestigate's own BN rules build a surrogate layer whose weights are read before
  the analyzer's variables are initialized, which fails in the analyzer's private graph
  (LRP-epsilon, LRP-z+ and the sequential presets); as a kernel layer every rule reverses it.
  A BN on another axis or another rank is kept as it is.
* **A batch normalization in training mode is refused** (``ValueError`` naming it): called
  with ``training=True``, or inside a nested model called with ``training=True``, it
  normalizes with the statistics of the batch even at inference, so a sample's output, and
  its explanation, would depend on the rest of the batch.
* **A final softmax written as an operation is dropped**: ``keras.ops.softmax`` or
  ``log_softmax`` (Keras 3), ``tf.nn.softmax``, ``tf.math.softmax`` or their ``log_softmax``
  (Keras 2's ``TFOpLambda``) computing the model's output; the new model outputs the logits
  (``ModelSpec`` says so with the usual warning). Such an operation inside the model is refused.
* **A ``SeparableConv2D`` becomes its two convolutions**: a ``DepthwiseConv2D`` named
  ``"<name>_depthwise"`` (no bias) and a 1x1 ``Conv2D`` with the layer's name, bias and
  activation, so the rules see both (treated as one layer, the relevance differed from the
  same network written with the two layers). Xception and NASNet are made of them.
* **A layer that is random in training mode and runs in it is refused** (``ValueError`` naming
  it): dropout, noise (``Dropout``, ``SpatialDropout2D``, ``GaussianNoise``, ...) or random
  augmentation called with ``training=True`` (Monte Carlo dropout), or inside a nested model
  called so, would make two analyses of one input differ.
* **Zero padding at the input is merged into the first convolution.** A ``ZeroPadding2D``
  that reads a model input and feeds one ``Conv2D`` with ``padding="valid"`` (ResNet50's
  ``conv1_pad``, DenseNet's first padding) hides that convolution from innvestigate's
  input-layer check, so the input rules (z^B with ``low``/``high``, w+, flat) would silently
  not apply. The convolution becomes a ``padding="same"`` one whose kernel is the old kernel
  inside a zero border, where such a kernel gives exactly the same windows.
* **Mixed precision, for the relevance rules** (``canonize(model, float32=True)``): a model
  whose layers compute in float16 or bfloat16 (``mixed_float16``) becomes a float32 copy with
  the same float32 variables, so the rules propagate in float32. The gradient methods keep
  the model's own float16 computations.
* **Activations are kept as they are.** ``ReLU()``, ``Activation("relu")`` and
  ``ReLU(max_value=6)`` (MobileNetV2's ReLU6) all pass innvestigate's ReLU check
  (``innvestigate.backend.checks.only_relu_activation``) and are reversed like a ReLU: the
  relevance rules route relevance through them with their gradient, so relevance reaching a
  ReLU6 unit above 6 (gradient 0) is dropped - the approximation left for MobileNetV2. The
  gradient methods (guided backprop, SmoothGrad, Integrated Gradients, Grad-CAM) use the exact
  ReLU6 gradient. Other activations are left for the ReLU checks to report.
"""

from __future__ import annotations

import collections
import itertools
import weakref

import numpy as np
import tensorflow as tf

from . import keras_graph

__all__ = ["canonize"]

layers = tf.keras.layers

#: Layers a following BatchNormalization can be folded into (output channel on the last axis
#: of the kernel, or of the depthwise kernel's last two axes).
_FOLDABLE = (
    layers.Conv1D,
    layers.Conv2D,
    layers.Conv3D,
    layers.DepthwiseConv2D,
    layers.SeparableConv1D,
    layers.SeparableConv2D,
    layers.Dense,
)
_TRANSPOSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
#: Plan entry of a layer whose calls are dropped: the output is the input.
_PASS = "pass"

#: user model -> (structure, canonized model, weight setters): the graph is built once per
#: model, the weights are computed again at every call (the user may have trained since).
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def canonize(model, float32: bool = False):
    """An equivalent functional model that innvestigate can reverse (see the module docstring).

    Parameters
    ----------
    model : tf.keras.Model
        A built Sequential or functional model. Anything else is returned unchanged (the
        analyzer's checks then say what is wrong).
    float32 : bool
        Compute in float32: a model with mixed-precision layers (``mixed_float16``,
        ``mixed_bfloat16``: float16 computations, float32 variables) becomes a float32 copy
        with the same (float32) weights.

    Returns
    -------
    tf.keras.Model
        A new functional model with the same name, inputs and predictions, or ``model``
        itself when it has no nested model, no batch normalization and no zero padding at
        the input. The new model is built once per model and structure; later calls return
        it again with its weights computed anew from ``model``'s current weights.

    Raises
    ------
    ValueError
        If a nested model is subclassed (it has no graph of layers to flatten), or a batch
        normalization runs in training mode.
    """
    if not keras_graph.is_graph(model):
        return model
    graph = _Trace(model)
    plan = graph.plan()
    cast = float32 and any(_low_precision(call.layer) for call in graph.calls)
    if not plan and not graph.nested and not cast:
        return model
    structure = [(id(call.layer), call.key) for call in graph.calls]
    cached = _CACHE.setdefault(model, {}).get(cast)
    if cached is not None and cached[0] == structure:
        new, setters = cached[1], cached[2]
    else:
        new, setters = graph.build(plan, cast)
        _CACHE[model][cast] = (structure, new, setters)
    for layer, weights in setters:
        layer.set_weights(weights())  # float64, cast once to the layer's dtype
    return new


def _low_precision(layer) -> bool:
    """Whether ``layer`` computes in float16 or bfloat16 (a mixed-precision policy)."""
    dtype = getattr(layer, "compute_dtype", None)
    return isinstance(layer, layers.Layer) and str(dtype) in ("float16", "bfloat16")


def _activation(layer) -> str:
    return tf.keras.activations.serialize(getattr(layer, "activation", None) or "linear")


class _Call:
    """One call of a plain layer in the flattened graph; tensors are named by references."""

    def __init__(self, call: keras_graph.Call, owner, refs: dict, outputs: list, within) -> None:
        self.key, self.layer, self.owner = call.key, call.layer, owner
        self.args, self.kwargs = call.args, call.kwargs
        self.refs = refs  # id(Keras tensor of the call's arguments) -> reference
        self.inputs = [refs[id(t)] for t in call.inputs]
        self.input_shapes = [tuple(t.shape) for t in call.inputs]
        self.outputs = outputs
        self.training = call.kwargs.get("training") is True
        #: The nested model around this call that was called with ``training=True``, if any.
        self.within = within


class _Trace:
    """The layer calls of ``model`` with nested models inlined, in order of evaluation.

    A tensor is referred to by ``(scope, id(tensor))``: a nested model used twice gets two
    scopes; its inputs and outputs are aliases of the tensors outside.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.calls: list[_Call] = []
        self.nested = False
        self._scopes = itertools.count()
        self.inputs = [(0, id(x)) for x in model.inputs]
        self.outputs = self._walk(model, self.inputs, within=None)

    def _walk(self, graph, input_refs, within) -> list:
        scope = next(self._scopes)
        local = {id(x): r for x, r in zip(graph.inputs, input_refs)}

        def ref(t):
            return local.get(id(t), (scope, id(t)))

        for call in keras_graph.calls(graph):
            layer = call.layer
            if isinstance(layer, tf.keras.Model):
                if not keras_graph.is_graph(layer):
                    raise ValueError(
                        f"layer {layer.name!r} of model {self.model.name!r} is a subclassed "
                        "model, which cannot be flattened or reversed; build it with the "
                        "functional API"
                    )
                self.nested = True
                args = call.args[0] if call.args else call.kwargs["inputs"]
                if within is None and call.kwargs.get("training") is True:
                    within = layer.name
                outputs = self._walk(layer, [ref(t) for t in tf.nest.flatten(args)], within)
                for t, r in zip(call.outputs, outputs):
                    local[id(t)] = r
            else:
                refs = {id(t): ref(t) for t in call.inputs}
                outputs = [ref(t) for t in call.outputs]
                self.calls.append(_Call(call, graph, refs, outputs, within))
        return [ref(t) for t in graph.outputs]

    # -- the plan: what happens to which layer ---------------------------------------------

    def plan(self) -> dict:
        """``{id(layer): change}``; a change is ``_PASS`` or a dict of edits."""
        uses = collections.Counter(r for call in self.calls for r in call.inputs)
        uses.update(self.outputs)
        n_calls = collections.Counter(id(call.layer) for call in self.calls)
        producer = {r: call for call in self.calls for r in call.outputs}
        consumers = collections.defaultdict(list)
        for call in self.calls:
            for r in call.inputs:
                consumers[r].append(call)
        plan = {}
        for call in self.calls:
            if isinstance(call.layer, layers.BatchNormalization) and (call.training or call.within):
                raise ValueError(_training_message(call))
            if _random_in_training(call.layer) and (call.training or call.within):
                raise ValueError(_random_message(call))
            kind = keras_graph.softmax_op(call.layer)
            if kind is not None:
                if call.outputs != self.outputs or len(call.inputs) != 1:
                    raise ValueError(
                        f"operation {call.layer.name!r} applies a {kind} inside model "
                        f"{self.model.name!r}; only a final softmax can be stripped"
                    )
                plan[id(call.layer)] = _PASS  # the final softmax: the logits are its input
        linear = collections.defaultdict(set)  # id(BN) -> the ranks of its calls, None: not 2/4
        for call in self.calls:
            layer = call.layer
            if len(call.inputs) != 1:
                continue
            (x,) = call.inputs
            shape = call.input_shapes[0]
            if isinstance(layer, layers.BatchNormalization):
                rank = len(shape)
                axes = [a % rank for a in np.atleast_1d(layer.axis)]
                before = producer[x].layer if x in producer else None
                if (
                    n_calls[id(layer)] == 1
                    and isinstance(before, _FOLDABLE)
                    and not isinstance(before, _TRANSPOSED)
                    and n_calls[id(before)] == 1
                    and uses[x] == 1
                    and _activation(before) == "linear"
                    and axes == [_channel_axis(before, rank)]
                ):
                    plan.setdefault(id(before), {})["bn"] = layer
                    plan[id(layer)] = _PASS
                elif axes == [rank - 1] and rank in (2, 4) and shape[-1] is not None:
                    linear[id(layer)].add(rank)
                else:
                    linear[id(layer)].add(None)
            elif n_calls[id(layer)] != 1:
                continue
            elif isinstance(layer, layers.ZeroPadding2D) and x in self.inputs:
                (y,) = call.outputs
                if uses[y] != 1 or y not in consumers:
                    continue
                conv = consumers[y][0].layer
                pad = _same_padding(layer, conv, tuple(shape[1:3]))
                if pad is not None and n_calls[id(conv)] == 1:
                    plan[id(layer)] = _PASS
                    plan.setdefault(id(conv), {})["pad"] = pad
        for call in self.calls:
            if type(call.layer) is layers.SeparableConv2D:
                plan.setdefault(id(call.layer), {})["separable"] = True
        for key, ranks in linear.items():
            if len(ranks) == 1 and None not in ranks:  # a shared BN: the same at every call
                plan[key] = {"as_linear": ranks.pop()}
        return plan

    # -- the new model ---------------------------------------------------------------------

    def build(self, plan: dict, float32: bool = False):
        """The new functional model and its ``[(layer, weights function), ...]``; with
        ``float32`` every layer computes in float32."""
        model = self.model
        names = {call.layer.name for call in self.calls if call.owner is model}
        copies = {}  # id(original layer) -> copy (a shared layer stays shared)
        setters = []

        def copy(layer, owner):
            if not isinstance(layer, layers.Layer):
                return layer  # a Keras 3 operation (keras.ops in a functional model): no state
            if id(layer) not in copies:
                name = layer.name
                if owner is not model:
                    if name in names:
                        name = keras_graph.nested_name(owner.name, name)
                    names.add(name)
                change = plan.get(id(layer), {})
                if float32:
                    change = {**change, "float32": True}
                if "separable" in change:
                    new, parts = _separated(layer, change, name)
                    setters.extend(parts)
                else:
                    if "as_linear" in change:
                        new, weights = _as_linear(layer, change["as_linear"], name)
                    else:
                        new, weights = _edited(layer, change, name)
                    setters.append((new, weights))
                copies[id(layer)] = new
            return copies[id(layer)]

        tensors = {
            r: tf.keras.Input(
                batch_shape=tuple(x.shape), dtype=x.dtype, name=keras_graph.layer_of(x).name
            )
            for r, x in zip(self.inputs, model.inputs)
        }
        new_inputs = list(tensors.values())
        for call in self.calls:
            change = plan.get(id(call.layer))
            if change == _PASS:
                outputs = [tensors[call.inputs[0]]]
            else:
                args, kwargs = tf.nest.map_structure(
                    lambda t, refs=call.refs: tensors[refs[id(t)]] if id(t) in refs else t,
                    (call.args, call.kwargs),
                )
                if change and "as_linear" in change:
                    kwargs = {}  # a BN's training (False) and mask (None): not a kernel layer's
                outputs = tf.nest.flatten(copy(call.layer, call.owner)(*args, **kwargs))
            tensors.update(zip(call.outputs, outputs))
        outputs = [tensors[r] for r in self.outputs]
        new = tf.keras.Model(
            new_inputs if len(new_inputs) > 1 else new_inputs[0],
            outputs if len(outputs) > 1 else outputs[0],
            name=model.name,
        )
        return new, setters


def _channel_axis(layer, rank: int) -> int:
    if isinstance(layer, layers.Dense):
        return rank - 1
    return 1 if layer.data_format == "channels_first" else rank - 1


def _same_padding(pad_layer, conv, size):
    """Offsets and kernel size that make ``conv`` after ``pad_layer`` a ``"same"`` conv.

    Returns ``[(offset, new_kernel_size), ...]`` per spatial axis, or ``None`` where no such
    kernel exists (or the layers are not a plain channels-last ``Conv2D``).
    """
    if (
        type(conv) is not layers.Conv2D
        or conv.padding != "valid"
        or conv.data_format != "channels_last"
        or pad_layer.data_format != "channels_last"
        or tuple(conv.dilation_rate) != (1, 1)
        or None in size
    ):
        return None
    out = []
    for n, (before, after), k, s in zip(size, pad_layer.padding, conv.kernel_size, conv.strides):
        n_out = (n + before + after - k) // s + 1
        if n_out != -(-n // s):  # a "same" conv has ceil(n / s) outputs
            return None
        for size_k in range(k, k + 2 * (before + s) + 2):
            # TensorFlow pads floor(P / 2) before and the rest after.
            pad_before = max((n_out - 1) * s + size_k - n, 0) // 2
            if pad_before >= before and pad_before - before + k <= size_k:
                out.append((pad_before - before, size_k))
                break
        else:
            return None
    return out


# -- the new layers and their weights (functions: computed again at every canonize) ------------


def _bn_affine(bn):
    """``(scale, shift)`` of an inference-mode BN, in float64."""
    # read through Keras: works with eager execution on or off
    values = tf.keras.backend.batch_get_value(
        [bn.moving_mean, bn.moving_variance, *([bn.gamma] if bn.scale else []),
         *([bn.beta] if bn.center else [])]
    )  # fmt: skip
    mean, var = (v.astype(np.float64) for v in values[:2])
    gamma = values[2].astype(np.float64) if bn.scale else 1.0
    beta = values[-1].astype(np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def _training_message(call) -> str:
    where = (
        "is called with training=True"
        if call.training
        else f"runs in training mode: model {call.within!r} around it is called with training=True"
    )
    return (
        f"batch normalization layer {call.layer.name!r} {where}; its output depends on the rest "
        "of the batch (it normalizes with the batch's own statistics), so no map explains one "
        "sample. Call it with training=False (or leave training out) to use its moving "
        "statistics"
    )


#: Layers that are random in training mode (dropout, noise, random augmentation).
_RANDOM = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise",
)  # fmt: skip


def _random_in_training(layer) -> bool:
    names = {cls.__name__ for cls in type(layer).__mro__}
    return bool(names & set(_RANDOM)) or type(layer).__name__.startswith("Random")


def _random_message(call) -> str:
    where = (
        "is called with training=True"
        if call.training
        else f"runs in training mode: model {call.within!r} around it is called with training=True"
    )
    return (
        f"layer {call.layer.name!r} ({type(call.layer).__name__}) {where}; it is random in "
        "training mode (as in Monte Carlo dropout), so two analyses of one input differ and no "
        "map explains the model. Call it with training=False (or leave training out)"
    )


def _edited(layer, edits: dict, name: str):
    """A copy of ``layer`` named ``name`` with ``edits`` applied, and its weights function."""
    config = {**layer.get_config(), "name": name}
    if edits.pop("float32", False):
        config["dtype"] = "float32"
    if not edits:
        return layer.__class__.from_config(config), layer.get_weights
    if "pad" in edits:
        config.update(kernel_size=tuple(k for _, k in edits["pad"]), padding="same")
    if "bn" in edits:
        config["use_bias"] = True

    def weights():
        out = [w.astype(np.float64) for w in layer.get_weights()]
        if "pad" in edits:
            (dy, ky), (dx, kx) = edits["pad"]
            kernel = out[0]
            out[0] = np.zeros((ky, kx, *kernel.shape[2:]))
            out[0][dy : dy + kernel.shape[0], dx : dx + kernel.shape[1]] = kernel
        if "bn" in edits:
            scale, shift = _bn_affine(edits["bn"])
            bias = out.pop() if layer.use_bias else np.zeros_like(scale)
            if isinstance(layer, layers.DepthwiseConv2D):
                # (kh, kw, in, multiplier): output channel i * multiplier + m.
                out[0] = out[0] * scale.reshape(out[0].shape[-2:])
            else:
                # The output channel is the last axis of the (pointwise) kernel.
                out[-1] = out[-1] * scale
            out.append(bias * scale + shift)
        return out

    return layer.__class__.from_config(config), weights


def _separated(layer, edits: dict, name: str):
    """``layer`` (a SeparableConv2D) as its two convolutions: a depthwise ``name + "_depthwise"``
    (no bias, no activation) and a 1x1 ``Conv2D`` ``name`` with the bias and the activation.

    Returns the function applying both, and ``[(layer, weights function), ...]`` for the two.
    """
    dtype = "float32" if edits.get("float32") else getattr(layer, "dtype_policy", layer.dtype)
    depthwise = layers.DepthwiseConv2D(
        layer.kernel_size, strides=layer.strides, padding=layer.padding,
        depth_multiplier=layer.depth_multiplier, data_format=layer.data_format,
        dilation_rate=layer.dilation_rate, use_bias=False, name=f"{name}_depthwise", dtype=dtype,
    )  # fmt: skip
    pointwise = layers.Conv2D(
        layer.filters, 1, data_format=layer.data_format, activation=layer.activation,
        use_bias=layer.use_bias or "bn" in edits, name=name, dtype=dtype,
    )  # fmt: skip
    _, weights = _edited(layer, {k: v for k, v in edits.items() if k != "separable"}, name)

    def apply(x, **kwargs):
        return pointwise(depthwise(x))

    return apply, [(depthwise, lambda: weights()[:1]), (pointwise, lambda: weights()[1:])]


def _as_linear(bn, rank: int, name: str):
    """The per-channel linear layer ``name`` equal to ``bn`` on a tensor of ``rank``, and its
    weights."""
    if rank == 4:
        new = layers.DepthwiseConv2D(1, use_bias=True, name=name, dtype=bn.dtype)

        def weights():
            scale, shift = _bn_affine(bn)
            return [scale.reshape(1, 1, -1, 1), shift]

    else:
        new = layers.Dense(bn.moving_mean.shape[0], use_bias=True, name=name, dtype=bn.dtype)

        def weights():
            scale, shift = _bn_affine(bn)
            return [np.diag(scale), shift]

    return new, weights
