"""A SeparableConv2D is the two convolutions it is: every method gives the maps of the same
network written as DepthwiseConv2D + 1x1 Conv2D (canonize.py splits it, for both engines)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import SINGLE_INPUT_METHODS, default_kwargs

import sglrp
from sglrp.canonize import canonize

layers = tf.keras.layers


def two_spellings(use_bias, bn=False, multiplier=2):
    """The same net with SeparableConv2D layers, and with DepthwiseConv2D + 1x1 Conv2D."""
    rng = np.random.default_rng(14)
    inputs = tf.keras.Input((8, 8, 3))
    h = layers.SeparableConv2D(4, 3, depth_multiplier=multiplier, activation="relu",
                               use_bias=use_bias, name="sep1")(inputs)  # fmt: skip
    h = layers.SeparableConv2D(5, 3, padding="same", strides=2, use_bias=use_bias, name="sep2")(h)
    if bn:
        h = layers.BatchNormalization(name="bn")(h)
    h = layers.ReLU()(h)
    out = layers.Dense(4, use_bias=use_bias, name="logits")(layers.GlobalAveragePooling2D()(h))
    separable = tf.keras.Model(inputs, out)
    separable.set_weights([rng.normal(0, 0.5, w.shape) for w in separable.get_weights()])
    if bn:
        bn_layer = separable.get_layer("bn")
        g, b, m, v = bn_layer.get_weights()
        bn_layer.set_weights([g, b, m, np.abs(v) + 0.5])

    inputs = tf.keras.Input((8, 8, 3))
    h = layers.DepthwiseConv2D(3, depth_multiplier=multiplier, use_bias=False, name="dw1")(inputs)
    h = layers.Conv2D(4, 1, activation="relu", use_bias=use_bias, name="pw1")(h)
    h = layers.DepthwiseConv2D(3, padding="same", strides=2, use_bias=False, name="dw2")(h)
    h = layers.Conv2D(5, 1, use_bias=use_bias or bn, name="pw2")(h)
    h = layers.ReLU()(h)
    out = layers.Dense(4, use_bias=use_bias, name="logits")(layers.GlobalAveragePooling2D()(h))
    split = tf.keras.Model(inputs, out)
    w = separable.get_weights()
    for k in (1, 2):
        sep = separable.get_layer(f"sep{k}").get_weights()
        split.get_layer(f"dw{k}").set_weights(sep[:1])
        pw = sep[1:]
        if k == 2 and bn:  # fold the BN by hand in float64
            g, b, m, v = (a.astype(np.float64) for a in separable.get_layer("bn").get_weights())
            scale = g / np.sqrt(v + separable.get_layer("bn").epsilon)
            bias = pw[1] if use_bias else 0.0
            pw = [pw[0] * scale, (bias - m) * scale + b]
        split.get_layer(f"pw{k}").set_weights(pw)
    split.get_layer("logits").set_weights(w[-2:] if use_bias else w[-1:])
    return separable, split


#: One method per rule set (the gradient methods see one function either way).
RULES = [
    "lrp", "lrp.epsilon", "lrp.z_plus", "lrp.sequential_preset_a_flat",
    "sglrp.sequential_preset_b", "sglrp.epsilon_plus_box", "guided_backprop", "smoothgrad",
]  # fmt: skip
assert set(RULES) <= set(SINGLE_INPUT_METHODS)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(15).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)


def test_separable_convolution_is_split_in_two(x):
    separable, _ = two_spellings(use_bias=True, bn=True)
    new = canonize(separable)
    kinds = [(type(layer).__name__, layer.name) for layer in new.layers]
    assert ("DepthwiseConv2D", "sep1_depthwise") in kinds and ("Conv2D", "sep1") in kinds
    assert ("DepthwiseConv2D", "sep2_depthwise") in kinds and ("Conv2D", "sep2") in kinds
    assert not any(kind in ("SeparableConv2D", "BatchNormalization") for kind, _ in kinds)
    np.testing.assert_allclose(new(x).numpy(), separable(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_bias,bn", [(False, False), (True, True)])
def test_both_spellings_give_the_same_maps(use_bias, bn, x):
    separable, split = two_spellings(use_bias, bn)
    np.testing.assert_allclose(separable(x).numpy(), split(x).numpy(), rtol=1e-5, atol=1e-5)
    methods = RULES if not use_bias else ["lrp.epsilon", "sglrp"]
    for method in methods:
        kwargs = default_kwargs(method)
        got = sglrp.create_analyzer(method, separable, **kwargs).analyze(x, target=[1, 2])
        expected = sglrp.create_analyzer(method, split, **kwargs).analyze(x, target=[1, 2])
        scale = max(float(np.ptp(expected)), 1e-12)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale, err_msg=method)
