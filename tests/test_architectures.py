"""Real architectures: ``keras.applications`` VGG16/19, ResNet50, MobileNetV2, DenseNet121,
InceptionV3 and a transfer model (a base nested in a Sequential with a new head).

Fast: canonization (nested models flattened, batch norms folded or made linear, input padding
merged) keeps the predictions; every method on a small residual net with BN, Add, Concatenate,
pooling and zero padding; three methods on the MobileNetV2 transfer model; the input bounds of
the preprocessing modes. Slow (``pytest -m slow``): every method on every architecture, with
Grad-CAM's default layer and relevance conservation where the rule promises it.

The models have random weights (ImageNet weights cannot be downloaded here), made data-dependent
so that activations and logits are of order one: batch norms get the statistics of a batch of
inputs, BN-free nets (VGG) kernels scaled to unit output variance, layer by layer. With Keras'
plain random initialization MobileNetV2's logits are ~1e-12 and every comparison is noise.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import N_CLASSES, SINGLE_INPUT_METHODS, conv_net, default_kwargs, softmax

import sglrp
from sglrp.canonize import canonize
from sglrp.keras_graph import nested_name, producers
from sglrp.models import IMAGENET_CAFFE_HIGH, IMAGENET_CAFFE_LOW, preprocessing_bounds

applications = tf.keras.applications
layers = tf.keras.layers


# -- models ------------------------------------------------------------------------------------


def _flat_layers(model):
    out = []
    for layer in model.layers:
        out.extend(_flat_layers(layer) if isinstance(layer, tf.keras.Model) else [layer])
    return out


def calibrate(model, x):
    """Data-dependent random weights: BN statistics of ``x``, or unit-variance kernels."""
    flat = _flat_layers(model)
    norms = [layer for layer in flat if isinstance(layer, layers.BatchNormalization)]
    if norms:
        for layer in norms:
            layer.momentum = 0.0  # the moving statistics become those of this batch
        model(x, training=True)
        for layer in norms:
            layer.momentum = 0.99
        return
    for layer in flat[:-1]:
        if hasattr(layer, "kernel"):
            std = float(np.std(tf.keras.Model(model.inputs, layer.output)(x)))
            layer.set_weights([layer.get_weights()[0] / std, *layer.get_weights()[1:]])


def transfer_model(seed=0):
    """MobileNetV2 base (no top) nested in a Sequential with a new head of 5 classes."""
    tf.keras.utils.set_random_seed(seed)
    base = applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    return tf.keras.Sequential(
        [
            tf.keras.Input((32, 32, 3)),
            base,
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dropout(0.2, name="dropout"),
            layers.Dense(N_CLASSES, name="head"),
        ],
        name="transfer",
    )


def _application(cls, size):
    def make(seed=0):
        tf.keras.utils.set_random_seed(seed)
        return cls(weights=None, input_shape=(size, size, 3), classes=10)

    return make


#: name -> (builder, Grad-CAM's default layer: the last 4-D feature layer)
ARCHITECTURES = {
    "vgg16": (_application(applications.VGG16, 32), "block5_pool"),
    "vgg19": (_application(applications.VGG19, 32), "block5_pool"),
    "resnet50": (_application(applications.ResNet50, 32), "conv5_block3_out"),
    "mobilenetv2": (_application(applications.MobileNetV2, 32), "out_relu"),
    "densenet121": (_application(applications.DenseNet121, 32), "relu"),
    "inceptionv3": (_application(applications.InceptionV3, 75), "mixed10"),
    "transfer": (transfer_model, "out_relu"),
}


def inputs_for(model, n, seed):
    """Images in [-1, 1] (the range of the "tf" preprocessing; low/high of the bounded rules)."""
    shape = (n, *model.input_shape[1:])
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def built(name):
    model = ARCHITECTURES[name][0]()
    calibrate(model, inputs_for(model, 16, seed=1))
    return model


def residual_net(seed=0):
    """A small ResNet/MobileNet/DenseNet-style net: every kind of layer the big ones have.

    Zero padding at the input before a strided valid conv, BN after a conv, a depthwise conv
    and a dense layer (folded), BN after an Add and after global pooling (kept, made linear),
    ReLU6, average and max pooling, Concatenate, global average pooling, softmax.
    """
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((12, 12, 3), name="image")
    h = layers.ZeroPadding2D(1, name="pad")(inputs)
    h = layers.Conv2D(8, 3, strides=2, use_bias=False, name="stem")(h)
    h = layers.BatchNormalization(name="stem_bn")(h)
    h = layers.ReLU(name="stem_relu")(h)
    r = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(h)
    r = layers.BatchNormalization(name="dw_bn")(r)
    r = layers.ReLU(6.0, name="dw_relu6")(r)
    r = layers.Conv2D(8, 1, name="project")(r)
    r = layers.BatchNormalization(name="project_bn")(r)
    h = layers.Add(name="add")([h, r])
    h = layers.BatchNormalization(name="add_bn")(h)
    h = layers.Activation("relu", name="add_relu")(h)
    h = layers.Concatenate(name="concat")(
        [layers.AveragePooling2D(2, name="avg")(h), layers.MaxPooling2D(2, name="max")(h)]
    )
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    h = layers.BatchNormalization(name="gap_bn")(h)
    h = layers.Dense(8, name="fc")(h)
    h = layers.BatchNormalization(name="fc_bn")(h)
    h = layers.ReLU(name="fc_relu")(h)
    model = tf.keras.Model(
        inputs, layers.Dense(N_CLASSES, activation="softmax", name="logits")(h), name="residual"
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape),  # gamma
                    rng.normal(0, 0.2, shape),  # beta
                    rng.normal(0, 0.2, shape),  # moving mean
                    rng.uniform(0.5, 1.5, shape),  # moving variance
                ]
            )
    return model


def _sums(r):
    return r.reshape(len(r), -1).astype(np.float64).sum(1)


# -- preprocessing bounds ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocessing_bounds_match_keras(mode):
    black_and_white = np.stack([np.zeros((2, 2, 3)), np.full((2, 2, 3), 255.0)])
    done = applications.imagenet_utils.preprocess_input(
        black_and_white.astype(np.float32), mode=mode
    )
    np.testing.assert_allclose(preprocessing_bounds(mode), (done.min(), done.max()), rtol=1e-6)


def test_preprocessing_bounds_of_caffe_are_the_original_examples():
    assert preprocessing_bounds("caffe") == pytest.approx((IMAGENET_CAFFE_LOW, IMAGENET_CAFFE_HIGH))
    assert preprocessing_bounds("tf") == (-1.0, 1.0)
    with pytest.raises(KeyError, match="'vgg'.*valid modes: caffe, tf, torch"):
        preprocessing_bounds("vgg")


# -- canonization ------------------------------------------------------------------------------


def test_canonize_keeps_the_predictions_and_the_names():
    model = residual_net()
    x = np.random.default_rng(3).uniform(-1, 1, (4, 12, 12, 3)).astype(np.float32)
    canon = canonize(model)
    np.testing.assert_allclose(canon(x), model(x), rtol=1e-4, atol=1e-7)
    names = {layer.name: type(layer).__name__ for layer in canon.layers}
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in canon.layers)
    # folded into the layer before them: gone
    for gone in ("pad", "stem_bn", "dw_bn", "project_bn", "fc_bn"):
        assert gone not in names
    # BN after a merge / a pooling: kept as a per-channel linear layer of the same name
    assert names["add_bn"] == "DepthwiseConv2D" and names["gap_bn"] == "Dense"
    for kept in ("image", "stem", "dw", "dw_relu6", "project", "add", "concat", "gap", "logits"):
        assert kept in names
    # the input padding is now the stem's own "same" padding, with a kernel in a zero border
    stem = canon.get_layer("stem")
    assert stem.padding == "same" and stem.kernel_size == (4, 4)
    assert [type(p).__name__ for p in producers(stem)] == ["InputLayer"]
    assert canon.get_layer("dw").use_bias and canon.get_layer("fc").use_bias
    assert canon.name == model.name


def test_canonize_leaves_the_users_model_alone():
    model = residual_net()
    before = [w.copy() for w in model.get_weights()]
    canonize(model)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("add").output is not None  # one inbound node: no layer was reused
    plain = conv_net()
    assert canonize(plain) is plain  # nothing to do


def test_canonize_builds_once_and_follows_the_weights():
    model = residual_net()
    x = np.random.default_rng(5).uniform(-1, 1, (2, 12, 12, 3)).astype(np.float32)
    canon = canonize(model)
    assert canonize(model) is canon  # one graph per model, whatever the analyzers
    for name in ("fc_bn", "add_bn", "stem"):  # folded, made linear, padding merged
        layer = model.get_layer(name)
        layer.set_weights([w * 1.5 + 0.1 for w in layer.get_weights()])
    assert canonize(model) is canon
    np.testing.assert_allclose(canon(x), model(x), rtol=1e-4, atol=1e-7)


def test_canonize_flattens_nested_models():
    tf.keras.utils.set_random_seed(0)
    inner_in = tf.keras.Input((6, 6, 2))
    h = layers.Conv2D(3, 3, name="conv")(inner_in)
    h = layers.BatchNormalization(name="conv_bn")(h)
    h = layers.ReLU(name="relu")(h)
    inner = tf.keras.Model(
        inner_in, layers.Dense(4, name="dense")(layers.Flatten()(h)), name="base"
    )
    outer_in = tf.keras.Input((6, 6, 2), name="pixels")
    h = inner(outer_in, training=False)
    outer = tf.keras.Model(outer_in, layers.Dense(3, name="dense")(h), name="outer")
    sequential = tf.keras.Sequential([tf.keras.Input((6, 6, 2)), inner, layers.Dense(3)])
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype(np.float32)
    for model in (outer, sequential):
        canon = canonize(model)
        assert not any(isinstance(layer, tf.keras.Model) for layer in canon.layers)
        np.testing.assert_allclose(canon(x), model(x), rtol=1e-4, atol=1e-6)
    names = [layer.name for layer in canonize(outer).layers]
    assert names[:3] == ["pixels", "conv", "relu"] and nested_name("base", "dense") in names


def test_canonize_refuses_a_nested_subclassed_model():
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


# -- every method on the small residual net ---------------------------------------------------


@pytest.fixture(scope="module")
def residual():
    model = residual_net()
    x = np.random.default_rng(4).uniform(-1, 1, (2, 12, 12, 3)).astype(np.float32)
    return model, x


@pytest.mark.parametrize("name", SINGLE_INPUT_METHODS)
def test_every_method_on_the_residual_net(residual, name):
    model, x = residual
    with sglrp.create_analyzer(name, model, **_kwargs(name)) as analyzer:
        np.testing.assert_allclose(
            softmax(analyzer.predict_logits(x)), model(x), rtol=1e-4, atol=1e-7
        )
        r = analyzer.analyze(x, target=[1, 3])
    assert r.shape == x.shape and np.isfinite(r).all() and np.abs(r).sum() > 0
    if name == "grad_cam":
        assert analyzer.layer_names == ["concat"]


def test_bounded_rule_applies_after_input_padding(residual):
    # z^B depends on low/high only at an input layer; the merged padding makes "stem" one.
    model, x = residual
    narrow = sglrp.LRP(model, low=-1.0, high=1.0).analyze(x, target=1)
    wide = sglrp.LRP(model, low=-3.0, high=3.0).analyze(x, target=1)
    assert not np.allclose(narrow, wide)


# -- the transfer model (fast subset) ----------------------------------------------------------


@pytest.fixture(scope="module")
def transfer():
    model = built("transfer")
    return model, inputs_for(model, 2, seed=2)


@pytest.mark.parametrize(
    "name", [pytest.param("sglrp", marks=pytest.mark.slow), "lrp.epsilon", "grad_cam"]
)
def test_transfer_model(transfer, name):
    model, x = transfer
    with sglrp.create_analyzer(name, model, **_kwargs(name)) as analyzer:
        np.testing.assert_allclose(analyzer.predict_logits(x), model(x), rtol=1e-4, atol=1e-4)
        r = analyzer.analyze(x)
    assert r.shape == x.shape and np.isfinite(r).all() and np.abs(r).sum() > 0
    if name == "sglrp":
        np.testing.assert_allclose(_sums(r), 0, atol=1e-6)  # target - scaled dual
    if name == "grad_cam":
        assert analyzer.layer_names == ["out_relu"]


# -- the model x method matrix (slow) ----------------------------------------------------------


def _kwargs(name):
    kwargs = default_kwargs(name)
    if "low" in kwargs:
        kwargs.update(low=-1.0, high=1.0)
    return kwargs


#: (architecture, method) -> rtol of sum(R) = z_t, where it holds (measured, see the README).
#: On the bias-free VGGs: Deep Taylor (z^B, z+), LRP-epsilon, z+ and Integrated Gradients (a
#: bias-free ReLU net is positively homogeneous: every Riemann sum is exact). z+ ignores the
#: biases of the folded batch norms and conserves on ResNet50 and InceptionV3. Not conserved:
#: Deep Taylor wherever Add or average pooling occurs (innvestigate reverses them with the
#: gradient: an Add copies the relevance to each summand, ResNet50 and MobileNetV2 sum to
#: ~1e2-1e4 z_t; average pooling spreads it onto zero activations, InceptionV3 and DenseNet121
#: keep ~0.4-0.7 z_t), and z+ on DenseNet121 and MobileNetV2 (~0.2-0.4 z_t), whose per-channel
#: layers (kept BNs, depthwise convolutions on 1x1 maps) have units active by their bias alone.
CONSERVING = {
    **{
        (a, m): 1e-3
        for a in ("vgg16", "vgg19")
        for m in ("lrp", "lrp.epsilon", "lrp.z_plus", "integrated_gradients")
    },
    ("resnet50", "lrp.z_plus"): 1e-3,
    ("inceptionv3", "lrp.z_plus"): 1e-3,
    # Deep Taylor with the z rule at Add and average pooling (sglrp.relevance._Bounded)
    ("resnet50", "lrp"): 1e-3,
    ("inceptionv3", "lrp"): 1e-3,
}

MATRIX = [(a, m) for a in ARCHITECTURES for m in SINGLE_INPUT_METHODS]


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(name):
        if name not in cache:
            cache.clear()  # one big model at a time
            cache[name] = built(name)
        return cache[name]

    return get


def _float64(config):
    """A Keras model config with every layer in float64."""
    if isinstance(config, dict):
        return {k: "float64" if k == "dtype" else _float64(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float64(v) for v in config]
    return config


def _scores(model, x):
    """The model's logits up to a constant per sample (log-probabilities after a softmax)."""
    out = np.asarray(model(x), np.float64)
    return (
        np.log(out) if _flat_layers(model)[-1].get_config().get("activation") == "softmax" else out
    )


def _in_float64(model):
    exact = model.__class__.from_config(_float64(model.get_config()))
    exact.set_weights([w.astype(np.float64) for w in model.get_weights()])
    return exact


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_canonized_architecture_predicts_the_same(models, arch):
    model = models(arch)
    x = inputs_for(model, 4, seed=3)
    exact = _in_float64(model)
    reference = _scores(exact, x.astype(np.float64))
    # The rewrite itself is exact: in float64 the canonized model's logits equal the
    # original's to float64 rounding (measured: <= 2e-13 of their range).
    canon_exact = canonize(exact)
    assert np.abs(_scores(canon_exact, x.astype(np.float64)) - reference).max() <= 1e-10 * np.ptp(
        reference
    )
    # In float32 (what users run) the canonized model is within 1e-4 of the logits' range of the
    # float64 result (measured: <= 8.3e-5, InceptionV3), or as close as the original's own
    # float32 result is (5e-5 for ResNet50 and InceptionV3), should another CPU round otherwise.
    canon = canonize(model)
    own = np.abs(_scores(model, x) - reference).max()
    got = np.abs(_scores(canon, x) - reference).max()
    assert got <= max(1e-4 * np.ptp(reference), 2 * own)
    assert not any(
        isinstance(layer, (tf.keras.Model, layers.BatchNormalization)) for layer in canon.layers
    )
    assert (canon is model) == arch.startswith("vgg")  # nothing to do for a VGG


@pytest.mark.slow
@pytest.mark.parametrize("arch, name", MATRIX, ids=[f"{a}-{m}" for a, m in MATRIX])
def test_every_method_on_every_architecture(models, arch, name):
    model = models(arch)
    x = inputs_for(model, 2, seed=2)
    with sglrp.create_analyzer(name, model, **_kwargs(name)) as analyzer:
        logits = analyzer.predict_logits(x)
        target = logits.argmax(1)  # a positive logit
        r = analyzer.analyze(x, target=target)
        if name == "sglrp":
            y = softmax(logits)[np.arange(2), target]
            target_sums = _sums(analyzer.analyze_target(x, target=target))
    assert r.shape == x.shape and r.dtype == np.float32
    assert np.isfinite(r).all() and np.abs(r).sum() > 0
    if name in ("grad_cam", "guided_grad_cam"):
        cam = analyzer.grad_cam if name == "guided_grad_cam" else analyzer
        assert cam.layer_names == [ARCHITECTURES[arch][1]]
    if name in ("clrp", "sglrp"):  # target - dual scaled to the target's sum
        assert (np.abs(_sums(r)) <= 1e-4 * np.abs(r).reshape(2, -1).sum(1)).all()
    rtol = CONSERVING.get((arch, name))
    if rtol is not None:
        np.testing.assert_allclose(_sums(r), logits[np.arange(2), target], rtol=rtol)
    if name == "sglrp" and (arch, "lrp") in CONSERVING:
        np.testing.assert_allclose(target_sums, y * (1 - y), rtol=1e-3)
