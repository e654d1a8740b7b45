"""What each method is defined for: every other model, layer, activation or input is refused at
construction with a ValueError naming the layer and its class (issue: no silent wrong result)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import N_CLASSES

import sglrp

layers = tf.keras.layers

#: Methods defined for plain ReLU networks only.
RELU_ONLY = [
    "lrp",
    "clrp",
    "sglrp",
    "sglrp.epsilon_plus_box",
    "lrp.z_plus",
    "guided_backprop",
    "guided_grad_cam",
]
#: Methods valid for any differentiable activation.
ANY_ACTIVATION = ["smoothgrad", "integrated_gradients", "grad_cam"]
#: innvestigate's LRP: epsilon and the presets take any activation of a conv/dense network.
LRP_FAMILY = [
    "lrp.epsilon",
    "lrp.sequential_preset_a_flat",
    "lrp.sequential_preset_b_flat",
    "sglrp.sequential_preset_a",
    "sglrp.sequential_preset_b",
]


def conv_with(make_layer, name="act"):
    """Input (8, 8, 2) -> Conv 3x3x4 -> ``make_layer(name=name)`` -> GAP -> Dense 5."""
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 2))
    h = layers.Conv2D(4, 3, name="conv")(inputs)
    h = make_layer(name=name)(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return tf.keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(h))


ACTIVATION_LAYERS = {
    "LeakyReLU": layers.LeakyReLU,
    "ELU": layers.ELU,
    "PReLU": layers.PReLU,
    "ReLU(negative_slope=0.1)": lambda name: layers.ReLU(negative_slope=0.1, name=name),
}


#: Activation layers the Deep Taylor, z+ and epsilon-plus-box rules pass relevance through
#: unchanged on the Keras 3 engine (identity rule); the innvestigate engine refuses them.
IDENTITY_LAYERS = {"LeakyReLU", "ELU"}
GUIDED = ["guided_backprop", "guided_grad_cam"]


@pytest.mark.parametrize("kind", list(ACTIVATION_LAYERS))
@pytest.mark.parametrize("method", RELU_ONLY)
def test_relu_methods_refuse_other_activations(kind, method, images):
    model = conv_with(ACTIVATION_LAYERS[kind])
    if kind in IDENTITY_LAYERS and method not in GUIDED and sglrp.engine == "keras3":
        with sglrp.create_analyzer(method, model, low=0.0, high=1.0) as analyzer:
            assert np.isfinite(analyzer.analyze(images, target=1)).all()
        return
    with pytest.raises(ValueError, match=r"layer 'act' \((LeakyReLU|ELU|PReLU|ReLU)\)") as info:
        sglrp.create_analyzer(method, model, low=0.0, high=1.0)
    if kind in IDENTITY_LAYERS and method not in GUIDED:
        assert "in the Keras 3 engine only" in str(info.value)
    else:
        assert "ReLU networks" in str(info.value)


@pytest.mark.parametrize("method", ["sglrp", "guided_backprop"])
def test_a_refusal_suggests_only_methods_defined_for_the_model(method):
    model = conv_with(layers.PReLU)
    with pytest.raises(ValueError, match="Methods defined for this model: ") as info:
        sglrp.create_analyzer(method, model, low=0.0, high=1.0)
    names = [n.strip() for n in str(info.value).split("Methods defined for this model: ")[1]
             .split(". ")[0].split(",")]  # fmt: skip
    assert set(names) == {
        "grad_cam", "integrated_gradients", "smoothgrad", "lrp.epsilon",
        "lrp.sequential_preset_a_flat", "lrp.sequential_preset_b_flat",
        "sglrp.sequential_preset_a", "sglrp.sequential_preset_b",
    }  # fmt: skip
    if method == "sglrp":
        for name in names:
            with sglrp.create_analyzer(name, model):
                pass


@pytest.mark.parametrize("method", LRP_FAMILY + ANY_ACTIVATION)
def test_leaky_relu_is_fine_where_the_method_is_defined_for_it(method, images):
    with sglrp.create_analyzer(method, conv_with(layers.LeakyReLU)) as analyzer:
        assert np.isfinite(analyzer.analyze(images, target=1)).all()


def test_relu6_stays_accepted(images):
    model = conv_with(lambda name: layers.ReLU(max_value=6.0, name=name))
    for method in RELU_ONLY:
        with sglrp.create_analyzer(method, model, low=0.0, high=1.0) as analyzer:
            assert np.isfinite(analyzer.analyze(images, target=2)).all()


def test_layer_normalization_has_a_rule_in_the_keras3_engine_only(images):
    model = conv_with(layers.LayerNormalization, name="norm")
    for method in ["lrp", "clrp", "sglrp", "lrp.epsilon", "sglrp.sequential_preset_a"]:
        if sglrp.engine == "keras3":
            with sglrp.create_analyzer(method, model) as analyzer:
                assert np.isfinite(analyzer.analyze(images, target=1)).all()
            continue
        with pytest.raises(
            ValueError, match=r"layer 'norm' \(LayerNormalization\) in the Keras 3 engine only"
        ):
            sglrp.create_analyzer(method, model)


def test_recurrent_layer_has_no_rule():
    inputs = tf.keras.Input((5, 3))
    h = layers.SimpleRNN(4, activation="relu", name="rnn")(inputs)
    model = tf.keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(h))
    with pytest.raises(ValueError, match=r"layer 'rnn' \(SimpleRNN\) has no rule"):
        sglrp.LRP(model)


def test_last_layer_must_give_logits_or_a_softmax():
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, layers.Dense(3, activation="sigmoid", name="top")(inputs))
    with pytest.raises(ValueError, match="last layer 'top' .* applies 'sigmoid'"):
        sglrp.IG(model)


@pytest.mark.parametrize("method", ["sglrp", "lrp.epsilon", "guided_backprop", "smoothgrad"])
def test_integer_inputs_are_refused(method):
    inputs = tf.keras.Input((8, 8, 1), dtype="uint8", name="pixels")
    h = layers.Rescaling(1 / 255, name="scale")(inputs)
    h = layers.Conv2D(3, 3, activation="relu", name="conv")(h)
    h = layers.Flatten(name="flat")(h)
    model = tf.keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(h))
    with pytest.raises(ValueError, match="dtype uint8; relevance and gradients exist for float"):
        sglrp.create_analyzer(method, model)


def test_embedding_inputs_are_refused():
    inputs = tf.keras.Input((6,), dtype="int32")
    h = layers.Flatten()(layers.Embedding(10, 3, name="embed")(inputs))
    model = tf.keras.Model(inputs, layers.Dense(N_CLASSES)(h))
    with pytest.raises(ValueError, match="dtype int32"):
        sglrp.SGLRP(model)


@pytest.mark.parametrize(
    "method",
    ["sglrp", "lrp.epsilon", "lrp.z_plus", "sglrp.sequential_preset_a", "smoothgrad", "grad_cam"],
)
def test_batch_norm_in_training_mode_is_refused(method):
    inputs = tf.keras.Input((8, 8, 2))
    h = layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    h = layers.BatchNormalization(name="batch_stats")(h, training=True)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    model = tf.keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(h))
    with pytest.raises(ValueError, match="'batch_stats' is called with training=True; its output"):
        sglrp.create_analyzer(method, model)


RANDOM_IN_TRAINING = {
    "Dropout": lambda name: layers.Dropout(0.5, name=name),
    "SpatialDropout2D": lambda name: layers.SpatialDropout2D(0.5, name=name),
    "GaussianNoise": lambda name: layers.GaussianNoise(0.3, name=name),
    "GaussianDropout": lambda name: layers.GaussianDropout(0.3, name=name),
    "AlphaDropout": lambda name: layers.AlphaDropout(0.3, name=name),
}


def _with_random(kind, training):
    inputs = tf.keras.Input((8, 8, 2))
    h = layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    h = RANDOM_IN_TRAINING[kind]("noisy")(h, training=training)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return tf.keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(h))


@pytest.mark.parametrize("kind", list(RANDOM_IN_TRAINING))
def test_random_layers_in_training_mode_are_refused(kind, images):
    """Monte Carlo dropout and friends: every call would give another map."""
    model = _with_random(kind, training=True)
    for method in ["sglrp", "lrp.epsilon", "smoothgrad", "integrated_gradients", "grad_cam"]:
        with pytest.raises(
            ValueError, match=rf"layer 'noisy' \({kind}\) is called with training=True; it is"
        ):
            sglrp.create_analyzer(method, model, low=0.0, high=1.0)
    # in inference mode they are the identity: accepted, and two analyses agree
    analyzer = sglrp.IG(_with_random(kind, training=None), steps=3)
    np.testing.assert_array_equal(analyzer.analyze(images, target=1), analyzer.analyze(images, 1))


def test_dropout_in_a_nested_model_called_in_training_mode_is_refused():
    inner_in = tf.keras.Input((8, 8, 2))
    h = layers.Dropout(0.5, name="inner_drop")(layers.Conv2D(3, 3)(inner_in))
    inner = tf.keras.Model(inner_in, layers.Flatten()(h), name="base")
    image = tf.keras.Input((8, 8, 2))
    model = tf.keras.Model(image, layers.Dense(N_CLASSES)(inner(image, training=True)))
    with pytest.raises(
        ValueError, match="layer 'inner_drop' \\(Dropout\\) runs in training mode: model 'base'"
    ):
        sglrp.SG(model)


def squeeze_excitation_net():
    """Rescaling inside, swish, a squeeze-and-excitation gate: EfficientNet's layers."""
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 2))
    h = layers.Rescaling(1 / 255, name="rescale")(inputs)
    h = layers.Conv2D(4, 3, activation="swish", name="conv")(h)
    g = layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(h)
    g = layers.Conv2D(4, 1, activation="sigmoid", name="excite")(g)
    h = layers.Multiply(name="gate")([h, g])
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return tf.keras.Model(inputs, layers.Dense(N_CLASSES, name="logits")(h))


@pytest.mark.parametrize("method", ["sglrp", "lrp.epsilon", "sglrp.sequential_preset_a"])
def test_squeeze_excitation_has_rules_in_the_keras3_engine_only(method, images):
    model = squeeze_excitation_net()
    if sglrp.engine == "keras3":
        with sglrp.create_analyzer(method, model, low=0.0, high=255.0) as analyzer:
            r = analyzer.analyze(images * 255, target=1)
        assert np.isfinite(r).all() and np.abs(r).sum() > 0
        return
    with pytest.raises(ValueError, match=r"in the Keras 3 engine only") as info:
        sglrp.create_analyzer(method, model)
    assert "Methods defined for this model: " in str(info.value)
    assert "lrp" not in str(info.value).split("Methods defined for this model: ")[1]
