"""Relevance through a Vision Transformer's own layers: attention, class token, position embedding.

``MultiHeadAttention`` follows CP-LRP (Ali et al., *XAI for Transformers: Better Explanations
through Conservative Propagation*, ICML 2022, sec. 3.2 and eq. 8): the attention probabilities
``A = softmax(q k^T / sqrt(d))`` are treated as constants, so that with ``A`` fixed the layer is
linear in its value input, a chain of three linear maps

    v = x W_v + b_v,   o_h = A_h v_h,   y = sum_h o_h W_o,h + b_o

and each is reversed with LRP-epsilon (Bach et al. 2015; the ``R_i = x_i sum_j w_ij R_j /
(z_j + eps sign(z_j))`` of ``rules.Epsilon``). The query and key inputs receive no relevance (the
scores are constants, Ali et al. eq. 8). The rule sets of the epsilon family include the biases
in ``z`` (they absorb their share) with their own ``epsilon``; the bias-free ones (Deep Taylor,
z+) use LRP-0 with a ``1e-7`` stabilizer and leave the biases out of ``z``, as their kernel
rules do, so that the relevance is conserved.

:class:`sglrp.tokens.ClassToken` and :class:`sglrp.tokens.PositionEmbedding` add learned
constants: they are biases. The class token's relevance is absorbed; the position embedding is the
identity map with bias ``E``, reversed like a kernel layer of the rule set (``x R / (x + E + eps
sign)`` with the bias, ``R`` unchanged without).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ...tokens import ClassToken, PositionEmbedding
from . import rules as R

__all__ = ["ATTENTION_LAYERS", "Attention", "ClassTokenRule", "PositionRule", "attention_rules"]

#: The transformer layers this module gives rules for.
ATTENTION_LAYERS = (keras.layers.MultiHeadAttention, ClassToken, PositionEmbedding)

#: rule set -> (epsilon, whether z includes the biases); ``None``: the set's ``epsilon`` option.
_LINEAR = {
    "bounded_deep_taylor": (R.SAFE_EPS, False),
    "z_plus": (R.SAFE_EPS, False),
    "epsilon": (None, True),
    "preset_a_flat": (None, True),
    "preset_b_flat": (None, True),
    "epsilon_plus_box": (None, True),
}
_DEFAULT_EPSILON = {"epsilon": 1e-7}  # the others' default epsilon is 0.1


def _stabilized(z, epsilon: float):
    """``z + eps sign(z)`` with ``sign(0) = +1`` (innvestigate's convention)."""
    return z + (tf.cast(z >= 0, z.dtype) * 2 - 1) * epsilon


def check_attention(layer) -> None:
    """Raise a ValueError if the CP-LRP rule is not defined for this ``MultiHeadAttention``."""
    name = f"layer {layer.name!r} (MultiHeadAttention)"
    if type(layer) is not keras.layers.MultiHeadAttention:
        raise ValueError(
            f"{name} is a subclass ({type(layer).__name__}); the attention rule is defined for "
            "Keras' own MultiHeadAttention only"
        )
    if getattr(layer, "_use_gate", False):
        raise ValueError(f"{name} has a gate (use_gate=True); no rule is defined for it")
    if tuple(layer.attention_axes or (1,)) != (1,):
        raise ValueError(
            f"{name} attends over axes {layer.attention_axes}; the rule is defined for token "
            "sequences (N, T, D) with attention over the tokens"
        )


class Attention(R.Rule):
    """CP-LRP through ``MultiHeadAttention``: attention probabilities constant, epsilon on the
    value projection, the weighted sum over tokens and the output projection (Ali et al. 2022,
    eq. 8).

    Parameters
    ----------
    epsilon : float
        Stabilizer of every denominator.
    bias : bool
        Whether the projections' biases are part of ``z`` (and absorb relevance).
    """

    def __init__(self, call, graph, epsilon: float = 1e-7, bias: bool = True) -> None:
        super().__init__(call, graph)
        check_attention(self.layer)
        self.epsilon, self.bias = float(epsilon), bool(bias)
        args = list(call.args) + [None] * (3 - len(call.args))
        value = args[1] if args[1] is not None else call.kwargs.get("value")
        for t in call.inputs:
            if len(t.shape) != 3:
                raise ValueError(
                    f"layer {self.layer.name!r} (MultiHeadAttention) reads a tensor of shape "
                    f"{tuple(t.shape)}; the rule is defined for tokens (N, T, D)"
                )
        # relevance goes to the value input (one slot, whichever it shares a tensor with)
        self.value_slot = next(i for i, t in enumerate(call.inputs) if t is value)

    def _forward(self, xs):
        """Attention probabilities (N, heads, T, S), the projected values and the value input."""
        call = self.call
        values = {id(t): x for t, x in zip(call.inputs, xs)}

        def fill(v):
            return values[id(v)] if isinstance(v, keras.KerasTensor) else v

        args, kwargs = keras.tree.map_structure(fill, (call.args, call.kwargs))
        kwargs = {**kwargs, "return_attention_scores": True}
        _, probabilities = self.layer(*args, **kwargs)
        x = xs[self.value_slot]
        v = self.layer.value_dense(x)
        return tf.stop_gradient(probabilities), v, x

    def backward(self, xs, y, r, stacks):
        layer, eps = self.layer, self.epsilon
        a, v, x = self._forward(xs)
        w_v, w_o = layer.value_dense.kernel, layer.output_dense.kernel  # (D, H, d), (H, d, D')
        # y = o W_o + b_o
        o = tf.einsum("nhts,nshd->nthd", a, v)
        z = tf.einsum("nthd,hdo->nto", o, w_o)
        if self.bias and layer.use_bias:
            z = z + layer.output_dense.bias
        s = R.over(r, _stabilized(z, eps), stacks)
        r_o = R.times(o, tf.einsum("nto,hdo->nthd", s, w_o), stacks)
        # o = A v, A constant
        s = R.split_heads(R.over(r_o, _stabilized(o, eps), stacks), stacks)
        r_v = R.times(v, R.merge_heads(tf.einsum("nhts,knthd->knshd", a, s)), stacks)
        # v = x W_v + b_v
        z = v if self.bias or not layer.use_bias else v - layer.value_dense.bias
        s = R.over(r_v, _stabilized(z, eps), stacks)
        r_x = R.times(x, tf.einsum("nshd,ehd->nse", s, w_v), stacks)
        return [r_x if i == self.value_slot else None for i in range(len(xs))]


class ClassTokenRule(R.Rule):
    """The class token is a learned constant (a bias): its relevance is absorbed, the patch
    tokens keep theirs."""

    def backward(self, xs, y, r, stacks):
        return [r[:, 1:]]


class PositionRule(R.Rule):
    """``y = x + E``, the identity with bias ``E``: ``x R / (y + eps sign(y))`` when the rule set
    counts biases, ``R`` unchanged when it leaves them out."""

    def __init__(self, call, graph, epsilon: float = 1e-7, bias: bool = True) -> None:
        super().__init__(call, graph)
        self.epsilon, self.bias = float(epsilon), bool(bias)

    def backward(self, xs, y, r, stacks):
        if not self.bias:
            return [r]
        (x,) = xs
        return [R.times(x, R.over(r, _stabilized(y, self.epsilon), stacks), stacks)]


def _is(cls):
    def condition(call, graph) -> bool:
        return isinstance(call.layer, cls)

    return condition


def attention_rules(rule_set: str, options: dict) -> list:
    """The (condition, rule) pairs of this module for ``rule_set`` (empty for gradient sets).

    Parameters
    ----------
    rule_set : str
        A name of ``propagate.RULE_SETS``.
    options : dict
        The rule set's options (``epsilon`` is read where the set has one).
    """
    if rule_set not in _LINEAR:
        return []
    epsilon, bias = _LINEAR[rule_set]
    if epsilon is None:
        epsilon = options.get("epsilon", _DEFAULT_EPSILON.get(rule_set, 0.1))

    def attention(call, graph):
        return Attention(call, graph, epsilon=epsilon, bias=bias)

    def position(call, graph):
        return PositionRule(call, graph, epsilon=epsilon, bias=bias)

    return [
        (_is(keras.layers.MultiHeadAttention), attention),
        (_is(ClassToken), ClassTokenRule),
        (_is(PositionEmbedding), position),
    ]
