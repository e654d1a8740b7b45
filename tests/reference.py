"""Literal NumPy (float64) references of the LRP / Deep Taylor rules, as innvestigate applies them.

A network is a list of steps on flat vectors: ``("linear", W, b, relu)`` for Dense and Conv2D
(a convolution written as its matrix) and ``("maxpool", index)`` for max pooling (``index`` maps
each output to its input). Every rule maps the relevance ``R`` of a step's output to its input.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7  # innvestigate's safe_divide adds K.epsilon() where the denominator is zero


def safe(z):
    return z + EPS * (z == 0)


def plus(w):
    return np.maximum(w, 0)


def minus(w):
    return np.minimum(w, 0)


def z_plus(x, w, r):
    """alpha=1, beta=0, bias ignored: positive inputs on positive weights and vice versa."""
    xp, xn = plus(x), minus(x)
    s = r / safe(xp @ plus(w) + xn @ minus(w))
    return xp * (s @ plus(w).T) + xn * (s @ minus(w).T)


def z_plus_passing_dropped(x, w, r):
    """sglrp's alpha1-beta0: :func:`z_plus`, and LRP-0 (Bach et al. 2015, Eq. 56) at the units
    without an activating contribution, whose relevance innvestigate's rule drops."""
    xp, xn = plus(x), minus(x)
    dropped = (xp @ plus(w) + xn @ minus(w)) == 0
    return z_plus(x, w, r) + x * (np.where(dropped, r / safe(x @ w), 0) @ w.T)


def z_bounded(x, w, r, low, high):
    """z^B: z_ij = x_i w_ij - l w+_ij - h w-_ij."""
    ones = np.ones_like(x)
    z = x @ w - (low * ones) @ plus(w) - (high * ones) @ minus(w)
    s = r / safe(z)
    return x * (s @ w.T) - low * (s @ plus(w).T) - high * (s @ minus(w).T)


def epsilon(x, w, b, r, eps):
    z = x @ w + b
    s = r / (z + eps * np.where(z >= 0, 1.0, -1.0))
    return x * (s @ w.T)


def flat(x, w, r):
    """Flat input rule: z_ij = 1 wherever w_ij connects i and j (here: w_ij != 0)."""
    v = (w != 0).astype(np.float64)
    return (r / safe(np.ones_like(x) @ v)) @ v.T


def alpha_beta(x, w, b, r, alpha, beta):
    """alpha-beta with innvestigate's bias handling: b+ joins the positive, b- the negative part.

    Activating: x+ w+ + x- w- (+ b+ + b-); inhibiting: x+ w- + x- w+ (+ b- + b+).
    """
    xp, xn = plus(x), minus(x)

    def part(w1, w2):
        s = r / safe(xp @ w1 + xn @ w2 + plus(b) + minus(b))
        return xp * (s @ w1.T) + xn * (s @ w2.T)

    active = part(plus(w), minus(w))
    return active if not beta else alpha * active - beta * part(minus(w), plus(w))


def w_plus(x, w, r):
    """w+ input rule: z_ij = w+_ij, independent of x."""
    return (r / safe(np.ones_like(x) @ plus(w))) @ plus(w).T


def conv_matrix(kernel, in_shape):
    """The (in, out) matrix of a 'valid', stride-1 Conv2D on a flattened (H, W, C) input."""
    kh, kw, cin, cout = kernel.shape
    h, w, _ = in_shape
    oh, ow = h - kh + 1, w - kw + 1
    m = np.zeros((h, w, cin, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            m[i : i + kh, j : j + kw, :, i, j, :] = kernel
    return m.reshape(h * w * cin, oh * ow * cout)


def maxpool_index(x, shape, size=2):
    """For a flattened (H, W, C) map, the input index of each 2x2 max (first on ties)."""
    h, w, c = shape
    a = x.reshape(h, w, c)
    idx = np.arange(h * w * c).reshape(h, w, c)
    out = []
    for i in range(0, h - h % size, size):
        for j in range(0, w - w % size, size):
            for k in range(c):
                block = a[i : i + size, j : j + size, k].ravel()
                out.append(idx[i : i + size, j : j + size, k].ravel()[np.argmax(block)])
    return np.array(out)


def keras_steps(model, x):
    """Steps and per-step inputs of a Sequential of Dense/Conv2D/MaxPooling2D/Flatten layers."""
    steps, acts = [], [np.asarray(x, np.float64).ravel()]
    shape = tuple(model.input_shape[1:])
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Flatten", "InputLayer"):
            continue
        a = acts[-1]
        if kind == "MaxPooling2D":
            index = maxpool_index(a, shape)
            steps.append(("maxpool", index, a.size))
            acts.append(a[index])
            shape = (shape[0] // 2, shape[1] // 2, shape[2])
            continue
        weights = [v.astype(np.float64) for v in layer.get_weights()]
        w = weights[0]
        b = weights[1] if len(weights) > 1 else np.zeros(w.shape[-1])
        if kind == "Conv2D":
            w = conv_matrix(w, shape)
            shape = (
                shape[0] - weights[0].shape[0] + 1,
                shape[1] - weights[0].shape[1] + 1,
                weights[0].shape[-1],
            )
            b = np.tile(b, shape[0] * shape[1])
        relu = layer.get_config().get("activation") == "relu"
        z = a @ w + b
        steps.append(("linear", w, b, relu))
        acts.append(np.maximum(z, 0) if relu else z)
    return steps, acts


def propagate(steps, acts, r, rule, first_rule=None):
    """Backward pass: ``rule(x, w, b, r)`` on every linear step, ``first_rule`` on the first."""
    for i in range(len(steps) - 1, -1, -1):
        step, x = steps[i], acts[i]
        if step[0] == "maxpool":
            _, index, size = step
            back = np.zeros(size)
            np.add.at(back, index, r)
            r = back
        else:
            _, w, b, _ = step
            fn = first_rule if (i == 0 and first_rule is not None) else rule
            r = fn(x, w, b, r)
    return r
