"""Models built under the ``mixed_float16`` policy (float16 computations, float32 variables).

The relevance rules propagate in float32 from the float32 variables (their maps equal a
float32 copy's); on the Keras 3 engine the gradient methods go through the float16 layers and
agree with the copy within the precision of float16 (the innvestigate engine analyzes the
float32 copy with every method).
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import SINGLE_INPUT_METHODS, default_kwargs

import sglrp
from sglrp.keras_graph import KERAS_MAJOR

layers = tf.keras.layers

#: The methods that differentiate the model's own (float16) layers.
GRADIENT_METHODS = {"smoothgrad", "integrated_gradients", "grad_cam", "guided_grad_cam"}


def _policy(name):
    if KERAS_MAJOR >= 3:
        import keras

        keras.mixed_precision.set_global_policy(name)
    else:
        tf.keras.mixed_precision.set_global_policy(name)


def build(float32_logits):
    inputs = tf.keras.Input((8, 8, 2))
    h = layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    h = layers.BatchNormalization(name="bn")(layers.Conv2D(4, 3, name="conv2")(h))
    h = layers.MaxPooling2D(name="pool")(layers.ReLU(name="relu")(h))
    dtype = "float32" if float32_logits else None
    out = layers.Dense(5, name="logits", dtype=dtype)(layers.Flatten()(h))
    return tf.keras.Model(inputs, out)


@pytest.fixture(scope="module", params=[True, False], ids=["float32_logits", "float16_logits"])
def models(request):
    _policy("mixed_float16")
    try:
        mixed = build(request.param)
    finally:
        _policy("float32")
    plain = build(True)
    rng = np.random.default_rng(16)
    weights = [rng.normal(0, 0.4, w.shape).astype(np.float32) for w in mixed.get_weights()]
    weights[-3] = np.abs(weights[-3]) + 0.5  # the BN's moving variance
    mixed.set_weights(weights)
    plain.set_weights(weights)
    assert mixed.get_layer("conv1").compute_dtype == "float16"
    return mixed, plain


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(17).uniform(0, 1, (2, 8, 8, 2)).astype(np.float32)


def test_every_method_works_in_mixed_precision(models, x):
    mixed, plain = models
    for method in SINGLE_INPUT_METHODS:
        kwargs = default_kwargs(method)
        got = sglrp.create_analyzer(method, mixed, **kwargs).analyze(x, target=[1, 4])
        expected = sglrp.create_analyzer(method, plain, **kwargs).analyze(x, target=[1, 4])
        assert got.dtype == np.float32 and np.isfinite(got).all(), method
        scale = max(float(np.ptp(expected)), 1e-12)
        tolerance = 1e-2 if method in GRADIENT_METHODS else 1e-5
        np.testing.assert_allclose(
            got, expected, rtol=0, atol=tolerance * scale, err_msg=method
        )


@pytest.mark.engine("keras3")  # the innvestigate engine analyzes the float32 copy
def test_the_gradient_methods_use_the_float16_layers(models, x):
    mixed, plain = models
    ig_mixed = sglrp.IG(mixed, steps=4).analyze(x, target=1)
    ig_plain = sglrp.IG(plain, steps=4).analyze(x, target=1)
    assert not np.array_equal(ig_mixed, ig_plain)  # float16 rounding shows
    lrp_mixed = sglrp.LRPE(mixed).predict_logits(x)
    np.testing.assert_allclose(lrp_mixed, plain(x).numpy(), rtol=1e-5, atol=1e-6)
