"""Invariants of every registered method (parametrized over the registry), and of the heads'
combinations: shape, finiteness, batch = per-sample, relu, one build for many targets, weights
untouched, conservation, SGLRP's sums, single signed pass = target - dual."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import N_CLASSES, SINGLE_INPUT_METHODS, conv_net, default_kwargs, dense_net, softmax

import sglrp
from sglrp import Bounded, heads
from sglrp.rules import BoundedDeepTaylor

TARGETS = [1, 4, 0, 2]


@pytest.fixture(scope="module")
def analyzers(cnn):
    built = {}

    def get(name):
        if name not in built:
            built[name] = sglrp.create_analyzer(name, cnn, **default_kwargs(name))
        return built[name]

    yield get
    for analyzer in built.values():
        analyzer.close()


@pytest.mark.parametrize("name", SINGLE_INPUT_METHODS)
def test_shape_finite_and_one_build_for_all_targets(analyzers, images, name):
    analyzer = analyzers(name)
    first = analyzer.analyze(images, target=TARGETS)
    second = analyzer.analyze(images, target=3)
    assert first.shape == images.shape and first.dtype == np.float32
    assert np.isfinite(first).all() and np.isfinite(second).all()
    assert np.abs(first).sum() > 0
    assert not np.allclose(first, second)
    assert analyzer.n_builds == (2 if name == "guided_grad_cam" else 1)


@pytest.mark.parametrize("name", SINGLE_INPUT_METHODS)
def test_batch_equals_each_sample_alone(analyzers, images, name):
    analyzer = analyzers(name)
    batch = analyzer.analyze(images, target=TARGETS)
    alone = np.concatenate([analyzer.analyze(x[None], target=t) for x, t in zip(images, TARGETS)])
    np.testing.assert_allclose(batch, alone, rtol=1e-4, atol=1e-6)
    chunked = analyzer.analyze(images, target=TARGETS, batch_size=3)
    np.testing.assert_allclose(batch, chunked, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", SINGLE_INPUT_METHODS)
def test_relu_is_the_positive_part(cnn, analyzers, images, name):
    raw = analyzers(name).analyze(images, target=TARGETS)
    positive = sglrp.create_analyzer(name, cnn, relu=True, **default_kwargs(name))
    np.testing.assert_allclose(
        positive.analyze(images, target=TARGETS), np.maximum(raw, 0), rtol=1e-4, atol=1e-6
    )
    positive.close()


@pytest.mark.parametrize("name", SINGLE_INPUT_METHODS)
def test_default_target_is_the_constructor_then_the_prediction(cnn, analyzers, images, name):
    analyzer = analyzers(name)
    predicted = analyzer.predict_logits(images).argmax(1)
    np.testing.assert_allclose(analyzer.analyze(images), analyzer.analyze(images, target=predicted))
    fixed = sglrp.create_analyzer(name, cnn, target_id=3, **default_kwargs(name))
    np.testing.assert_allclose(
        fixed.analyze(images), analyzer.analyze(images, target=3), rtol=1e-5, atol=1e-7
    )
    fixed.close()


def test_logits_are_the_models_own(cnn, images):
    analyzer = sglrp.LRP(cnn, low=0.0, high=1.0)
    probabilities = cnn(images).numpy()
    np.testing.assert_allclose(softmax(analyzer.predict_logits(images)), probabilities, rtol=1e-5)


def test_weights_unchanged_and_user_model_stays_usable(images):
    model = conv_net()
    before = [w.copy() for w in model.get_weights()]
    out_before = model(images).numpy()
    for name in SINGLE_INPUT_METHODS:
        sglrp.create_analyzer(name, model, **default_kwargs(name)).analyze(images, target=1)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model(images).numpy(), out_before, rtol=1e-6)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(images, np.eye(N_CLASSES)[TARGETS], verbose=0, epochs=1)  # eager Keras still works


def test_weighted_targets_are_linear_for_linear_heads(analyzers, images):
    # LRP propagates linearly in the initial relevance: explaining 0.3*e1 + 0.7*e4 is the same
    # weighted sum of the two one-hot maps.
    lrp = analyzers("lrp")
    weights = np.zeros(N_CLASSES, np.float32)
    weights[[1, 4]] = [0.3, 0.7]
    mixed = lrp.analyze(images, class_weights=weights)
    np.testing.assert_array_equal(mixed, lrp.analyze(images, target=np.tile(weights, (4, 1))))
    expected = 0.3 * lrp.analyze(images, target=1) + 0.7 * lrp.analyze(images, target=4)
    np.testing.assert_allclose(mixed, expected, rtol=1e-4, atol=1e-6)


# -- conservation and SGLRP's sums (bias-free nets: Deep Taylor / z+ conserve relevance) ------


@pytest.fixture(scope="module")
def bias_free():
    model = conv_net(use_bias=False, softmax=True, seed=7)
    x = np.random.default_rng(8).uniform(0.05, 1, (3, 8, 8, 2)).astype(np.float32)
    return model, x


def _sums(r):
    return r.reshape(len(r), -1).astype(np.float64).sum(1)


@pytest.mark.parametrize("name", ["lrp", "lrp.z_plus", "lrp.epsilon"])
def test_conservation(bias_free, name):
    model, x = bias_free
    analyzer = sglrp.create_analyzer(name, model, **default_kwargs(name))
    logits = analyzer.predict_logits(x)
    target = logits.argmax(1)  # a positive logit
    assert (logits[np.arange(3), target] > 0).all()
    np.testing.assert_allclose(
        _sums(analyzer.analyze(x, target=target)), logits[np.arange(3), target], rtol=1e-4
    )


def test_sglrp_sums(bias_free):
    model, x = bias_free
    analyzer = sglrp.SGLRP(model, low=0.0, high=1.0)
    target = [0, 2, 4]
    y = softmax(analyzer.predict_logits(x))[np.arange(3), target]
    np.testing.assert_allclose(
        _sums(analyzer.analyze_target(x, target=target)), y * (1 - y), rtol=1e-4
    )
    np.testing.assert_allclose(
        _sums(analyzer.analyze_others(x, target=target)), y * (1 - y), rtol=1e-4
    )
    np.testing.assert_allclose(_sums(analyzer.analyze(x, target=target)), 0, atol=1e-6)


def test_clrp_scaled_sums_to_zero(bias_free):
    model, x = bias_free
    clrp = sglrp.CLRP(model, low=0.0, high=1.0)
    np.testing.assert_allclose(_sums(clrp.analyze(x, target=[1, 2, 3])), 0, atol=1e-5)


def test_single_signed_pass_equals_target_minus_dual(cnn, images):
    class SignedSGLRP(Bounded, sglrp.ReverseAnalyzer, BoundedDeepTaylor):
        heads = (heads.softmax_gradient,)

    signed = SignedSGLRP(cnn, low=0.0, high=1.0).analyze(images, target=TARGETS)
    two_maps = sglrp.SGLRP(cnn, low=0.0, high=1.0, scaling=False)
    np.testing.assert_allclose(
        signed, two_maps.analyze(images, target=TARGETS), rtol=1e-4, atol=1e-9
    )
    target = two_maps.analyze_target(images, target=TARGETS)
    dual = two_maps.analyze_others(images, target=TARGETS)
    np.testing.assert_allclose(signed, target - dual, rtol=1e-4, atol=1e-9)


def test_scaled_contrast_uses_per_image_sums(cnn, images):
    clrp = sglrp.CLRP(cnn, low=0.0, high=1.0)
    target = clrp.analyze_target(images, target=TARGETS).astype(np.float64)
    dual = clrp.analyze_others(images, target=TARGETS).astype(np.float64)
    scale = _sums(target) / _sums(dual)
    expected = target - dual * scale[:, None, None, None]
    np.testing.assert_allclose(clrp.analyze(images, target=TARGETS), expected, rtol=1e-4, atol=1e-7)


def test_max_pool_ties_lose_no_relevance():
    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            tf.keras.Input((4, 4, 1)),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(3, use_bias=False, kernel_initializer="ones", name="top"),
        ]
    )
    x = np.ones((1, 4, 4, 1), np.float32)  # every pooling window is a four-way tie
    for analyzer in (sglrp.LRPZPlus(model), sglrp.LRPE(model)):
        r = analyzer.analyze(x, target=0)
        np.testing.assert_allclose(r.sum(), 4.0, rtol=1e-6)
        assert np.count_nonzero(r) == 4  # one winner per window, as the gradient routes it


def test_sequential_presets_differ_from_each_other(analyzers, images):
    a = analyzers("sglrp.sequential_preset_a").analyze(images, target=TARGETS)
    b = analyzers("sglrp.sequential_preset_b").analyze(images, target=TARGETS)
    assert not np.allclose(a, b)


def test_dense_model_works_for_relevance_methods(vectors):
    model = dense_net(softmax=True)
    for cls in (sglrp.LRP, sglrp.SGLRP, sglrp.CLRP, sglrp.LRPE, sglrp.SGLRPSeqA):
        r = cls(model).analyze(vectors, target=1)
        assert r.shape == vectors.shape and np.isfinite(r).all()


def test_two_input_model_gets_one_map_per_input_and_conserves():
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(3)
    a, b = tf.keras.Input((3,), name="a"), tf.keras.Input((4,), name="b")
    h = layers.Concatenate()(
        [
            layers.Dense(5, activation="relu", use_bias=False)(a),
            layers.Dense(5, activation="relu", use_bias=False)(b),
        ]
    )
    model = tf.keras.Model([a, b], layers.Dense(3, use_bias=False)(h))
    rng = np.random.default_rng(0)
    xa, xb = rng.uniform(0.1, 1, (2, 3)), rng.uniform(0.1, 1, (2, 4))
    analyzer = sglrp.LRPZPlus(model)
    target = analyzer.predict_logits([xa, xb]).argmax(1)
    ra, rb = analyzer.analyze([xa, xb], target=target)
    assert ra.shape == xa.shape and rb.shape == xb.shape
    logits = analyzer.predict_logits([xa, xb])[np.arange(2), target]
    np.testing.assert_allclose(ra.sum(1) + rb.sum(1), logits, rtol=1e-4)
    clrp = sglrp.SGLRP(model, low=0.0, high=1.0)
    assert len(clrp.analyze([xa, xb], target=1)) == 2


@pytest.mark.parametrize(
    "cls, target_head, dual_head",
    [
        (sglrp.SGLRP, heads.softmax_gradient_target, heads.softmax_gradient_dual),
        (sglrp.CLRP, heads.output, heads.contrastive_dual),
    ],
)
def test_one_graph_equals_two_separate_analyzers(cnn, images, cls, target_head, dual_head):
    # the original's definition: one analyzer for the target map, another for the dual map
    class Target(Bounded, sglrp.ReverseAnalyzer, BoundedDeepTaylor):
        heads = (target_head,)

    class Dual(Bounded, sglrp.ReverseAnalyzer, BoundedDeepTaylor):
        heads = (dual_head,)

    target = Target(cnn, low=0.0, high=1.0).analyze(images, target=TARGETS).astype(np.float64)
    dual = Dual(cnn, low=0.0, high=1.0).analyze(images, target=TARGETS).astype(np.float64)
    scale = (_sums(target) / _sums(dual))[:, None, None, None]
    fused = cls(cnn, low=0.0, high=1.0).analyze(images, target=TARGETS)
    np.testing.assert_allclose(fused, target - dual * scale, rtol=1e-5, atol=1e-7)


# -- the analyzer follows the model -------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sglrp.ContrastLostWarning")  # one image, random weights
@pytest.mark.parametrize("method", ["lrp", "sglrp", "grad_cam", "guided_grad_cam", "smoothgrad"])
def test_analyzer_follows_the_model_after_fit_and_set_weights(method, images):
    model = conv_net(seed=3)
    kwargs = {**default_kwargs(method), "low": 0.0, "high": 1.0}
    analyzer = sglrp.create_analyzer(method, model, **kwargs)
    before = analyzer.analyze(images, target=TARGETS)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    model.fit(images, np.eye(N_CLASSES)[TARGETS], verbose=0, epochs=3)
    fresh = sglrp.create_analyzer(method, model, **kwargs)
    np.testing.assert_allclose(analyzer.predict_logits(images), fresh.predict_logits(images),
                               rtol=1e-5, atol=1e-6)
    after = analyzer.analyze(images, target=TARGETS)
    np.testing.assert_allclose(after, fresh.analyze(images, target=TARGETS), rtol=1e-5, atol=1e-6)
    assert not np.allclose(after, before)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    np.testing.assert_allclose(
        analyzer.analyze(images, target=TARGETS),
        sglrp.create_analyzer(method, model, **kwargs).analyze(images, target=TARGETS),
        rtol=1e-5,
        atol=1e-6,
    )
    assert analyzer.n_builds == fresh.n_builds


def two_input_net():
    """Two inputs (8, 8, 2) and (6,) -> conv / dense branches -> concatenated -> Dense 5."""
    tf.keras.utils.set_random_seed(7)
    layers = tf.keras.layers
    a, b = tf.keras.Input((8, 8, 2), name="image"), tf.keras.Input((6,), name="vector")
    ha = layers.Flatten()(layers.Conv2D(3, 3, activation="relu")(a))
    hb = layers.Dense(4, activation="relu")(b)
    h = layers.Concatenate()([ha, hb])
    return tf.keras.Model([a, b], layers.Dense(N_CLASSES, name="logits")(h))


def test_integrated_gradients_on_two_inputs_is_complete(images, vectors):
    model = two_input_net()
    ig = sglrp.IG(model, steps=256)
    maps = ig.analyze([images, vectors], target=TARGETS)
    assert [m.shape for m in maps] == [images.shape, vectors.shape]
    logits = model([images, vectors]).numpy()
    base = model([np.zeros_like(images), np.zeros_like(vectors)]).numpy()
    total = maps[0].sum(axis=(1, 2, 3)) + maps[1].sum(axis=1)
    rows = np.arange(4)
    np.testing.assert_allclose(total, (logits - base)[rows, TARGETS], rtol=2e-3, atol=2e-4)


def test_smoothgrad_on_two_inputs_averages_the_gradients(images, vectors):
    model = two_input_net()
    sg = sglrp.SG(model, augment_by_n=3, noise_scale=0.0)  # no noise: the plain gradient
    maps = sg.analyze([images, vectors], target=TARGETS)
    with tf.GradientTape() as tape:
        inputs = [tf.constant(images), tf.constant(vectors)]
        tape.watch(inputs)
        score = tf.reduce_sum(model(inputs) * np.eye(N_CLASSES, dtype=np.float32)[TARGETS])
    grads = tape.gradient(score, inputs)
    for got, expected in zip(maps, grads):
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


def _bottleneck_net():
    """Every class's relevance passes through one unit: below it the target and dual maps of
    Deep Taylor are the same map times their totals, so CLRP's and SGLRP's maps cancel."""
    rng = np.random.default_rng(3)
    inputs = tf.keras.Input((8, 8, 1))
    h = tf.keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = tf.keras.layers.Flatten()(h)
    h = tf.keras.layers.Dense(1, activation="relu")(h)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(N_CLASSES)(h))
    conv, dense, top = (layer for layer in model.layers if layer.weights)
    conv.set_weights([rng.normal(0, 0.5, (3, 3, 1, 4)), np.full(4, 0.1)])
    dense.set_weights([rng.uniform(0.1, 1, (144, 1)), np.zeros(1)])
    top.set_weights([rng.uniform(0.1, 1, (1, N_CLASSES)), np.zeros(N_CLASSES)])
    return model, rng.uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)


@pytest.mark.parametrize("cls", [sglrp.SGLRP, sglrp.CLRP])
def test_a_contrast_lost_to_rounding_is_reported(cls, cnn, images):
    model, x = _bottleneck_net()
    analyzer = cls(model, low=0.0, high=1.0)
    with pytest.warns(sglrp.ContrastLostWarning, match=r"dual maps cancel in 3 of the 3 images"):
        result = analyzer.analyze(x, target=[0, 1, 2])
    target = np.abs(analyzer.analyze_target(x, target=[0, 1, 2])).sum(axis=(1, 2, 3))
    assert (np.abs(result).sum(axis=(1, 2, 3)) < sglrp.analyzer.CANCELLED * target).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", sglrp.ContrastLostWarning)
        analyzer.analyze(x, target=[0, 1, 2])  # once per analyzer and weights
        # a network whose maps keep their contrast: no warning
        cls(cnn, low=0.0, high=1.0).analyze(images, target=TARGETS)
    model.set_weights([w * 0.5 for w in model.get_weights()])  # new weights: checked again
    with pytest.warns(sglrp.ContrastLostWarning):
        analyzer.analyze(x, target=[0, 1, 2])
    assert analyzer.contrast_lost.startswith(cls.__name__)


@pytest.mark.parametrize("cls", [sglrp.SGLRP, sglrp.CLRP])
def test_the_contrast_is_judged_over_all_inputs(cls):
    # a scalar side input: its map is one number per sample, which the scaling cancels by
    # construction; the image's map keeps its contrast, so the maps as a whole do
    tf.keras.utils.set_random_seed(7)
    layers = tf.keras.layers
    a, b = tf.keras.Input((8, 8, 2)), tf.keras.Input((1,))
    ha = layers.Flatten()(layers.Conv2D(3, 3, activation="relu")(a))
    hb = layers.Dense(4, activation="relu")(b)
    model = tf.keras.Model([a, b], layers.Dense(N_CLASSES)(layers.Concatenate()([ha, hb])))
    rng = np.random.default_rng(0)
    x = [rng.uniform(0, 1, (4, 8, 8, 2)).astype(np.float32),
         rng.uniform(0.5, 1, (4, 1)).astype(np.float32)]
    analyzer = cls(model, low=0.0, high=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sglrp.ContrastLostWarning)
        image, scalar = analyzer.analyze(x, target=TARGETS)
    target_image, target_scalar = analyzer.analyze_target(x, target=TARGETS)
    assert (np.abs(scalar) <= sglrp.analyzer.CANCELLED * np.abs(target_scalar)).all()
    left = np.abs(image).reshape(4, -1).sum(1) / np.abs(target_image).reshape(4, -1).sum(1)
    assert (left > sglrp.analyzer.CANCELLED).all()
    assert analyzer.contrast_lost is None
