"""Heads: the initial relevance at the output layer.

A head maps the model's logits ``z`` (N, C) and the selection ``t`` (N, C) to the relevance
(N, C) that starts the backward pass. ``t`` is what the user asked to explain, made at call time:
a one-hot row per sample for a target class, or any N-hot / weighted row to explain several
classes at once. Nothing about the target is baked into the graph.

Every head is written once and used by every rule (see ``analyzers.py``). The softmax heads use
the model's own probabilities ``softmax(z)`` computed from the real logits, in float64.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

__all__ = [
    "Head",
    "output",
    "gradient",
    "softmax_gradient",
    "softmax_gradient_target",
    "softmax_gradient_dual",
    "contrastive_dual",
]

Head = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def output(z, t):
    """The selected outputs themselves: ``R = t * z`` (one-hot LRP: ``R_t = z_t``)."""
    return z * t


def gradient(z, t):
    """The gradient of ``t . z`` with respect to ``z``: ``R = t`` (gradient-type methods)."""
    return tf.ones_like(z) * t


def softmax_gradient(z, t):
    """Gradient of the selected softmax probability ``t . y`` with respect to ``z``.

    ``R_n = y_n (t_n - t . y)``; for a one-hot ``t`` at class ``t``: ``y_t (1 - y_t)`` at the
    target and ``-y_t y_n`` at every other class (Iwana et al. 2019, eq. 10).

    ``t_n - t . y`` is computed as ``(t_n - t_k) + sum_m y_m (t_k - t_m)`` with ``k`` the most
    probable class (equal since ``sum_m y_m = 1``): the term of ``y_k`` vanishes exactly, so a
    confident prediction keeps ``1 - y_t`` to full relative precision (``1 - y_t`` itself is 0
    in float64 beyond a logit margin of about 37).
    """
    y = tf.nn.softmax(tf.cast(z, tf.float64), axis=-1)
    t64 = tf.cast(t, tf.float64)
    t_top = tf.gather(t64, tf.argmax(y, axis=-1), axis=-1, batch_dims=1)[..., None]
    rest = tf.reduce_sum(y * (t_top - t64), axis=-1, keepdims=True)
    return tf.cast(y * ((t64 - t_top) + rest), z.dtype)


def softmax_gradient_target(z, t):
    """The target part of :func:`softmax_gradient`: ``y_t (1 - y_t)`` at the selected classes."""
    return tf.where(tf.not_equal(t, 0), softmax_gradient(z, t), tf.zeros_like(z))


def softmax_gradient_dual(z, t):
    """The dual part of :func:`softmax_gradient`, sign flipped: ``y_t y_n`` at every ``n != t``."""
    return tf.where(tf.not_equal(t, 0), tf.zeros_like(z), -softmax_gradient(z, t))


def contrastive_dual(z, t):
    """CLRP's dual (Gu et al. 2018): ``z_t / (C - 1)`` at every class not selected."""
    n_classes = tf.cast(tf.shape(z)[-1], z.dtype)
    selected = tf.reduce_sum(z * t, axis=-1, keepdims=True)
    return tf.where(
        tf.not_equal(t, 0), tf.zeros_like(z), selected / (n_classes - 1) * tf.ones_like(z)
    )
