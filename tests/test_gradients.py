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
