"""The Keras 3 engine's own behaviour: one trace, the model's current weights, clear refusals,
exact transposes. Keras 3 only (the numbers themselves: ``test_engine_equality.py``)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import sglrp

if sglrp.engine != "keras3":  # its modules import Keras 3
    pytest.skip("only for the keras3 engine", allow_module_level=True)

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engine_models as em  # noqa: E402
import tensorflow as tf  # noqa: E402

from sglrp import heads  # noqa: E402
from sglrp.engines.keras3 import kernels, propagate  # noqa: E402

Propagation = propagate.Propagation
layers = keras.layers
RULES = sorted(propagate.RULE_SETS)


def conv_net():
    model = em.build(em.conv_net(), keras)
    em.set_weights(model)
    return model


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 8, 8, 2)).astype(np.float32)


@pytest.mark.parametrize("rule", RULES)
def test_one_trace_for_every_target_and_batch_size(rule):
    analysis = Propagation(conv_net(), rule, [heads.output, heads.contrastive_dual])
    for n, target in [(1, 0), (3, 4), (5, 2)]:
        (target_maps, dual_maps) = analysis([images(n)], np.eye(5, dtype=np.float32)[[target] * n])
        assert target_maps[0].shape == dual_maps[0].shape == (n, 8, 8, 2)
        assert np.isfinite(target_maps[0]).all() and np.isfinite(dual_maps[0]).all()
    assert analysis._analyze.experimental_get_tracing_count() == 1


def test_batch_equals_per_sample():
    analysis = Propagation(conv_net(), "bounded_deep_taylor", [heads.softmax_gradient_target])
    x = images(4)
    selection = np.eye(5, dtype=np.float32)[[0, 1, 2, 3]]
    batch = analysis([x], selection)[0][0]
    single = np.concatenate(
        [analysis([x[i : i + 1]], selection[i : i + 1])[0][0] for i in range(4)]
    )
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-7)


def test_follows_the_current_weights():
    model = conv_net()
    analysis = Propagation(model, "preset_b_flat", [heads.output])
    x, selection = images(2), np.eye(5, dtype=np.float32)[[1, 3]]
    before = analysis([x], selection)[0][0]
    em.set_weights(model, seed=1)
    after = analysis([x], selection)[0][0]
    fresh = Propagation(model, "preset_b_flat", [heads.output])([x], selection)[0][0]
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, fresh)


def test_weights_unchanged_by_analysis():
    model = conv_net()
    weights = [w.copy() for w in model.get_weights()]
    for rule in RULES:
        Propagation(model, rule, [heads.output])([images(2)], np.eye(5, dtype=np.float32)[[0, 1]])
    for w, v in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(w, v)


def test_logits_equal_the_model():
    model = conv_net()
    x = images(3)
    got = Propagation(model, "gradient", [heads.gradient]).logits([x])
    np.testing.assert_allclose(got, model.predict_on_batch(x), rtol=1e-6, atol=1e-6)


def test_sequential_model():
    model = keras.Sequential(
        [keras.Input((6,)), layers.Dense(4, activation="relu"), layers.Dense(3)]
    )
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6)).astype(np.float32)
    (maps,) = Propagation(model, "epsilon", [heads.output])(
        [x], np.eye(3, dtype=np.float32)[[0, 2]]
    )
    assert maps[0].shape == (2, 6)


def _model_with(layer):
    x = keras.Input((6, 6, 2))
    y = layers.Conv2D(3, 3, activation="relu", name="conv")(x)
    y = layer(y)
    y = layers.Flatten()(y)
    return keras.Model(x, layers.Dense(4, name="logits")(y))


@pytest.mark.parametrize(
    "layer, words",
    [
        (layers.BatchNormalization(name="bn"), ["'bn'", "BatchNormalization", "canonize"]),
        (layers.UnitNormalization(name="unit"), ["'unit'", "UnitNormalization", "not supported"]),
        (
            lambda y: layers.Conv2D(6, 1, groups=3, name="grouped")(layers.Conv2D(6, 1)(y)),
            ["'grouped'", "grouped", "several input channels per group"],
        ),
        (layers.Activation("sigmoid", name="sigmoid"), ["'sigmoid'", "Activation", "ReLU"]),
        (layers.PReLU(name="prelu"), ["'prelu'", "PReLU"]),
    ],
)
def test_unsupported_layer_named_at_construction(layer, words):
    model = _model_with(layer)
    with pytest.raises(ValueError) as info:
        Propagation(model, "bounded_deep_taylor", [heads.output])
    for word in words:
        assert word in str(info.value)


def test_relu_only_rules_refuse_other_activations_but_lrp_rules_do_not():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 6, 2)).astype(np.float32)
    model = _model_with(layers.Activation("sigmoid"))
    for rule in ("bounded_deep_taylor", "z_plus", "guided_backprop"):
        with pytest.raises(ValueError, match="ReLU"):
            Propagation(model, rule, [heads.output])
    for rule in ("epsilon", "preset_a_flat", "gradient"):
        Propagation(model, rule, [heads.output])([x], np.eye(4, dtype=np.float32)[[0, 1]])
    # tanh: the identity rule in Deep Taylor and z+; guided backprop stays ReLU-only
    model = _model_with(layers.Activation("tanh"))
    with pytest.raises(ValueError, match="ReLU"):
        Propagation(model, "guided_backprop", [heads.output])
    for rule in ("bounded_deep_taylor", "z_plus", "epsilon"):
        Propagation(model, rule, [heads.output])([x], np.eye(4, dtype=np.float32)[[0, 1]])


def test_unknown_rule_set_and_option():
    with pytest.raises(KeyError, match="bounded_deep_taylor"):
        Propagation(conv_net(), "nope", [heads.output])
    with pytest.raises(ValueError, match="epsilon"):
        Propagation(conv_net(), "z_plus", [heads.output], epsilon=0.1)


TRANSPOSE_CASES = [
    (lambda: layers.Dense(5), (7,)),
    (lambda: layers.Conv2D(4, 3, padding="same"), (9, 9, 3)),
    (lambda: layers.Conv2D(4, 3, strides=2, padding="same"), (9, 9, 3)),
    (lambda: layers.Conv2D(4, (3, 2), strides=(2, 1), padding="valid"), (10, 9, 3)),
    (lambda: layers.Conv2D(4, 3, dilation_rate=2, padding="same"), (9, 9, 3)),
    (lambda: layers.Conv1D(4, 3, padding="causal"), (9, 3)),
    (lambda: layers.Conv1D(4, 3, padding="same", strides=2), (9, 3)),
    (lambda: layers.Conv1D(4, 3, padding="causal", dilation_rate=2), (9, 3)),
    (lambda: layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), (9, 9, 3)),
    (lambda: layers.DepthwiseConv2D(3, strides=2, padding="valid"), (10, 10, 3)),
    (
        lambda: layers.SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2),
        (9, 9, 3),
    ),
]


@pytest.mark.parametrize("make, shape", TRANSPOSE_CASES)
def test_kernel_map_and_its_transpose(make, shape):
    # The layer's own output, and the transpose of three stacked heads = tf.gradients per head.
    rng = np.random.default_rng(0)
    layer = make()
    x = tf.constant(rng.normal(size=(2, *shape)).astype(np.float32))
    y = layer(x)
    m = kernels.KernelMap(layer)
    np.testing.assert_allclose(m.apply(x, m.kernels(), m.bias()), y, rtol=1e-6, atol=1e-6)
    s = tf.constant(rng.normal(size=(6, *y.shape[1:])).astype(np.float32))

    @tf.function
    def both(x, s):
        got = m.transpose(s, m.kernels(), x, 3)
        z = m.apply(x, m.kernels())
        expected = tf.concat([tf.gradients(z, x, part)[0] for part in tf.split(s, 3)], 0)
        return got, expected

    got, expected = both(x, s)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
