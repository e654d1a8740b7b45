"""Rules: how relevance at a layer's output moves to its inputs, as innvestigate computes it.

One small class per rule. Each is made for one call of a layer (``keras_graph.Call``) and maps
the relevance ``r`` of the call's output to its inputs with :meth:`Rule.backward`. The relevance of
every head is stacked on the batch axis, ``(H*N, ...)``, while the layer's inputs and outputs
are ``(N, ...)``: the rules' forward computations (``z``, the stabilized denominators) run once
and are broadcast over the heads, and the transposed convolutions of all heads run as one.

The numbers are innvestigate 2.1.2's (``analyzer/relevance_based/relevance_rule.py``,
``relevance_analyzer.py``, ``gradient_based.py``): its ``safe_divide`` (zeros in the denominator
replaced by ``1e-7``), its epsilon sign convention (``sign(0) = +1``), its bias handling in the
alpha-beta rules (``b+`` with the positive part, ``b-`` with the negative part), the relevance
of the kernel layers' output treated as the relevance of the pre-activation.

References: Bach et al. 2015 (LRP, epsilon, alpha-beta), Montavon et al. 2017 (Deep Taylor: z+,
z^B, w^2), Springenberg et al. 2015 (guided backprop). The rules of the layers innvestigate has
none for (``Identity``, ``LayerNorm``, ``SignalTakeAll``, ``ScaledAdd``, ``NoRelevance``, the
bounds of ``Bounded`` mapped through preprocessing layers) are sglrp's, each with its reference.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .kernels import KernelMap

__all__ = [
    "Rule",
    "Gradient",
    "ReluMask",
    "PassThrough",
    "Identity",
    "LayerNorm",
    "SignalTakeAll",
    "ScaledAdd",
    "NoRelevance",
    "Guided",
    "ZRule",
    "Epsilon",
    "AlphaBeta",
    "ZPlusFast",
    "Bounded",
    "InputIndependent",
    "Flat",
    "WSquare",
    "WPlus",
]

layers = keras.layers

#: innvestigate's ``safe_divide`` factor (``keras.backend.epsilon()``).
SAFE_EPS = 1e-7


# -- heads on the batch axis -----------------------------------------------------------------
def _inner(t):
    dims = t.shape[1:]
    if dims.is_fully_defined():
        return list(dims)
    return tf.unstack(tf.shape(t)[1:])


def split_heads(t, stacks: int):
    """``(H*N, ...)`` -> ``(H, N, ...)``."""
    return tf.reshape(t, [stacks, -1, *_inner(t)])


def merge_heads(t):
    """``(H, N, ...)`` -> ``(H*N, ...)``."""
    return tf.reshape(t, [-1, *_inner(t)[1:]])


def times(x, r, stacks: int):
    """``x`` (N, ...) times each head's ``r`` (H*N, ...)."""
    if stacks == 1:
        return x * r
    return merge_heads(x[None] * split_heads(r, stacks))


def over(r, z, stacks: int, divide=tf.math.divide):
    """Each head's ``r`` (H*N, ...) divided by ``z`` (N, ...)."""
    if stacks == 1:
        return divide(r, z)
    return merge_heads(divide(split_heads(r, stacks), z[None]))


def safe(z):
    """innvestigate's ``safe_divide`` denominator ``z + 1e-7 [z == 0]``: zeros replaced by ``1e-7``.

    The same numbers in two passes over ``z`` instead of four.
    """
    return tf.where(tf.equal(z, 0), tf.constant(SAFE_EPS, z.dtype), z)


def positive(w):
    """``w+``; innvestigate's ``w * (w > 0)`` up to the sign of zero, in one pass."""
    return tf.nn.relu(w)


def negative(w):
    """``w-``; innvestigate's ``w * (w < 0)`` up to the sign of zero, in one pass."""
    return tf.minimum(w, tf.constant(0, w.dtype))


def per_head_gradients(ys, xs, r, stacks: int) -> list:
    """``tf.gradients(ys, xs, r_h)`` for every head, restacked; ``None`` where unconnected.

    Each input is a leaf (``stop_gradients``): an ``Add`` of ``x`` and ``f(x)`` passes ``r`` to
    both once, not again through ``f``.
    """
    parts = tf.split(r, stacks, axis=0) if stacks > 1 else [r]
    grads = [tf.gradients(ys, xs, part, stop_gradients=xs) for part in parts]
    out = []
    for i in range(len(xs)):
        per_head = [g[i] for g in grads]
        if any(g is None for g in per_head):
            out.append(None)
        else:
            out.append(tf.concat(per_head, 0) if stacks > 1 else per_head[0])
    return out


# -- rules -----------------------------------------------------------------------------------
class Rule:
    """Maps the relevance of one call's output to its inputs.

    Parameters
    ----------
    call : keras_graph.Call
        The layer call this rule reverses.
    graph : graph.Graph
        The model's graph (for rules that look at the sign of their inputs).
    """

    def __init__(self, call, graph) -> None:
        self.call = call
        self.layer = call.layer

    def backward(self, xs: list, y, r, stacks: int) -> list:
        """Relevance of each input (``None``: none), from ``r`` at the output ``y``.

        ``xs`` and ``y`` are the call's forward values (N, ...), ``r`` is (stacks*N, ...).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.layer.name!r})"


class Gradient(Rule):
    """The gradient of the layer (innvestigate's ``_gradient_reverse_mapping``)."""

    def backward(self, xs, y, r, stacks):
        return per_head_gradients([y], xs, r, stacks)


class ReluMask(Gradient):
    """The gradient of a ReLU (or ReLU6) layer as one mask broadcast over the heads.

    ``x > 0`` for ``relu`` (``ReluGrad``), ``0 < x < 6`` for ``ReLU(max_value=6)``
    (``Relu6Grad``); any other ReLU variant falls back to its gradient.
    """

    def __init__(self, call, graph) -> None:
        super().__init__(call, graph)
        layer = self.layer
        self.cap = None
        if isinstance(layer, layers.ReLU):
            plain = not layer.negative_slope and not layer.threshold
            self.simple = plain and layer.max_value in (None, 6)
            self.cap = layer.max_value
        else:
            self.simple = getattr(layer, "activation", None) is keras.activations.relu

    def backward(self, xs, y, r, stacks):
        if not self.simple:
            return super().backward(xs, y, r, stacks)
        (x,) = xs
        mask = x > 0
        if self.cap is not None:
            mask = tf.logical_and(mask, x < self.cap)
        return [times(tf.cast(mask, r.dtype), r, stacks)]


class PassThrough(Rule):
    """Relevance passed on unchanged (innvestigate's LRP default for ``Activation`` layers)."""

    def backward(self, xs, y, r, stacks):
        return [r]


class Identity(PassThrough):
    """The identity rule for an element-wise activation: ``R_x = R_y``.

    AttnLRP (Achtibat et al., ICML 2024, Sec. 3.3: element-wise non-linearities as one-input
    units, whose relevance passes on unchanged); zennit's ``Pass`` rule. Used for swish/SiLU,
    GELU, hard swish, ELU, leaky ReLU and tanh, and for the layers that only rescale or shift
    each channel (``Rescaling``, ``Normalization``, ConvNeXt's ``LayerScale``: the linear map
    of one input, whose LRP-0 is the identity; the shift is a bias).
    """


class NoRelevance(Rule):
    """No relevance: a call whose output only feeds the gates of multiplicative gates.

    Signal-take-all (:class:`SignalTakeAll`) sends nothing into a gate, so nothing of the
    gate's computation (squeeze-and-excitation's pooling, its convolutions and sigmoid) is
    ever reached by the backward pass; this rule only marks such calls.
    """

    def backward(self, xs, y, r, stacks):
        return [None] * len(xs)


class SignalTakeAll(Rule):
    """A multiplicative gate ``y = x * g``: all relevance to the signal ``x``, none to ``g``.

    Arras et al. 2017 (*Explaining recurrent neural network predictions in sentiment
    analysis*, WASSA; the rule of LRP for LSTMs' gates): the gate, a sigmoid of a function of
    the signal, is treated as a constant, so ``y = g x`` is a linear map of ``x`` whose LRP-0
    gives ``R_x = x g / (x g) R_y = R_y``.

    Parameters
    ----------
    gate : int
        The index of the gate among the call's two inputs (``graph.gate_index``).
    """

    def __init__(self, call, graph) -> None:
        super().__init__(call, graph)
        self.gate = graph.gate_index(call)
        if self.gate is None:
            raise ValueError(f"layer {self.layer.name!r} is not a multiplicative gate")

    def backward(self, xs, y, r, stacks):
        return [None if i == self.gate else r for i in range(len(xs))]


class ScaledAdd(Rule):
    """The z-rule at a scaled residual ``y = a + s b`` (InceptionResNetV2's
    ``CustomScaleLayer``): ``R_a = a R / y``, ``R_b = s b R / y``.

    An ``Add`` with one summand scaled, reversed as innvestigate reverses ``Add``
    (``AddReverseLayer``, Bach et al. 2015, Eq. 56 without bias): each summand's share of
    the sum; ``y`` is stabilized as :func:`safe` does.
    """

    def backward(self, xs, y, r, stacks):
        a, b = xs
        scaled = b * tf.cast(self.layer.scale, b.dtype)
        s = over(r, safe(a + scaled), stacks)
        return [times(a, s, stacks), times(scaled, s, stacks)]


class LayerNorm(Rule):
    """LayerNormalization with its standard deviation treated as a constant (Ali et al.,
    *XAI for Transformers: better explanations through conservative propagation*, ICML 2022,
    Sec. 3.2, the LN-rule), then LRP-epsilon on the remaining linear map.

    With ``sigma`` fixed, ``z_j = gamma_j (x_j - mean_k x_k) / sigma`` is linear in ``x``:
    ``z_j = sum_i x_i w_ij`` with ``w_ij = (delta_ij - 1/n) gamma_j / sigma``. The rule is
    Bach et al.'s epsilon rule on it,
    ``R_i = x_i sum_j w_ij R_j / (z_j + beta_j + epsilon sign(z_j + beta_j))``
    (``beta`` in the denominator only with ``bias``), computed without the matrix:
    ``R_i = x_i (gamma_i s_i - mean_j gamma_j s_j) / sigma``, ``s = R / denominator``.
    ``epsilon=0`` is LRP-0 (zeros replaced as :func:`safe` does). Without ``bias`` it
    conserves: ``sum_i R_i = sum_j R_j``. ``rms_scaling=True`` (deprecated in Keras) is
    refused.

    Parameters
    ----------
    epsilon : float
        The stabilizer (0: LRP-0).
    bias : bool
        Count ``beta`` in the denominator (the epsilon rule sets do, as for kernel layers).
    """

    def __init__(self, call, graph, epsilon: float = 0.0, bias: bool = False) -> None:
        super().__init__(call, graph)
        self.epsilon, self.bias = float(epsilon), bool(bias)
        layer = self.layer
        if getattr(layer, "rms_scaling", False):
            raise ValueError(
                f"layer {layer.name!r} (LayerNormalization) uses rms_scaling, which has no rule"
            )
        rank = len(call.inputs[0].shape)
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        self.axes = sorted(a % rank for a in axis)
        self.shape = [call.inputs[0].shape[a] if a in self.axes else 1 for a in range(rank)]

    def _param(self, value, dtype):
        return tf.reshape(tf.cast(value, dtype), self.shape)

    def backward(self, xs, y, r, stacks):
        (x,) = xs
        layer = self.layer
        mean, variance = tf.nn.moments(x, self.axes, keepdims=True)
        inv = tf.math.rsqrt(variance + tf.cast(layer.epsilon, x.dtype))
        gamma = self._param(layer.gamma, x.dtype) if layer.scale else None
        z = (x - mean) * inv
        if gamma is not None:
            z = z * gamma
        if self.bias and layer.center:
            z = z + self._param(layer.beta, x.dtype)
        if self.epsilon:
            sign = tf.cast(z >= 0, z.dtype) * 2 - 1
            s = over(r, z + sign * self.epsilon, stacks)
        else:
            s = over(r, safe(z), stacks)
        t = s if gamma is None else s * gamma
        t = t - tf.reduce_mean(t, self.axes, keepdims=True)
        return [times(x * inv, t, stacks)]


class Guided(Gradient):
    """Guided backprop at a ReLU: only positive relevance goes back through the ReLU's gradient."""

    def backward(self, xs, y, r, stacks):
        return super().backward(xs, y, tf.nn.relu(r), stacks)


class ZRule(Rule):
    """z-rule for layers without weights (``Add``, average pooling): ``R_i = x_i g_i(R / z)``.

    innvestigate's ``AddReverseLayer`` and ``AveragePoolingReverseLayer``; ``z`` is the layer's
    own output, ``g_i`` its gradient with respect to input ``i``.
    """

    def backward(self, xs, y, r, stacks):
        s = over(r, safe(y), stacks)
        if isinstance(self.layer, layers.Add) and all(x.shape == y.shape for x in xs):
            grads = [s] * len(xs)
        else:
            grads = per_head_gradients([y], xs, s, stacks)
        return [None if g is None else times(x, g, stacks) for x, g in zip(xs, grads)]


class _KernelRule(Rule):
    """A rule on a kernel layer (Dense, Conv, DepthwiseConv2D, SeparableConv2D)."""

    def __init__(self, call, graph) -> None:
        super().__init__(call, graph)
        if len(call.inputs) != 1:
            raise ValueError(f"layer {self.layer.name!r} has {len(call.inputs)} inputs; expected 1")
        self.map = KernelMap(self.layer)


class Epsilon(_KernelRule):
    """LRP-epsilon: ``R_i = x_i sum_j w_ij R_j / (z_j + eps sign(z_j))``, ``sign(0) = 1``.

    innvestigate's ``EpsilonRule``; ``z`` includes the bias when ``bias`` is true.
    """

    def __init__(self, call, graph, epsilon: float = 1e-7, bias: bool = True) -> None:
        super().__init__(call, graph)
        self.epsilon, self.bias = float(epsilon), bool(bias)

    def backward(self, xs, y, r, stacks):
        (x,) = xs
        m = self.map
        kernels = m.kernels()
        z = m.apply(x, kernels, m.bias() if self.bias else None)
        sign = tf.cast(z >= 0, z.dtype) * 2 - 1
        s = over(r, z + sign * self.epsilon, stacks)
        return [times(x, m.transpose(s, kernels, x, stacks), stacks)]


class AlphaBeta(_KernelRule):
    """LRP-alpha-beta: ``alpha`` times the activating part minus ``beta`` times the inhibiting part.

    innvestigate's ``AlphaBetaRule``: the activating part is ``x+ w+ + x- w-`` (plus ``b+ + b-``
    with ``bias``), the inhibiting part ``x+ w- + x- w+`` (plus ``b- + b+``). On a layer whose
    inputs are known to be >= 0 (``graph.non_negative_inputs``) the ``x-`` terms are exactly zero
    and are not computed.

    alpha1-beta0 (Bach et al. 2015, Eq. 60 with beta = 0) drops the relevance of a unit without an
    activating contribution: there innvestigate divides ``R_j`` by ``1e-7`` and multiplies by
    zeros. sglrp gives such a unit LRP-0 (``R_i = x_i w_ij R_j / z_j``, Bach et al. 2015, Eq. 56),
    which, as every contribution of that unit is <= 0, is the inhibiting part's share: the
    layer conserves. sglrp does so in the models innvestigate has no rules for
    (``pass_dropped``, set by ``Propagation``); on the others its numbers are innvestigate's.
    """

    pass_dropped = False

    def __init__(self, call, graph, alpha=1.0, beta=0.0, bias: bool = True) -> None:
        super().__init__(call, graph)
        self.alpha, self.beta, self.bias = alpha, beta, bool(bias)
        self.non_negative = graph.non_negative_inputs(self.layer)

    def _part(self, x_pos, x_neg, k1, k2, b1, b2, r, stacks):
        """``z = x+ k1 (+ b1) + x- k2 (+ b2)`` and its relevance (innvestigate's ``fn_tmp``)."""
        m = self.map
        z = m.apply(x_pos, k1, b1)
        if x_neg is None:
            z = z if b2 is None else z + b2  # x- k2 = 0
        else:
            z = z + m.apply(x_neg, k2, b2)
        s = over(r, safe(z), stacks)
        out = times(x_pos, m.transpose(s, k1, x_pos, stacks), stacks)
        if x_neg is not None:
            out = out + times(x_neg, m.transpose(s, k2, x_neg, stacks), stacks)
        return out, z

    def backward(self, xs, y, r, stacks):
        (x,) = xs
        m = self.map
        kernels = m.kernels()
        k_pos = [positive(k) for k in kernels]
        k_neg = [negative(k) for k in kernels]
        b_pos = b_neg = None
        if self.bias and m.use_bias:
            b = m.bias()
            b_pos, b_neg = positive(b), negative(b)
        x_pos = positive(x)
        x_neg = None if self.non_negative else negative(x)
        active, z = self._part(x_pos, x_neg, k_pos, k_neg, b_pos, b_neg, r, stacks)
        if not self.beta:
            if not self.pass_dropped:
                return [active]
            bias = m.bias() if self.bias and m.use_bias else None
            return [pass_on_dropped(m, x, kernels, bias, z, r, active, stacks)]
        inhibit, _ = self._part(x_pos, x_neg, k_neg, k_pos, b_neg, b_pos, r, stacks)
        return [active * self.alpha - inhibit * self.beta]


def pass_on_dropped(m, x, kernels, bias, z_active, r, out, stacks: int):
    """``out`` plus LRP-0's relevance of the units whose activating part ``z_active`` is 0.

    Such a unit's contributions are all <= 0, so LRP-0 distributes its ``R_j`` in proportion to
    them and nothing is dropped. Where no such unit holds relevance (the usual case: wide
    layers, or units that see only zeros) the extra products are not computed and ``out`` is
    returned as it is.
    """
    dropped = tf.equal(z_active, 0)
    held = tf.not_equal(r if stacks == 1 else split_heads(r, stacks), 0)

    def with_lrp0():
        z = m.apply(x, kernels, bias)
        far = tf.where(dropped, safe(z), tf.constant(float("inf"), z.dtype))  # R_j / inf = 0
        s = over(r, far, stacks)
        return out + times(x, m.transpose(s, kernels, x, stacks), stacks)

    return tf.cond(tf.reduce_any(tf.logical_and(dropped, held)), with_lrp0, lambda: out)


class ZPlusFast(_KernelRule):
    """z+ for non-negative inputs: ``R_i = x_i sum_j w+_ij R_j / sum_i x_i w+_ij``.

    innvestigate's ``ZPlusFastRule`` (bias ignored; Montavon et al. 2017, Eq. 13). Where
    ``z_j = sum_i x_i w+_ij`` is zero, innvestigate divides by ``1e-7`` and drops ``R_j``; with
    ``pass_dropped`` sglrp gives such a unit LRP-0 (:func:`pass_on_dropped`) and conserves.
    """

    pass_dropped = False

    def backward(self, xs, y, r, stacks):
        (x,) = xs
        m = self.map
        kernels = m.kernels()
        k_pos = [positive(k) for k in kernels]
        z = m.apply(x, k_pos)
        s = over(r, z, stacks, tf.math.divide_no_nan)
        out = times(x, m.transpose(s, k_pos, x, stacks), stacks)
        if not self.pass_dropped:
            return [out]
        return [pass_on_dropped(m, x, kernels, None, z, r, out, stacks)]


def _through(chain, image, affine: bool = True):
    """``image`` (1, ...) at a model input through the preprocessing ``chain`` of calls;
    ``affine=False`` leaves out ``Rescaling`` and ``Normalization`` (only padding and
    reshaping act)."""
    for call in chain:
        if affine or not isinstance(call.layer, (layers.Rescaling, layers.Normalization)):
            image = call.layer(image)
    return image


def _preprocessing(graph, call) -> list:
    """The calls of ``call``'s input chain (``graph.input_chain``) that change values."""
    chain = graph.input_chain(call) or []
    reshapes = (layers.Flatten, layers.Permute, layers.Reshape)
    return chain if any(not isinstance(c.layer, reshapes) for c in chain) else []


class Bounded(_KernelRule):
    """z^B for inputs in ``[low, high]``: ``z_ij = x_i w_ij - low w+_ij - high w-_ij``.

    innvestigate's ``BoundedRule`` (bias ignored). Behind a preprocessing chain inside the
    model (``Rescaling``, ``Normalization``, padding: ``graph.input_chain``) the bounds are the
    images of the user's raw ``low`` and ``high`` under that chain, per channel and position
    (the lower and the upper of the two, for a negative scale; 0 and 0 on padding), so the box
    is that of the raw input (Montavon et al. 2017, Sec. 4.2, with ``l_i``, ``h_i`` per input).
    """

    def __init__(self, call, graph, low: float = -1.0, high: float = 1.0) -> None:
        super().__init__(call, graph)
        self.low, self.high = float(low), float(high)
        self.graph = graph
        self.chain = _preprocessing(graph, call)

    def _bound_images(self, x):
        source = self.graph.values[id(self.chain[0].inputs[0])]
        one = tf.ones_like(source[:1])
        a = _through(self.chain, one * self.low)
        b = _through(self.chain, one * self.high)
        return tf.minimum(a, b), tf.maximum(a, b)

    def backward(self, xs, y, r, stacks):
        (x,) = xs
        m = self.map
        kernels = m.kernels()
        k_pos = [positive(k) for k in kernels]
        k_neg = [negative(k) for k in kernels]
        if self.chain:
            low, high = self._bound_images(x)
            a = m.apply(x, kernels)
            s = over(r, safe(a - (m.apply(low, k_pos) + m.apply(high, k_neg))), stacks)
            ga, gp, gn = m.transpose_many(s, [kernels, k_pos, k_neg], x, stacks)
            return [times(x, ga, stacks) - (low * gp + high * gn)]
        # The low and high images are the same for every sample: computed once, broadcast.
        one = tf.ones(tf.concat([[1], tf.shape(x)[1:]], 0), x.dtype)
        a = m.apply(x, kernels)
        b = m.apply(one * self.low, k_pos)
        c = m.apply(one * self.high, k_neg)
        s = over(r, safe(a - (b + c)), stacks)
        if m.kind == "separable":  # low w+ + high w- is no separable kernel pair
            ga, gb, gc = m.transpose_many(s, [kernels, k_pos, k_neg], x, stacks)
            bounds = gb * self.low + gc * self.high
        else:  # low T(w+) s + high T(w-) s = T(low w+ + high w-) s, with x's in one product
            k_bounds = [p * self.low + n * self.high for p, n in zip(k_pos, k_neg)]
            ga, bounds = m.transpose_many(s, [kernels, k_bounds], x, stacks)
        return [times(x, ga, stacks) - bounds]


class InputIndependent(_KernelRule):
    """Rules whose weights ignore the input: ``R_i = sum_j v_ij R_j / sum_i v_ij``.

    innvestigate's ``WSquareRule`` family (bias ignored; ``v`` = the transformed kernels).

    Behind a preprocessing chain with padding (``graph.input_chain``) the padded positions
    are no inputs: ``v`` is zero there.
    """

    def __init__(self, call, graph) -> None:
        super().__init__(call, graph)
        self.graph = graph
        self.chain = _preprocessing(graph, call)

    def transform(self, kernel):
        raise NotImplementedError

    def backward(self, xs, y, r, stacks):
        (x,) = xs
        m = self.map
        kernels = [self.transform(k) for k in m.kernels()]
        if self.chain:
            source = self.graph.values[id(self.chain[0].inputs[0])]
            one = _through(self.chain, tf.ones_like(source[:1]), affine=False)
            s = over(r, safe(m.apply(one, kernels)), stacks)
            return [one * m.transpose(s, kernels, x, stacks)]
        one = tf.ones(tf.concat([[1], tf.shape(x)[1:]], 0), x.dtype)
        s = over(r, safe(m.apply(one, kernels)), stacks)
        return [m.transpose(s, kernels, x, stacks)]


class Flat(InputIndependent):
    """The flat rule: every weight one (innvestigate's ``FlatRule``)."""

    def transform(self, kernel):
        return tf.ones_like(kernel)


class WSquare(InputIndependent):
    """The w^2 rule of Deep Taylor decomposition (innvestigate's ``WSquareRule``)."""

    def transform(self, kernel):
        return kernel**2


class WPlus(InputIndependent):
    """The w+ input rule of Deep Taylor decomposition (sglrp's ``WPlusRule``).

    On a SeparableConv2D both kernels are replaced by their positive part.
    """

    def transform(self, kernel):
        return tf.nn.relu(kernel)
