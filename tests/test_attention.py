"""The Keras 3 engine's transformer rules: CP-LRP through MultiHeadAttention against float64 NumPy
(Ali et al. 2022, eq. 8), the class token and position embedding as biases, conservation on a
bias-free ViT, refusals."""

from __future__ import annotations

import numpy as np
import pytest

import sglrp

if sglrp.engine != "keras3":  # its modules import Keras 3
    pytest.skip("only for the keras3 engine", allow_module_level=True)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from sglrp.engines.keras3 import propagate  # noqa: E402
from sglrp.engines.keras3.attention import Attention, ClassTokenRule, PositionRule  # noqa: E402
from sglrp.engines.keras3.graph import Graph  # noqa: E402
from sglrp.tokens import ClassToken, PositionEmbedding  # noqa: E402

layers = keras.layers
T, D, HEADS, KEY = 5, 6, 2, 3


def _attention_model(use_bias=True, cross=False, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((T, D), dtype="float64")
    mha = layers.MultiHeadAttention(HEADS, KEY, use_bias=use_bias, dtype="float64")
    if cross:
        kv = keras.Input((T + 2, D), dtype="float64")
        model = keras.Model([x, kv], mha(x, kv))
    else:
        model = keras.Model(x, mha(x, x))
    rng = np.random.default_rng(seed)
    mha.set_weights([rng.normal(0, 0.5, w.shape) for w in mha.get_weights()])
    return model, mha


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference(mha, q_in, kv_in, r, epsilon, bias):
    """Ali et al. 2022 eq. 8 in float64: A constant, epsilon on y = A (x W_v + b_v) W_o + b_o."""
    w = mha.get_weights()
    wq, bq, wk, bk, wv, bv, wo, bo = w if len(w) == 8 else (
        w[0], 0, w[1], 0, w[2], 0, w[3], 0)  # fmt: skip
    q = np.einsum("ntd,dhk->nthk", q_in, wq) + bq
    k = np.einsum("nsd,dhk->nshk", kv_in, wk) + bk
    a = _softmax(np.einsum("nthk,nshk->nhts", q, k) / np.sqrt(KEY))
    # the probabilities are the forward pass's (Keras' softmax differs from this one by ~1e-9)
    keras_a = mha(q_in, kv_in, return_attention_scores=True)[1].numpy()
    assert np.allclose(a, keras_a, rtol=1e-7)
    a = keras_a
    v = np.einsum("nsd,dhk->nshk", kv_in, wv) + bv
    o = np.einsum("nhts,nshk->nthk", a, v)

    def stab(z):
        return z + epsilon * np.where(z >= 0, 1.0, -1.0)

    z = np.einsum("nthk,hko->nto", o, wo) + (bo if bias else 0)
    r_o = o * np.einsum("nto,hko->nthk", r / stab(z), wo)
    # o[n,t,h,k] = sum_s a[n,h,t,s] v[n,s,h,k]: R_v[s] = v[s] sum_t a[t,s] R_o[t] / o[t]
    r_v = v * np.einsum("nhts,nthk->nshk", a, r_o / stab(o))
    z = v if bias else v - bv
    return kv_in * np.einsum("nshk,dhk->nsd", r_v / stab(z), wv)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("stacks", [1, 2])
def test_attention_rule_equals_numpy(bias, stacks):
    model, mha = _attention_model()
    graph = Graph(model)
    (call,) = graph.calls
    rule = Attention(call, graph, epsilon=0.01, bias=bias)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, T, D))
    y = mha(x, x).numpy()
    r = rng.normal(size=(stacks * 3, T, D))
    x, r = np.asarray(x), np.asarray(r)
    out = rule.backward([tf.constant(x), tf.constant(x)], tf.constant(y), tf.constant(r), stacks)
    assert sum(o is not None for o in out) == 1  # the value input only; queries and keys get none
    got = next(o for o in out if o is not None).numpy()
    want = np.concatenate(
        [_reference(mha, x, x, r[3 * s : 3 * s + 3], 0.01, bias) for s in range(stacks)]
    )
    assert np.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_cross_attention_sends_relevance_to_the_value_input_only():
    model, mha = _attention_model(cross=True)
    graph = Graph(model)
    (call,) = graph.calls
    rng = np.random.default_rng(2)
    q, kv = rng.normal(size=(2, T, D)), rng.normal(size=(2, T + 2, D))
    r = rng.normal(size=(2, T, D))
    out = Attention(call, graph, epsilon=1e-9).backward([q, kv], mha(q, kv), r, 1)
    assert out[0] is None
    assert np.allclose(out[1].numpy(), _reference(mha, q, kv, r, 1e-9, True), rtol=1e-10)


def test_attention_conserves_without_biases():
    model, mha = _attention_model(use_bias=False, seed=3)
    graph = Graph(model)
    (call,) = graph.calls
    x = np.random.default_rng(4).normal(size=(2, T, D))
    r = np.random.default_rng(5).normal(size=(2, T, D))
    out = Attention(call, graph, epsilon=1e-12).backward([x, x], mha(x, x), r, 1)
    got = next(o for o in out if o is not None).numpy()
    assert np.allclose(got.reshape(2, -1).sum(1), r.reshape(2, -1).sum(1), rtol=1e-8)


def _token_model():
    x = keras.Input((T, D), dtype="float64")
    tokens = ClassToken(dtype="float64")(x)
    out = PositionEmbedding(dtype="float64")(tokens)
    model = keras.Model(x, out)
    rng = np.random.default_rng(6)
    for layer in model.layers[1:]:
        layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    return model


def test_class_token_and_position_embedding_are_biases():
    model = _token_model()
    graph = Graph(model)
    token_call, position_call = graph.calls
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, T, D))
    tokens = token_call.layer(x).numpy()
    e = position_call.layer.get_weights()[0]
    assert np.allclose(tokens[:, 1:], x) and np.allclose(tokens[:, :1], token_call.layer.token)
    r = rng.normal(size=(4, T + 1, D))  # two heads
    y = tokens + e
    x, tokens, y, r = (tf.constant(v) for v in (x, tokens, y, r))
    got = PositionRule(position_call, graph, epsilon=0.1).backward([tokens], y, r, 2)[0].numpy()
    x, tokens, y, r = (v.numpy() for v in (x, tokens, y, r))
    stab = y + 0.1 * np.where(y >= 0, 1.0, -1.0)
    assert np.allclose(got, np.concatenate([tokens, tokens]) * r / np.concatenate([stab, stab]))
    kept = PositionRule(position_call, graph, bias=False).backward([tokens], y, r, 2)[0]
    assert np.allclose(kept, r)
    (to_patches,) = ClassTokenRule(token_call, graph).backward([x], tokens, r, 2)
    assert np.allclose(to_patches, r[:, 1:])


def test_gated_or_subclassed_attention_is_refused():
    x = keras.Input((T, D))
    h = layers.MultiHeadAttention(2, 3, use_gate=True, name="gated")(x, x)
    gated = keras.Model(x, layers.Dense(3)(layers.GlobalAveragePooling1D()(h)))
    with pytest.raises(ValueError, match="'gated'.*gate"):
        propagate.Propagation(gated, "epsilon", [lambda z, t: z * t])
