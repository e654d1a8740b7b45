"""Bad input gets a clear error that names the value and what is right, and breaks nothing."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import N_CLASSES, conv_net

import sglrp


@pytest.fixture(scope="module")
def lrp(cnn):
    return sglrp.LRP(cnn, low=0.0, high=1.0)


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros((8, 8, 2), np.float32), ValueError, ["(8, 8, 2)", "(N, 8, 8, 2)", "x[None]"]),
        (np.zeros((2, 9, 8, 2), np.float32), ValueError, ["axis 1 is 9", "expected 8"]),
        (np.zeros((2, 8, 8, 3), np.float32), ValueError, ["axis 3 is 3", "expected 2"]),
        (np.zeros((0, 8, 8, 2), np.float32), ValueError, ["empty batch"]),
        (np.full((2, 8, 8, 2), "a"), TypeError, ["dtype <U1"]),
        (np.zeros((2, 8, 8, 2), bool), TypeError, ["dtype bool"]),
    ],
)
def test_bad_inputs(lrp, images, x, error, words):
    with pytest.raises(error) as info:
        lrp.analyze(x, target=1)
    for word in words:
        assert word in str(info.value)
    assert np.isfinite(lrp.analyze(images, target=1)).all()  # the analyzer still works


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(lrp, images, bad):
    x = images.copy()
    x[1, 2, 3, 0] = bad
    with pytest.raises(
        ValueError, match=r"1 NaN or infinite values \(first at index \(1, 2, 3, 0\)\)"
    ):
        lrp.analyze(x, target=1)


def test_integer_images_are_accepted(lrp):
    x = np.ones((1, 8, 8, 2), np.uint8)
    assert np.isfinite(lrp.analyze(x, target=0)).all()


@pytest.mark.parametrize(
    "target, error, message",
    [
        (5, ValueError, "target 5 is out of range for a model with 5 classes (valid: 0..4)"),
        (-1, ValueError, "target -1 is out of range"),
        ([1, 2], ValueError, "got 2 targets for a batch of 4 samples"),
        ("zebra", TypeError, "target must be an int"),
        (1.5, TypeError, "integer class ids"),
        (np.zeros((3, N_CLASSES), np.float32), ValueError, "expected (4, 5): one row"),
        (np.zeros((4, N_CLASSES), np.float32), ValueError, "are all zero"),
    ],
)
def test_bad_targets(lrp, images, target, error, message):
    with pytest.raises(error) as info:
        lrp.analyze(images, target=target)
    assert message in str(info.value)


def test_bad_target_id_fails_at_construction(cnn):
    with pytest.raises(ValueError, match="target 7 is out of range"):
        sglrp.SGLRP(cnn, target_id=7)


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, -1.0), (np.nan, 1.0)])
def test_bounds(cnn, low, high):
    with pytest.raises(ValueError, match="low < high"):
        sglrp.LRP(cnn, low=low, high=high)


def test_several_outputs():
    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(
        inputs, [tf.keras.layers.Dense(3)(inputs), tf.keras.layers.Dense(2)(inputs)]
    )
    with pytest.raises(
        ValueError, match="has 2 outputs; sglrp explains a classifier with exactly one"
    ):
        sglrp.LRPE(model)


def test_softmax_inside_the_model():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(3, activation="softmax", name="inner"),
            tf.keras.layers.Dense(3, name="top"),
        ]
    )
    with pytest.raises(ValueError, match="layer 'inner' applies a softmax inside the model"):
        sglrp.LRPE(model)


def test_final_softmax_layer_is_stripped_and_said_once(images):
    base = conv_net(softmax=False)
    model = tf.keras.Sequential(
        [tf.keras.Input((8, 8, 2)), base, tf.keras.layers.Softmax(name="probabilities")]
    )
    with pytest.warns(UserWarning, match="ends in a softmax \\(layer 'probabilities'\\)"):
        a = sglrp.LRPE(model)
    np.testing.assert_allclose(a.predict_logits(images), base(images).numpy(), rtol=1e-5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sglrp.LRPE(model)  # not said twice


def test_non_relu_activation_is_named():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(3, activation="softplus", name="hidden"),
            tf.keras.layers.Dense(2, name="top"),
        ]
    )
    with pytest.raises(ValueError, match="layer 'hidden' \\(Dense\\) applies 'softplus'"):
        sglrp.SGLRP(model)
    with pytest.raises(ValueError, match="GBP is defined for ReLU networks"):
        sglrp.GBP(model)
    assert np.isfinite(sglrp.LRPE(model).analyze(np.ones((1, 4)), target=0)).all()


def test_lambda_layer_is_named():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Lambda(lambda v: 2 * v, name="double"),
            tf.keras.layers.Dense(2, name="top"),
        ]
    )
    with pytest.raises(ValueError, match="layer 'double' \\(Lambda\\) has no rule there"):
        sglrp.LRPE(model)


def test_standalone_activation_layer_is_named():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(3, name="hidden"),
            tf.keras.layers.Activation("sigmoid", name="squash"),
            tf.keras.layers.Dense(2, name="top"),
        ]
    )
    # a sigmoid has a rule only as a gate (Keras 3 engine): refused here on both engines
    with pytest.raises(ValueError, match="layer 'squash' \\(Activation\\)") as info:
        sglrp.LRP(model)
    assert "'sigmoid'" in str(info.value)


def test_unbuilt_model():
    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="is not built"):
        sglrp.LRPE(model)


def test_unknown_method_lists_the_valid_ones(cnn):
    with pytest.raises(KeyError) as info:
        sglrp.create_analyzer("sglrp2", cnn)
    for name in sglrp.available_methods():
        assert name in str(info.value)


def test_grad_cam_bad_layer(cnn):
    with pytest.raises(ValueError, match="layer 'logits' is not a layer with a 4-D output.*conv1"):
        sglrp.GradCAM(cnn, layer_name="logits")


def test_batch_size_must_be_positive(lrp, images):
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        lrp.analyze(images, target=1, batch_size=0)


def test_closed_analyzer_says_so(cnn, images):
    with sglrp.LRPE(cnn) as analyzer:
        analyzer.analyze(images, target=1)
    with pytest.raises(RuntimeError, match="closed"):
        analyzer.analyze(images, target=1)


def test_not_a_model():
    with pytest.raises(TypeError, match="model must be a keras.Model, got str"):
        sglrp.LRP("vgg16")


# -- a target's meaning never depends on the batch size ---------------------------------------


@pytest.mark.parametrize("n", [N_CLASSES, 4])
def test_float_ids_are_refused_whatever_the_batch_size(cnn, n):
    x = np.random.default_rng(0).uniform(0, 1, (n, 8, 8, 2)).astype(np.float32)
    lrp = sglrp.LRP(cnn, low=0.0, high=1.0)
    with pytest.raises(TypeError, match="integer class ids"):
        lrp.analyze(x, target=np.arange(n, dtype=np.float64))
    with pytest.raises(TypeError, match="integer class ids"):
        lrp.analyze(x, target=1.0)
    np.testing.assert_array_equal(
        lrp.analyze(x, target=np.arange(n) % N_CLASSES),
        lrp.analyze(x, target=[i % N_CLASSES for i in range(n)]),
    )


def test_column_and_several_ids_say_what_to_pass(lrp, images):
    with pytest.raises(ValueError, match=r"shape \(4, 1\); pass one class id per sample"):
        lrp.analyze(images, target=np.ones((4, 1), int))
    with pytest.raises(ValueError, match="class_weights"):
        lrp.analyze(images, target=np.ones((4, 2), int))


def test_class_weights_keyword(lrp, images):
    weights = np.zeros(N_CLASSES)
    weights[2] = 1.0
    np.testing.assert_array_equal(
        lrp.analyze(images, class_weights=weights), lrp.analyze(images, target=2)
    )
    with pytest.raises(ValueError, match="either target or class_weights"):
        lrp.analyze(images, target=2, class_weights=weights)
    with pytest.raises(ValueError, match=r"class_weights have shape \(3,\)"):
        lrp.analyze(images, class_weights=np.ones(3))


# -- arguments checked at construction ----------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda m: sglrp.LRP(m, low="a"), TypeError, "low must be a number, got 'a'"),
        (lambda m: sglrp.SGLRP(m, high=np.inf), ValueError, "low < high, both finite"),
        (lambda m: sglrp.GradCAM(m, layer_name=123), TypeError, "layer_name must be a layer"),
        (lambda m: sglrp.SG(m, noise_level=np.nan), ValueError, "noise_level must be a finite"),
        (lambda m: sglrp.SG(m, augment_by_n=0), ValueError, "augment_by_n must be an int >= 1"),
        (lambda m: sglrp.IG(m, reference_inputs=np.nan), ValueError, "reference_inputs[0]"),
        (lambda m: sglrp.IG(m, steps=2.5), ValueError, "steps must be an int >= 1"),
        (lambda m: sglrp.LRPE(m, epsilon=0), ValueError, "epsilon must be a finite number > 0"),
    ],
)
def test_bad_method_arguments(cnn, make, error, words):
    with pytest.raises(error) as info:
        make(cnn)
    assert words in str(info.value)


def test_create_analyzer_takes_the_common_keywords_for_every_method(cnn, images):
    for name in sglrp.available_methods():
        if name == "grad_cam.multi_input":
            continue
        with sglrp.create_analyzer(
            name, cnn, target_id=1, relu=True, low=0.0, high=1.0
        ) as analyzer:
            assert analyzer.relu and analyzer.target_id == 1
            assert (analyzer.analyze(images[:1]) >= 0).all()


def test_create_analyzer_names_the_valid_keywords(cnn):
    with pytest.raises(TypeError, match=r"got unexpected keyword arguments \['epsilon'\].*low"):
        sglrp.create_analyzer("sglrp", cnn, epsilon=0.1)
    with pytest.raises(TypeError, match="epsilon"):
        sglrp.create_analyzer("lrp.epsilon", cnn, eps=0.1)


# -- a forgotten input bound ---------------------------------------------------------------------


def test_inputs_outside_the_bounds_warn_once(cnn, images):
    import warnings

    analyzer = sglrp.SGLRP(cnn)  # default bounds -1, 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyzer.analyze(images, target=1)  # in [0, 1]: inside
    with pytest.warns(UserWarning, match=r"outside the bounds low=-1, high=1.*low=0, high=1"):
        analyzer.analyze(images * 3, target=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analyzer.analyze(images * 3, target=1)  # said once
