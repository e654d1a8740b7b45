"""Small real Keras models, built in eager mode as users build them, and a NumPy forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import sglrp

N_CLASSES = 5


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked for the other engine (``@pytest.mark.engine("keras3")``)."""
    for item in items:
        for marker in item.iter_markers("engine"):
            if sglrp.engine not in marker.args:
                item.add_marker(pytest.mark.skip(reason=f"only for the {marker.args} engine"))


def _randomize_biases(model, rng, scale=0.1):
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, scale, bias.shape).astype(np.float32)])


def dense_net(use_bias=True, softmax=False, seed=0):
    """Input (6,) -> Dense 8 relu -> Dense 7 relu -> Dense 5 (logits or softmax)."""
    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            tf.keras.Input((6,)),
            layers.Dense(8, activation="relu", use_bias=use_bias, name="fc1"),
            layers.Dense(7, activation="relu", use_bias=use_bias, name="fc2"),
            layers.Dense(
                N_CLASSES,
                activation="softmax" if softmax else None,
                use_bias=use_bias,
                name="logits",
            ),
        ],
        name="dense_net",
    )
    if use_bias:
        _randomize_biases(model, np.random.default_rng(seed))
    return model


def conv_net(use_bias=True, softmax=True, seed=0, pool=True):
    """Input (8, 8, 2) -> Conv 3x3x4 relu -> MaxPool 2 -> Conv 3x3x3 relu -> Flatten -> Dense 5."""
    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    body = [
        tf.keras.Input((8, 8, 2)),
        layers.Conv2D(4, 3, activation="relu", use_bias=use_bias, name="conv1"),
        layers.MaxPooling2D(2, name="pool1") if pool else layers.Activation("linear"),
        layers.Conv2D(3, 2 if pool else 3, activation="relu", use_bias=use_bias, name="conv2"),
        layers.Flatten(name="flatten"),
        layers.Dense(
            N_CLASSES, activation="softmax" if softmax else None, use_bias=use_bias, name="logits"
        ),
    ]
    model = tf.keras.Sequential(body, name="conv_net")
    if use_bias:
        _randomize_biases(model, np.random.default_rng(seed))
    return model


@pytest.fixture(scope="session")
def images():
    return np.random.default_rng(1).uniform(0, 1, size=(4, 8, 8, 2)).astype(np.float32)


@pytest.fixture(scope="session")
def vectors():
    return np.random.default_rng(2).uniform(-1, 1, size=(4, 6)).astype(np.float32)


@pytest.fixture(scope="session")
def cnn():
    return conv_net()


@pytest.fixture(scope="session")
def mlp():
    return dense_net()


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dense_params(model):
    """[(W, b), ...] of a dense_net in float64."""
    out = []
    for layer in model.layers:
        w = layer.get_weights()
        out.append((w[0].astype(np.float64), w[1].astype(np.float64) if len(w) > 1 else 0.0))
    return out


def dense_forward(model, x):
    """Activations [x, a1, a2, logits] of a dense_net in float64."""
    acts = [np.asarray(x, np.float64)]
    params = dense_params(model)
    for i, (w, b) in enumerate(params):
        z = acts[-1] @ w + b
        acts.append(z if i == len(params) - 1 else np.maximum(z, 0))
    return acts


def default_kwargs(name):
    """Constructor arguments that make each registered method cheap on the test models."""
    return {
        "lrp": {"low": 0.0, "high": 1.0},
        "clrp": {"low": 0.0, "high": 1.0},
        "sglrp": {"low": 0.0, "high": 1.0},
        "sglrp.epsilon_plus_box": {"low": 0.0, "high": 1.0},
        "smoothgrad": {"augment_by_n": 6},
        "integrated_gradients": {"steps": 6},
    }.get(name, {})


SINGLE_INPUT_METHODS = [m for m in sglrp.available_methods() if m != "grad_cam.multi_input"]
