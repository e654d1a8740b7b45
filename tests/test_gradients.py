"""Guided backprop, SmoothGrad and Integrated Gradients against NumPy, for the requested target
(the original explained the maximally activated class whatever target it was given)."""

import numpy as np
import pytest
from conftest import dense_forward, dense_net, dense_params

import sglrp

TARGETS = [0, 2, 4, 1]


@pytest.fixture(scope="module")
def net():
    return dense_net(softmax=True)


def gradient(model, x, t, guided=False):
    """d z_t / d x of a dense_net in float64; ``guided`` zeroes negative signals at each ReLU."""
    acts = dense_forward(model, x)
    params = dense_params(model)
    g = params[-1][0][:, t]
    for i in range(len(params) - 2, -1, -1):
        w, b = params[i]
        mask = (acts[i] @ w + b) > 0
        g = w @ ((np.maximum(g, 0) if guided else g) * mask)
    return g


def test_guided_backprop(net, vectors):
    got = sglrp.GBP(net).analyze(vectors, target=TARGETS)
    expected = [gradient(net, x, t, guided=True) for x, t in zip(vectors, TARGETS)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_smoothgrad_averages_gradients_of_the_target(net, vectors):
    n, level, seed = 5, 0.2, 3
    got = sglrp.SG(net, augment_by_n=n, noise_level=level, seed=seed).analyze(
        vectors, target=TARGETS
    )
    expected = []
    for x, t in zip(vectors, TARGETS):
        noise = np.random.default_rng(seed).normal(0, level * (x.max() - x.min()), (n, *x.shape))
        samples = (x[None] + noise).astype(np.float32)
        expected.append(np.mean([gradient(net, s, t) for s in samples], axis=0))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_reproducible_and_respects_the_target(net, vectors):
    sg = sglrp.SG(net, augment_by_n=4, noise_scale=0.3)
    np.testing.assert_array_equal(sg.analyze(vectors, target=1), sg.analyze(vectors, target=1))
    assert not np.allclose(sg.analyze(vectors, target=1), sg.analyze(vectors, target=3))


def test_integrated_gradients_midpoint_sum(net, vectors):
    steps = 7
    baseline = np.full(6, 0.1, np.float32)
    got = sglrp.IG(net, steps=steps, reference_inputs=baseline).analyze(vectors, target=TARGETS)
    alphas = (np.arange(steps) + 0.5) / steps
    expected = [
        (x - baseline)
        * np.mean([gradient(net, baseline + a * (x - baseline), t) for a in alphas], axis=0)
        for x, t in zip(vectors, TARGETS)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness(cnn, images):
    ig = sglrp.IG(cnn, steps=256)
    got = ig.analyze(images, target=TARGETS).reshape(len(images), -1).sum(1)
    logits = ig.predict_logits(images)[np.arange(len(images)), TARGETS]
    at_zero = ig.predict_logits(np.zeros_like(images))[np.arange(len(images)), TARGETS]
    np.testing.assert_allclose(got, logits - at_zero, rtol=2e-2, atol=2e-3)


def _variable_and_fixed(size):
    """A GAP CNN on inputs of variable size, and the same net with the size fixed."""
    import tensorflow as tf

    layers = tf.keras.layers

    def build(shape):
        inputs = tf.keras.Input(shape)
        h = layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
        h = layers.GlobalAveragePooling2D()(h)
        return tf.keras.Model(inputs, layers.Dense(4, name="logits")(h))

    tf.keras.utils.set_random_seed(9)
    variable = build((None, None, 2))
    fixed = build((*size, 2))
    fixed.set_weights(variable.get_weights())
    return variable, fixed


@pytest.mark.parametrize("reference", [0.0, np.full(2, 0.2, np.float32)])
def test_integrated_gradients_with_a_variable_input_size(reference):
    rng = np.random.default_rng(10)
    variable, _ = _variable_and_fixed((7, 5))
    analyzer = sglrp.IG(variable, steps=5, reference_inputs=reference)  # one for every size
    for size in [(7, 5), (6, 9)]:
        _, fixed = _variable_and_fixed(size)
        x = rng.uniform(0, 1, (2, *size, 2)).astype(np.float32)
        got = analyzer.analyze(x, target=[1, 3])
        expected = sglrp.IG(fixed, steps=5, reference_inputs=reference).analyze(x, target=[1, 3])
        assert got.shape == x.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_reference_of_the_wrong_size_is_named():
    variable, _ = _variable_and_fixed((4, 4))
    analyzer = sglrp.IG(variable, steps=2, reference_inputs=np.zeros((5, 5, 2), np.float32))
    with pytest.raises(ValueError, match=r"reference input 0 of shape \(5, 5, 2\) does not"):
        analyzer.analyze(np.zeros((1, 4, 4, 2), np.float32), target=0)
    with pytest.raises(ValueError, match=r"reference input 0 of shape \(3,\) does not"):
        sglrp.IG(variable, reference_inputs=np.zeros(3, np.float32))
