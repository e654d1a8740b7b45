"""The Keras 3 engine's rules for the layers of today's CNNs (EfficientNet, ConvNeXt, MobileNetV3,
InceptionResNetV2): each against a float64 NumPy reference of its equation, and conserving on a
bias-free network of its layer type under every LRP rule set with every head.

* identity rule at swish, GELU, hard swish, ELU, leaky ReLU, tanh (Achtibat et al. 2024);
* LayerNormalization: standard deviation fixed, LRP-0/epsilon on the linear rest (Ali et al. 2022);
* signal-take-all at squeeze-and-excitation gates, sigmoid and hard sigmoid (Arras et al. 2017);
* the z-rule at InceptionResNetV2's scaled residual and at ``x + y`` of ``keras.ops``;
* ``Rescaling``, ``Normalization``, ``LayerScale`` passed through; the z^B bounds mapped
  through the preprocessing chain, padding included;
* ConvNeXt's grouped 7x7 convolution as the depthwise convolution it is.
"""

from __future__ import annotations

import numpy as np
import pytest

import sglrp

if sglrp.engine != "keras3":
    pytest.skip("the rules of the Keras 3 engine", allow_module_level=True)

import keras  # noqa: E402
import reference as ref  # noqa: E402
from keras.src.applications.convnext import LayerScale  # noqa: E402
from keras.src.applications.inception_resnet_v2 import CustomScaleLayer  # noqa: E402

from sglrp import heads  # noqa: E402
from sglrp.engines.keras3.propagate import Propagation  # noqa: E402

layers = keras.layers
C = 5  # classes
ACTIVATIONS = ["swish", "gelu", "hard_swish", "elu", "leaky_relu", "tanh"]
#: rule set -> its options in the conservation tests (epsilon 1e-9 where it has one).
RULE_SETS = {
    "bounded_deep_taylor": {"low": -1.0, "high": 1.0},
    "epsilon": {"epsilon": 1e-9},
    "epsilon_plus_box": {"low": -1.0, "high": 1.0, "epsilon": 1e-9},
    "z_plus": {},
    "preset_a_flat": {"epsilon": 1e-9},
    "preset_b_flat": {"epsilon": 1e-9},
}
HEADS = [
    heads.output,
    heads.contrastive_dual,
    heads.softmax_gradient_target,
    heads.softmax_gradient_dual,
]


def _maps(model, rule, x, target, head=heads.output, **options):
    propagation = Propagation(model, rule, [head], **options)
    (maps,) = propagation([x.astype(np.float32)], np.eye(C, dtype=np.float32)[target])
    return maps[0].astype(np.float64)


def _values(model, names, x):
    """The outputs of the named layers for ``x``, in float64."""
    return [
        np.asarray(keras.Model(model.inputs[0], model.get_layer(n).output)(x), np.float64)
        for n in names
    ]


def _w(model, name):
    return [np.asarray(v, np.float64) for v in model.get_layer(name).get_weights()]


def _start(model, x, target):
    z = np.asarray(model(x), np.float64)
    r = np.zeros_like(z)
    r[np.arange(len(x)), target] = z[np.arange(len(x)), target]
    return r


def _set_random(model, seed, bias=True):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights(
                [rng.normal(0, 0.6, w.shape) if (bias or w.ndim > 1) else 0 * w for w in ws]
            )
    return model


X = np.random.default_rng(0).uniform(-1, 1, (3, 6)).astype(np.float32)
TARGETS = [0, 2, 4]


# -- references ------------------------------------------------------------------------------
def activation_net(activation):
    """x (6) -> Dense 8 -> act -> Dense 7 -> act -> Dense 5."""
    inputs = keras.Input((6,))
    h = layers.Activation(activation, name="a1")(layers.Dense(8, name="d1")(inputs))
    h = layers.Activation(activation, name="a2")(layers.Dense(7, name="d2")(h))
    return _set_random(keras.Model(inputs, layers.Dense(C, name="d3")(h)), 1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_identity_rule_at_activations(activation):
    """R passes the activation unchanged: epsilon and Deep Taylor equal the nets without it."""
    model = activation_net(activation)
    h1, h2 = _values(model, ["a1", "a2"], X)
    (w1, b1), (w2, b2), (w3, b3) = (_w(model, n) for n in ("d1", "d2", "d3"))
    r = _start(model, X, TARGETS)
    r_eps = ref.epsilon(
        X, w1, b1, ref.epsilon(h1, w2, b2, ref.epsilon(h2, w3, b3, r, 1e-7), 1e-7), 1e-7
    )
    np.testing.assert_allclose(_maps(model, "epsilon", X, TARGETS), r_eps, rtol=1e-4, atol=1e-6)
    r_dt = ref.z_bounded(X, w1, ref.z_plus(h1, w2, ref.z_plus(h2, w3, r)), -1.0, 1.0)
    got = _maps(model, "bounded_deep_taylor", X, TARGETS, low=-1.0, high=1.0)
    np.testing.assert_allclose(got, r_dt, rtol=1e-4, atol=1e-6)


def layer_norm_net(**kwargs):
    inputs = keras.Input((6,))
    h = layers.Dense(8, name="d1")(inputs)
    h = layers.LayerNormalization(name="ln", **kwargs)(h)
    return _set_random(keras.Model(inputs, layers.Dense(C, name="d2")(h)), 2)


def layer_norm_reference(a, gamma, beta, eps_ln, r, epsilon, bias):
    """Ali et al. 2022: sigma fixed, ``w_ij = (delta_ij - 1/n) gamma_j / sigma``, then LRP-eps."""
    out = []
    n = a.shape[1]
    for ai, ri in zip(a, r):
        sigma = np.sqrt(ai.var() + eps_ln)
        w = (np.eye(n) - 1.0 / n) * gamma[None, :] / sigma
        z = ai @ w + (beta if bias else 0)
        den = z + epsilon * np.where(z >= 0, 1.0, -1.0) if epsilon else ref.safe(z)
        out.append(ai * (w @ (ri / den)))
    return np.array(out)


@pytest.mark.parametrize(
    "rule, epsilon, bias",
    [("bounded_deep_taylor", 0, False), ("epsilon", 1e-7, True), ("preset_a_flat", 0.1, True)],
)
def test_layer_norm_rule(rule, epsilon, bias):
    model = layer_norm_net(epsilon=1e-3)
    (a,) = _values(model, ["d1"], X)
    gamma, beta = _w(model, "ln")
    (w2, b2) = _w(model, "d2")
    r = _start(model, X, TARGETS)
    ln = model.get_layer("ln").output
    y = np.asarray(keras.Model(model.inputs[0], ln)(X), np.float64)
    if rule == "bounded_deep_taylor":
        r_ln = ref.z_plus(y, w2, r)
    else:
        r_ln = ref.epsilon(y, w2, b2, r, epsilon)
    r_a = layer_norm_reference(a, gamma, beta, 1e-3, r_ln, epsilon, bias)
    w1, b1 = _w(model, "d1")
    if rule == "bounded_deep_taylor":
        expected = ref.z_bounded(X, w1, r_a, -1.0, 1.0)
        options = {"low": -1.0, "high": 1.0}
    elif rule == "epsilon":
        expected, options = ref.epsilon(X, w1, b1, r_a, epsilon), {}
    else:
        expected, options = ref.flat(X, w1, r_a), {}
    got = _maps(model, rule, X, TARGETS, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def _hard_sigmoid(g):
    """MobileNetV3's hard sigmoid: ReLU6(g + 3) / 6, with keras.ops in the graph."""
    return layers.ReLU(6.0)(g + 3.0) * (1.0 / 6.0)


def gate_net(kind, shape=(6,)):
    """x -> Dense 8 (signal) -> signal * gate(signal) -> Dense 5; the gate squeezes the signal."""
    inputs = keras.Input(shape)
    s = layers.Dense(8, name="signal")(inputs)
    g = layers.Dense(3, activation="relu", name="squeeze")(s)
    if kind == "sigmoid":
        g = layers.Dense(8, activation="sigmoid", name="excite")(g)
    else:
        g = _hard_sigmoid(layers.Dense(8, name="excite")(g))
    h = layers.Multiply(name="gate")([s, g])
    return _set_random(keras.Model(inputs, layers.Dense(C, name="top")(h)), 3)


@pytest.mark.parametrize("kind", ["sigmoid", "hard_sigmoid"])
def test_signal_take_all(kind):
    """The gate is a constant: all relevance of the product goes to the signal, none to the gate."""
    model = gate_net(kind)
    (s, h) = _values(model, ["signal", "gate"], X)
    (w1, b1), (w2, b2) = _w(model, "signal"), _w(model, "top")
    r = _start(model, X, TARGETS)
    expected = ref.epsilon(X, w1, b1, ref.epsilon(h, w2, b2, r, 1e-7), 1e-7)
    np.testing.assert_allclose(_maps(model, "epsilon", X, TARGETS), expected, rtol=1e-4, atol=1e-7)


def test_product_without_a_gate_is_refused():
    inputs = keras.Input((6,))
    a = layers.Dense(8, name="a")(inputs)
    b = layers.Dense(8, activation="sigmoid", name="b")(inputs)  # does not depend on a
    h = layers.Multiply(name="product")([a, b])
    model = keras.Model(inputs, layers.Dense(C)(h))
    with pytest.raises(ValueError, match=r"'product' \(Multiply\).*multiplicative gate"):
        Propagation(model, "epsilon", [heads.output])


def test_sigmoid_outside_a_gate_is_refused_by_deep_taylor():
    model = activation_net("sigmoid")
    with pytest.raises(ValueError, match=r"'a1' \(Activation\).*'sigmoid'"):
        Propagation(model, "bounded_deep_taylor", [heads.output])


def scaled_add_net(scale=0.17, op_add=False):
    inputs = keras.Input((6,))
    a = layers.Dense(8, name="a")(inputs)
    b = layers.Dense(8, name="b")(a)
    if op_add:
        h = a + b
    else:
        h = CustomScaleLayer(scale, name="scaled")([a, b])
    return _set_random(keras.Model(inputs, layers.Dense(C, name="top")(h)), 4)


@pytest.mark.parametrize("op_add", [False, True])
def test_z_rule_at_scaled_residual_and_ops_add(op_add):
    """``y = a + s b``: ``R_a = a R / y``, ``R_b = s b R / y`` (s = 1 for ``a + b``)."""
    scale = 1.0 if op_add else 0.17
    model = scaled_add_net(scale, op_add)
    a, b = _values(model, ["a", "b"], X)
    (wa, ba), (wb, bb), (wt, bt) = _w(model, "a"), _w(model, "b"), _w(model, "top")
    y = a + scale * b
    r = _start(model, X, TARGETS)
    r_y = ref.epsilon(y, wt, bt, r, 1e-7)
    r_a = a * r_y / y + ref.epsilon(a, wb, bb, scale * b * r_y / y, 1e-7)
    expected = ref.epsilon(X, wa, ba, r_a, 1e-7)
    got = _maps(model, "epsilon", X, TARGETS)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def rescaled_net(scale, offset, mean, variance, layer_scale=False):
    inputs = keras.Input((6,))
    h = layers.Rescaling(scale, offset, name="rescale")(inputs)
    h = layers.Normalization(mean=mean, variance=variance, name="norm")(h)
    h = layers.Dense(8, activation="relu", name="d1")(h)
    if layer_scale:
        h = LayerScale(0.5, 8, name="layer_scale")(h)
    model = keras.Model(inputs, layers.Dense(C, name="d2")(h))
    for name in ("d1", "d2"):
        layer = model.get_layer(name)
        rng = np.random.default_rng(len(name) + 7)
        layer.set_weights([rng.normal(0, 0.6, w.shape) for w in layer.get_weights()])
    return model


def test_bounds_mapped_through_rescaling_and_normalization():
    """z^B at the first kernel layer uses the raw [low, high] mapped per channel (a negative scale
    swaps them); relevance passes Rescaling and Normalization unchanged."""
    scale, offset = np.array([2.0, -1.5, 0.5, 1.0, -3.0, 1.0]), 0.25
    mean, variance = np.linspace(-0.5, 0.5, 6), np.linspace(0.5, 2.0, 6)
    model = rescaled_net(scale, offset, mean, variance)
    x = np.random.default_rng(5).uniform(0, 255, (3, 6)).astype(np.float32)
    (u, h) = _values(model, ["norm", "d1"], x)
    (w1, _), (w2, _) = _w(model, "d1"), _w(model, "d2")

    def f(v):
        return (v * scale + offset - mean) / np.sqrt(variance)

    low, high = np.minimum(f(0.0), f(255.0)), np.maximum(f(0.0), f(255.0))
    r = _start(model, x, TARGETS)
    expected = ref.z_bounded(u, w1, ref.z_plus(h, w2, r), low, high)
    got = _maps(model, "bounded_deep_taylor", x, TARGETS, low=0.0, high=255.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_layer_scale_passes_relevance_on():
    """x * gamma per channel: relevance unchanged, the map equals the net with gamma folded."""
    model = rescaled_net(1.0, 0.0, np.zeros(6), np.ones(6), layer_scale=True)
    (h,) = _values(model, ["layer_scale"], X)
    (w1, _), (w2, b2) = _w(model, "d1"), _w(model, "d2")
    r = _start(model, X, TARGETS)
    expected = ref.epsilon(X, w1, _w(model, "d1")[1], ref.epsilon(h, w2, b2, r, 1e-7), 1e-7)
    got = _maps(model, "epsilon", X, TARGETS)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


# -- equivalent graphs give equal maps -------------------------------------------------------
IMAGES = np.random.default_rng(7).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)


def _conv_model(padding_layer: bool, seed=8):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    h = layers.Rescaling(2.0, -1.0, name="rescale")(inputs)
    if padding_layer:
        h = layers.ZeroPadding2D(1, name="pad")(h)
    h = layers.Conv2D(4, 3, padding="valid" if padding_layer else "same", name="conv")(h)
    h = layers.ReLU(name="relu")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inputs, layers.Dense(C, name="logits")(h))


@pytest.mark.parametrize("rule", ["bounded_deep_taylor", "preset_a_flat", "z_plus"])
def test_input_rules_see_through_padding_after_preprocessing(rule):
    """Rescaling -> ZeroPadding -> valid conv gives the map of Rescaling -> same conv: the input
    rules (z^B, flat, w+) put no relevance on the padding."""
    padded, same = _conv_model(True), _conv_model(False)
    same.set_weights(padded.get_weights())
    options = {"low": 0.0, "high": 1.0} if rule == "bounded_deep_taylor" else {}
    target = [1, 3]
    a = _maps(padded, rule, IMAGES, target, **options)
    b = _maps(same, rule, IMAGES, target, **options)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7 * np.abs(b).max())


def _depthwise_model(grouped: bool):
    keras.utils.set_random_seed(9)
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(6, 3, padding="same", name="stem")(inputs)
    if grouped:
        h = layers.Conv2D(12, 7, padding="same", groups=6, name="dw")(h)
    else:
        h = layers.DepthwiseConv2D(7, padding="same", depth_multiplier=2, name="dw")(h)
    h = layers.Activation("gelu", name="gelu")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inputs, layers.Dense(C, name="logits")(h))


@pytest.mark.parametrize("rule", sorted(RULE_SETS))
def test_grouped_convolution_is_the_depthwise_convolution(rule):
    grouped, depthwise = _depthwise_model(True), _depthwise_model(False)
    kernel, bias = grouped.get_layer("dw").get_weights()
    depthwise.get_layer("stem").set_weights(grouped.get_layer("stem").get_weights())
    depthwise.get_layer("dw").set_weights([kernel.reshape(7, 7, 6, 2), bias])
    depthwise.get_layer("logits").set_weights(grouped.get_layer("logits").get_weights())
    np.testing.assert_allclose(depthwise(IMAGES), grouped(IMAGES), rtol=1e-4, atol=1e-5)
    a = _maps(grouped, rule, IMAGES, [0, 2], **RULE_SETS[rule])
    b = _maps(depthwise, rule, IMAGES, [0, 2], **RULE_SETS[rule])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


@pytest.mark.parametrize("activation", ["relu", "swish"])
@pytest.mark.parametrize("rule", ["bounded_deep_taylor", "z_plus"])
def test_a_unit_without_an_activating_contribution_keeps_its_relevance(activation, rule):
    """The target's logit is made of negative contributions only: innvestigate's alpha1-beta0
    (and z+ after ReLU) drop its relevance. In a model with a layer innvestigate has no rule for
    (swish) sglrp passes it on with LRP-0 and the map sums to it; in a ReLU network the maps stay
    innvestigate's, which drop it."""
    rng = np.random.default_rng(3)
    signs = np.array([1.0, -1.0, 1.0, -1.0])
    x = rng.uniform(0.1, 1.0, (3, 4))
    w1 = np.abs(rng.normal(0, 1, (4, 4))) * signs  # units 1 and 3 negative before the activation
    w2 = rng.normal(0, 1, (4, C))
    w2[:, 0] = -np.abs(w2[:, 0]) * signs  # every contribution to logit 0 is <= 0
    inputs = keras.Input((4,))
    h = layers.Dense(4, use_bias=False, activation=activation, name="d1")(inputs)
    model = keras.Model(inputs, layers.Dense(C, use_bias=False, name="d2")(h))
    model.get_layer("d1").set_weights([w1])
    model.get_layer("d2").set_weights([w2])
    (h,) = _values(model, ["d1"], x.astype(np.float32))
    z = h @ w2
    assert (z[:, 0] < 0).all()
    r = np.zeros_like(z)
    r[:, 0] = z[:, 0]
    assert np.allclose(ref.z_plus(h, w2, r), 0)  # what innvestigate's rule leaves
    if activation == "relu":
        r_h = ref.z_plus(h, w2, r)
    else:
        r_h = ref.z_plus_passing_dropped(h, w2, r)
        np.testing.assert_allclose(r_h.sum(1), z[:, 0])
    if rule == "bounded_deep_taylor":
        want = ref.z_bounded(x, w1, r_h, -1.0, 1.0)
        got = _maps(model, rule, x, [0, 0, 0], low=-1.0, high=1.0)
    else:
        want = ref.w_plus(x, w1, r_h)  # drops the units 1 and 3 (no positive weight)
        got = _maps(model, rule, x, [0, 0, 0])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    if rule == "bounded_deep_taylor" and activation != "relu":  # z^B conserves: sums to z_t
        np.testing.assert_allclose(got.sum(1), z[:, 0], rtol=1e-4)


# -- conservation ----------------------------------------------------------------------------
W = 12  # channels: wide enough that z+ finds a positive contribution for every unit


def _block(kind, h):
    """The layer type under test on a 4-D tensor ``h`` (N, 6, 6, W), without biases."""
    if kind in ACTIVATIONS:
        return layers.Activation(kind)(h)
    if kind in ("LeakyReLU", "ELU"):
        return getattr(layers, kind)()(h)
    if kind == "layer_norm":
        return layers.LayerNormalization(center=False)(h)
    if kind in ("se_sigmoid", "se_hard_sigmoid"):
        g = layers.GlobalAveragePooling2D(keepdims=True)(h)
        g = layers.Conv2D(3, 1, activation="swish", use_bias=False)(g)
        if kind == "se_sigmoid":
            g = layers.Conv2D(W, 1, activation="sigmoid", use_bias=False)(g)
        else:
            g = _hard_sigmoid(layers.Conv2D(W, 1, use_bias=False)(g))
        return layers.Multiply()([h, g])
    if kind == "scaled_residual":
        branch = layers.Conv2D(4 * W, 1, activation="relu", use_bias=False)(h)
        return CustomScaleLayer(0.2)([h, layers.Conv2D(W, 1, use_bias=False)(branch)])
    if kind == "ops_add":
        return h + layers.Dense(W, use_bias=False)(layers.Activation("gelu")(h))
    if kind == "layer_scale":
        return LayerScale(0.3, W)(h)
    if kind == "grouped_conv":
        return layers.Conv2D(W, 7, padding="same", groups=W, use_bias=False)(h)  # as ConvNeXt
    raise KeyError(kind)


KINDS = [*ACTIVATIONS, "LeakyReLU", "ELU", "layer_norm", "se_sigmoid", "se_hard_sigmoid",
         "scaled_residual", "ops_add", "layer_scale", "grouped_conv", "preprocessing"]  # fmt: skip


def bias_free_net(kind):
    """[Rescaling, Normalization, padding] -> Conv 3x3 -> the layer -> ReLU? -> GAP -> Dense 5."""
    keras.utils.set_random_seed(11)
    inputs = keras.Input((8, 8, 3))
    h = inputs
    if kind == "preprocessing":
        h = layers.Rescaling([2.0, -1.0, 0.5], name="rescale")(h)
        h = layers.Normalization(mean=[0.0, 0.0, 0.0], variance=[1.0, 4.0, 0.25])(h)
        h = layers.ZeroPadding2D(1)(h)
        h = layers.Conv2D(W, 3, use_bias=False, activation="relu")(h)
        h = layers.Conv2D(W, 3, use_bias=False)(h)
    else:
        h = layers.Conv2D(W, 3, use_bias=False)(h)
        h = _block(kind, h)
    h = layers.Conv2D(6, 3, use_bias=False, activation="swish")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, layers.Dense(C, use_bias=False)(h))


#: Every layer type under every LRP rule set (the LeakyReLU and ELU layers keep innvestigate's
#: gradient in the rule sets that reproduce its LRP analyzers); SGLRP's rule set in the fast
#: suite, the others slow.
CONSERVATION = [
    pytest.param(
        kind,
        rule,
        id=f"{kind}-{rule}",
        marks=() if rule == "bounded_deep_taylor" else pytest.mark.slow,
    )
    for kind in KINDS
    for rule in RULE_SETS
    if not (kind in ("LeakyReLU", "ELU") and rule in ("epsilon", "preset_a_flat", "preset_b_flat"))
]


@pytest.mark.parametrize("kind, rule", CONSERVATION)
def test_conservation_on_a_bias_free_network(kind, rule):
    """sum(map) = the head's total (z_t; y_t(1 - y_t) for SGLRP's target head...)."""
    model = bias_free_net(kind)
    x = np.random.default_rng(12).uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
    z = np.asarray(model(x), np.float32)
    target = z.argmax(1)
    selection = np.eye(C, dtype=np.float32)[target]
    propagation = Propagation(model, rule, HEADS, **RULE_SETS[rule])
    maps = propagation([x], selection)
    for head, (m,) in zip(HEADS, maps):
        total = np.asarray(head(z, selection), np.float64).sum(1)
        got = m.reshape(len(x), -1).astype(np.float64).sum(1)
        np.testing.assert_allclose(got, total, rtol=1e-3, err_msg=head.__name__)
