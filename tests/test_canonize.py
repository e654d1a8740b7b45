"""Canonization (``sglrp/canonize.py``) on Keras 2.14 and Keras 3: each rewrite keeps the logits.

Fast: small models with one rewrite each (BN folded after a conv, a dense, a depthwise and a
separable conv; BN made a per-channel linear layer; nested models flattened; input padding
merged), built in float64 so that the rewrite itself is checked to float64 rounding; the
refusals (subclassed nested model, BN in training mode); integer inputs. Slow: the six
``keras.applications`` architectures with seeded weights (``seeded_models.py``).

The tests import no engine (``engine_free.py``): they run in both environments
(``python -m pytest --noconftest tests/test_canonize.py`` in the Keras 3 one until its engine
lands: ``conftest.py`` imports sglrp).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from engine_free import sglrp_module
from seeded_models import ARCHITECTURES, application, flat_layers, floatx, images, transfer

layers = tf.keras.layers


canonize = sglrp_module("canonize").canonize
keras_graph = sglrp_module("keras_graph")


@pytest.fixture(autouse=True)
def float64():
    """Layers built in a test are float64: a rewrite must be exact to float64 rounding."""
    with floatx("float64"):
        yield


def assert_same_logits(canon, model, x, rtol=1e-10):
    """``canon``'s outputs equal ``model``'s to ``rtol`` of their range."""
    want = np.asarray(model(x), np.float64)
    got = np.asarray(canon(x), np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= rtol * np.ptp(want)


def set_bn_statistics(model, seed=0):
    """Batch norms with moving statistics and affine parameters away from (0, 1)."""
    rng = np.random.default_rng(seed)
    for layer in flat_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
            mean = layer.moving_mean
            mean.assign(rng.normal(0.0, 0.5, tuple(mean.shape)))


def randn(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def types_by_name(model) -> dict:
    return {layer.name: type(layer).__name__ for layer in model.layers}


# -- batch normalization -----------------------------------------------------------------------


def folding_net():
    """BN after a Conv2D, a DepthwiseConv2D, a SeparableConv2D, a Conv1D and a Dense."""
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((9, 9, 3), name="image")
    h = layers.Conv2D(4, 3, use_bias=False, name="conv")(image)
    h = layers.BatchNormalization(name="conv_bn")(h)
    h = layers.ReLU(name="conv_relu")(h)
    h = layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(h)
    h = layers.BatchNormalization(name="dw_bn")(h)
    h = layers.SeparableConv2D(5, 3, padding="same", name="sep")(h)
    h = layers.BatchNormalization(epsilon=0.1, name="sep_bn")(h)
    h = layers.Reshape((25, 5), name="rows")(h)
    h = layers.Conv1D(6, 3, name="conv1d")(h)
    h = layers.BatchNormalization(center=False, scale=False, name="conv1d_bn")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(7, name="fc")(h)
    h = layers.BatchNormalization(name="fc_bn")(h)
    model = tf.keras.Model(image, layers.Dense(3, name="logits")(h), name="folding")
    set_bn_statistics(model)
    return model


def test_batch_norm_is_folded_into_the_layer_before_it():
    model = folding_net()
    canon = canonize(model)
    assert_same_logits(canon, model, randn(4, 9, 9, 3))
    names = types_by_name(canon)
    assert not {"conv_bn", "dw_bn", "sep_bn", "conv1d_bn", "fc_bn"} & set(names)
    for name in ("conv", "dw", "sep", "conv1d", "fc"):
        assert canon.get_layer(name).use_bias  # the BN's shift is its bias now
    assert canon.name == model.name and list(names)[0] == "image"


def linear_net():
    """BNs that cannot be folded: after an activation, a merge, a pooling, a shared layer."""
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((6, 6, 3), name="image")
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    h = layers.BatchNormalization(name="act_bn")(h)
    r = layers.Conv2D(4, 1, name="branch")(h)
    h = layers.Add(name="add")([h, r])
    h = layers.BatchNormalization(name="add_bn")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    h = layers.BatchNormalization(name="gap_bn")(h)
    shared = layers.Dense(4, name="shared")
    h = layers.Concatenate(name="concat")(
        [shared(h), layers.BatchNormalization(name="s_bn")(shared(h))]
    )
    model = tf.keras.Model(image, layers.Dense(3, name="logits")(h), name="linear")
    set_bn_statistics(model)
    return model


def test_other_batch_norms_become_per_channel_linear_layers():
    model = linear_net()
    canon = canonize(model)
    assert_same_logits(canon, model, randn(4, 6, 6, 3))
    names = types_by_name(canon)
    assert names["act_bn"] == names["add_bn"] == "DepthwiseConv2D"
    assert names["gap_bn"] == names["s_bn"] == "Dense"
    assert canon.get_layer("add_bn").kernel_size == (1, 1)
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in canon.layers)


def test_the_rewrite_follows_the_weights_and_leaves_the_model_alone():
    model = folding_net()
    before = [w.copy() for w in model.get_weights()]
    callers = {layer.name: len(keras_graph.producers(layer)) for layer in model.layers}
    canon = canonize(model)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the canonized model has layers of its own: no layer of the user's got a new call
    assert {layer.name: len(keras_graph.producers(layer)) for layer in model.layers} == callers
    assert canonize(model) is canon  # built once per model
    for name in ("conv", "dw_bn", "fc_bn"):
        layer = model.get_layer(name)
        layer.set_weights([w * 1.5 + 0.1 for w in layer.get_weights()])
    assert canonize(model) is canon
    assert_same_logits(canon, model, randn(2, 9, 9, 3))


def test_operations_between_layers_are_kept():
    # Keras 2 wraps tensor arithmetic in TFOpLambda layers, Keras 3 records keras.ops calls
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((6, 6, 2), name="image")
    h = layers.BatchNormalization(name="bn")(layers.Conv2D(3, 3, name="conv")(image))
    h = layers.Flatten(name="flatten")(h * 2.0 + 1.0)
    model = tf.keras.Model(image, layers.Dense(2, name="logits")(h))
    set_bn_statistics(model)
    canon = canonize(model)
    assert "bn" not in types_by_name(canon)
    assert_same_logits(canon, model, randn(3, 6, 6, 2))


def test_a_model_with_nothing_to_rewrite_is_returned_as_it_is():
    model = tf.keras.Sequential(
        [tf.keras.Input((5, 5, 1)), layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(3)]
    )
    assert canonize(model) is model


def test_batch_norm_in_training_mode_is_refused():
    image = tf.keras.Input((6, 6, 2))
    h = layers.Conv2D(3, 3, name="conv")(image)
    h = layers.BatchNormalization(name="batch_stats")(h, training=True)
    model = tf.keras.Model(image, layers.Dense(2)(layers.Flatten()(h)))
    with pytest.raises(
        ValueError,
        match="layer 'batch_stats' is called with training=True; its output depends on the "
        "rest of the batch",
    ):
        canonize(model)


def test_batch_norm_in_a_nested_model_called_in_training_mode_is_refused():
    inner_in = tf.keras.Input((6, 6, 2))
    h = layers.BatchNormalization(name="inner_bn")(layers.Conv2D(3, 3)(inner_in))
    inner = tf.keras.Model(inner_in, layers.Flatten()(h), name="base")
    image = tf.keras.Input((6, 6, 2))
    model = tf.keras.Model(image, layers.Dense(2)(inner(image, training=True)))
    with pytest.raises(
        ValueError, match="layer 'inner_bn' runs in training mode: model 'base' around it"
    ):
        canonize(model)


# -- nested models -----------------------------------------------------------------------------


def base_model(name="base"):
    """Conv -> BN -> ReLU -> Flatten -> Dense "dense", as a functional model."""
    inputs = tf.keras.Input((6, 6, 2))
    h = layers.Conv2D(3, 3, name="conv")(inputs)
    h = layers.BatchNormalization(name="conv_bn")(h)
    h = layers.ReLU(name="relu")(h)
    return tf.keras.Model(inputs, layers.Dense(4, name="dense")(layers.Flatten()(h)), name=name)


def test_nested_models_are_flattened():
    tf.keras.utils.set_random_seed(0)
    inner = base_model()
    set_bn_statistics(inner)
    pixels = tf.keras.Input((6, 6, 2), name="pixels")
    outer = tf.keras.Model(
        pixels, layers.Dense(3, name="dense")(inner(pixels, training=False)), name="outer"
    )
    sequential = tf.keras.Sequential([tf.keras.Input((6, 6, 2)), inner, layers.Dense(3)])
    x = randn(3, 6, 6, 2)
    for model in (outer, sequential):
        canon = canonize(model)
        assert not any(isinstance(layer, tf.keras.Model) for layer in canon.layers)
        assert "conv_bn" not in types_by_name(canon)  # and the BN inside is folded
        assert_same_logits(canon, model, x)
    names = [layer.name for layer in canonize(outer).layers]
    # the inner "dense" clashes with the outer one: prefixed with the nested model's name
    assert names[:3] == ["pixels", "conv", "relu"]
    assert keras_graph.nested_name("base", "dense") in names and "dense" in names


def test_a_sequential_nested_in_a_functional_model_twice_keeps_its_layers_shared():
    tf.keras.utils.set_random_seed(0)
    inner = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            layers.Dense(5, name="hidden"),
            layers.BatchNormalization(name="hidden_bn"),
            layers.ReLU(name="hidden_relu"),
        ],
        name="block",
    )
    set_bn_statistics(inner)
    a, b = tf.keras.Input((4,), name="a"), tf.keras.Input((4,), name="b")
    h = layers.Concatenate(name="concat")([inner(a), inner(b)])
    model = tf.keras.Model([a, b], layers.Dense(2, name="logits")(h))
    canon = canonize(model)
    x = [randn(3, 4, seed=1), randn(3, 4, seed=2)]
    assert_same_logits(canon, model, x)
    # called twice, the BN is not folded into "hidden" but made linear; both calls share it
    assert types_by_name(canon)["hidden_bn"] == "Dense"
    assert len(keras_graph.producers(canon.get_layer("hidden_bn"))) == 2


def test_a_nested_subclassed_model_is_refused():
    class Inner(tf.keras.Model):
        def __init__(self):
            super().__init__(name="custom_base")
            self.dense = layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, layers.Dense(2)(Inner()(inputs)))
    with pytest.raises(ValueError, match="layer 'custom_base' .* subclassed model"):
        canonize(model)


def test_a_subclassed_model_is_returned_as_it_is():
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model(np.zeros((1, 4)))
    assert canonize(model) is model  # the analyzer's checks say what is wrong


# -- zero padding at the input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "padding, kernel, strides, size, merged",
    [
        (1, 3, 1, 7, (3, 3)),  # the same windows as a "same" 3x3
        (3, 7, 2, 16, (8, 8)),  # ResNet50's conv1_pad + conv1_conv: TF pads 2 before, 3 after
        (((0, 1), (0, 1)), 3, 2, 8, (3, 3)),  # MobileNetV2's Conv1_pad (TF's "same" split)
        (((1, 0), (1, 0)), 2, 2, 8, (4, 4)),  # TF's "same" pads 1 before only with a 4x4
        (((2, 1), (0, 1)), 3, 1, 6, None),  # not "same": kept
    ],
)
def test_zero_padding_at_the_input_is_merged_into_the_first_convolution(
    padding, kernel, strides, size, merged
):
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((size, size, 2), name="image")
    h = layers.ZeroPadding2D(padding, name="pad")(image)
    h = layers.Conv2D(3, kernel, strides=strides, name="stem")(h)
    h = layers.BatchNormalization(name="stem_bn")(h)  # so that something is always rewritten
    model = tf.keras.Model(image, layers.Dense(2, name="logits")(layers.Flatten()(h)))
    set_bn_statistics(model)
    canon = canonize(model)
    assert_same_logits(canon, model, randn(3, size, size, 2))
    stem = canon.get_layer("stem")
    if merged is None:
        assert "pad" in types_by_name(canon) and stem.padding == "valid"
    else:
        assert "pad" not in types_by_name(canon)
        assert stem.padding == "same" and tuple(stem.kernel_size) == merged
        assert isinstance(keras_graph.producers(stem)[0], layers.InputLayer)


# -- dtypes ------------------------------------------------------------------------------------


def test_float32_models_stay_float32():
    with floatx("float32"):
        model = folding_net()
    canon = canonize(model)
    assert {w.dtype for w in canon.get_weights()} == {np.dtype(np.float32)}
    x = randn(4, 9, 9, 3).astype(np.float32)
    np.testing.assert_allclose(canon(x), model(x), rtol=1e-4, atol=1e-5)


def test_integer_inputs_are_kept():
    tf.keras.utils.set_random_seed(0)
    pixels = tf.keras.Input((6, 6, 3), dtype="uint8", name="pixels")
    h = layers.Rescaling(1 / 255, name="scale")(pixels)
    h = layers.BatchNormalization(name="bn")(layers.Conv2D(3, 3, name="conv")(h))
    images = tf.keras.Model(pixels, layers.Dense(2)(layers.Flatten()(h)))
    tokens = tf.keras.Input((5,), dtype="int32", name="tokens")
    h = layers.Flatten()(layers.Embedding(10, 3, name="embed")(tokens))
    h = layers.BatchNormalization(name="bn")(layers.Dense(4, name="fc")(h))
    text = tf.keras.Model(tokens, layers.Dense(2)(h))
    rng = np.random.default_rng(0)
    for model, x in (
        (images, rng.integers(0, 256, (2, 6, 6, 3)).astype(np.uint8)),
        (text, rng.integers(0, 10, (2, 5)).astype(np.int32)),
    ):
        set_bn_statistics(model)
        canon = canonize(model)
        assert canon.inputs[0].dtype == model.inputs[0].dtype
        assert "bn" not in types_by_name(canon)
        assert_same_logits(canon, model, x)


# -- keras.applications ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_canonized_application_has_the_same_logits(arch):
    # The rewrite is exact: in float64 the logits agree to float64 rounding (measured on both
    # Keras: <= 8e-15 of their range, MobileNetV2; both build the same model, same logits).
    model = application(arch, dtype="float64")
    x = images(model, 4, seed=3)
    canon = canonize(model)
    assert_same_logits(canon, model, x)
    assert not any(
        isinstance(layer, (tf.keras.Model, layers.BatchNormalization)) for layer in canon.layers
    )
    assert (canon is model) == arch.startswith("vgg")  # nothing to do for a VGG
    # In float32 (what users run) the canonized model is within 1e-4 of the logits' range of
    # the float64 result (measured: <= 2.4e-6, MobileNetV2).
    model32 = application(arch, dtype="float32")
    want = np.asarray(model(x), np.float64)
    got = np.asarray(canonize(model32)(x.astype(np.float32)), np.float64)
    assert np.abs(got - want).max() <= 1e-4 * np.ptp(want)


@pytest.mark.slow
def test_canonized_transfer_model_has_the_same_logits():
    # measured on both Keras: 9.2e-15 of the range in float64, <= 5.8e-6 in float32
    model = transfer(dtype="float64")
    x = images(model, 4, seed=3)
    canon = canonize(model)
    assert_same_logits(canon, model, x)
    assert not any(isinstance(layer, tf.keras.Model) for layer in canon.layers)
    assert canon.layers[-1].name == "head"
