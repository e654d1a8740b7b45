"""Heads against NumPy: closed forms of the paper and finite differences of the softmax."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import softmax

from sglrp import heads

RNG = np.random.default_rng(0)
Z = RNG.normal(0, 3, size=(6, 7))
T = np.eye(7)[[0, 3, 6, 2, 2, 5]]


def evaluate(head, z, t):
    """The head on float64 tensors, traced into a graph as both engines run it."""
    return tf.function(head)(tf.constant(z, tf.float64), tf.constant(t, tf.float64)).numpy()


def test_output_head_selects_the_logit():
    np.testing.assert_allclose(evaluate(heads.output, Z, T), Z * T)


def test_gradient_head_is_the_selection():
    np.testing.assert_allclose(evaluate(heads.gradient, Z, T), T)


def test_softmax_gradient_closed_form():
    y = softmax(Z)
    t = T.argmax(1)
    expected = -y * y[np.arange(len(t)), t][:, None]
    expected[np.arange(len(t)), t] = y[np.arange(len(t)), t] * (1 - y[np.arange(len(t)), t])
    np.testing.assert_allclose(evaluate(heads.softmax_gradient, Z, T), expected, rtol=1e-12)


@pytest.mark.parametrize("margin", [20.0, 40.0, 300.0])
def test_softmax_gradient_keeps_a_confident_prediction(margin):
    # y_t (1 - y_t) with 1 - y_t = sum of the others' probabilities, in closed form: with logits
    # (margin, 0, -1), 1 - y_t = (1 + e^-1) e^-margin / (1 + (1 + e^-1) e^-margin)
    z = np.array([[margin, 0.0, -1.0], [0.0, margin, -1.0]])
    t = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    others = (1 + np.exp(-1.0)) * np.exp(-margin)
    y_t = 1 / (1 + others)
    target = y_t * others * y_t  # y_t (1 - y_t)
    got = evaluate(heads.softmax_gradient, z, t)
    assert target > 0
    np.testing.assert_allclose(got[0, 0], target, rtol=1e-12)
    np.testing.assert_allclose(got[0, 1:], -y_t * np.exp([-margin, -margin - 1]) * y_t, rtol=1e-12)
    # the confident class is not the target: -y_t y_n at the winner, y_t (1 - y_t) at the target
    y = softmax(z[1:])[0]
    np.testing.assert_allclose(got[1], [y[0] * (1 - y[0]), -y[0] * y[1], -y[0] * y[2]],
                               rtol=1e-12)
    got32 = tf.function(heads.softmax_gradient_target)(tf.constant(z[:1], tf.float32),
                                                       tf.constant(t[:1], tf.float32)).numpy()
    if target > 1e-37:  # a float32 normal number
        np.testing.assert_allclose(got32[0, 0], target, rtol=1e-6)


@pytest.mark.parametrize("weights", [T, RNG.uniform(0, 1, size=Z.shape)])
def test_softmax_gradient_is_the_derivative_of_the_selected_probability(weights):
    # central differences of f(z) = weights . softmax(z)
    h = 1e-6
    numeric = np.zeros_like(Z)
    for n in range(Z.shape[1]):
        step = np.zeros_like(Z)
        step[:, n] = h
        f_plus = (weights * softmax(Z + step)).sum(1)
        f_minus = (weights * softmax(Z - step)).sum(1)
        numeric[:, n] = (f_plus - f_minus) / (2 * h)
    np.testing.assert_allclose(evaluate(heads.softmax_gradient, Z, weights), numeric, atol=1e-8)


def test_softmax_target_and_dual_split_the_signed_head():
    target = evaluate(heads.softmax_gradient_target, Z, T)
    dual = evaluate(heads.softmax_gradient_dual, Z, T)
    y = softmax(Z)
    y_t = (y * T).sum(1)
    np.testing.assert_allclose(target.sum(1), y_t * (1 - y_t), rtol=1e-12)
    np.testing.assert_allclose(dual, (1 - T) * y * y_t[:, None], rtol=1e-12)
    assert (dual >= 0).all()
    np.testing.assert_allclose(target - dual, evaluate(heads.softmax_gradient, Z, T), atol=1e-15)
    # the two parts carry the same total relevance: sum_n y_t y_n = y_t (1 - y_t)
    np.testing.assert_allclose(dual.sum(1), target.sum(1), rtol=1e-10)


def test_contrastive_dual_spreads_the_target_logit():
    dual = evaluate(heads.contrastive_dual, Z, T)
    z_t = (Z * T).sum(1)
    np.testing.assert_allclose(dual, (1 - T) * z_t[:, None] / (Z.shape[1] - 1))
    np.testing.assert_allclose(dual.sum(1), z_t)
