"""A softmax written as an operation (``keras.ops.softmax``, ``tf.nn.softmax``...): stripped at
the end like a Softmax layer, for every method, with the usual warning; refused inside. A final
Lambda layer is refused (its function cannot be inspected)."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import SINGLE_INPUT_METHODS, default_kwargs

import sglrp
from sglrp.keras_graph import KERAS_MAJOR

layers = tf.keras.layers


def _ops():
    """name -> function applying a softmax as an operation, for the installed Keras."""
    if KERAS_MAJOR >= 3:
        import keras

        return {
            "keras.ops.softmax": keras.ops.softmax,
            "keras.ops.log_softmax": keras.ops.log_softmax,
            "keras.activations.softmax": keras.activations.softmax,
        }
    return {
        "tf.nn.softmax": tf.nn.softmax,
        "tf.math.softmax": tf.math.softmax,
        "tf.nn.log_softmax": tf.nn.log_softmax,
        "tf.math.log_softmax": lambda z: tf.math.log_softmax(z, axis=-1),
    }


OPS = _ops()
#: Every method for the first spelling; one method of each kind for the others.
SOME_METHODS = ["sglrp", "lrp.epsilon", "smoothgrad", "integrated_gradients", "grad_cam"]


def logits_net():
    tf.keras.utils.set_random_seed(11)
    inputs = tf.keras.Input((8, 8, 2))
    h = layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    return tf.keras.Model(inputs, layers.Dense(4, name="logits")(layers.Flatten()(h)))


def with_final(op, logits):
    return tf.keras.Model(logits.inputs[0], op(logits.outputs[0]), name="probabilities_net")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(12).uniform(0, 1, (2, 8, 8, 2)).astype(np.float32)


@pytest.mark.parametrize("op", list(OPS))
def test_final_softmax_operation_is_stripped_for_every_method(op, x):
    logits = logits_net()
    model = with_final(OPS[op], logits)
    expected_logits = logits(x).numpy()
    assert not np.allclose(model(x).numpy(), expected_logits)
    methods = SINGLE_INPUT_METHODS if op == next(iter(OPS)) else SOME_METHODS
    for i, method in enumerate(methods):
        kwargs = default_kwargs(method)
        if i == 0:
            with pytest.warns(UserWarning, match=r"ends in a (log_)?softmax \(operation '"):
                analyzer = sglrp.create_analyzer(method, model, **kwargs)
            np.testing.assert_allclose(
                analyzer.predict_logits(x), expected_logits, rtol=1e-5, atol=1e-6
            )
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # said once per model
                analyzer = sglrp.create_analyzer(method, model, **kwargs)
        got = analyzer.analyze(x, target=[1, 3])
        reference = sglrp.create_analyzer(method, logits, **kwargs).analyze(x, target=[1, 3])
        scale = max(float(np.ptp(reference)), 1e-12)
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5 * scale, err_msg=method)


@pytest.mark.parametrize("op", list(OPS))
def test_softmax_operation_inside_the_model_is_refused(op):
    tf.keras.utils.set_random_seed(13)
    inputs = tf.keras.Input((6,))
    h = OPS[op](layers.Dense(5, name="fc")(inputs))
    model = tf.keras.Model(inputs, layers.Dense(3, name="logits")(h))
    for method in ["lrp.epsilon", "smoothgrad", "integrated_gradients"]:
        with pytest.raises(ValueError, match=r"applies a (log_)?softmax inside model"):
            sglrp.create_analyzer(method, model)


def test_final_lambda_layer_is_refused():
    inputs = tf.keras.Input((6,))
    z = layers.Dense(3, name="fc")(inputs)
    model = tf.keras.Model(inputs, layers.Lambda(lambda t: t * 2.0, name="scaled")(z))
    for method in ["smoothgrad", "integrated_gradients", "lrp.epsilon"]:
        with pytest.raises(ValueError, match=r"last layer 'scaled' .* is a Lambda layer"):
            sglrp.create_analyzer(method, model)
