"""Each rule against a literal NumPy reference (reference.py), on a dense and a conv ReLU net.

What innvestigate's Deep Taylor really does: z^B on the first kernel layer, z+ on every other
kernel layer, the linear top layer included; max pooling routes relevance to the maximum.
"""

import numpy as np
import pytest
import reference as ref
import tensorflow as tf
from conftest import conv_net, dense_net

import sglrp

LOW, HIGH = -1.0, 1.0


def per_sample(model, x, t, rule, first_rule, head):
    out = []
    for xi, ti in zip(x, t):
        steps, acts = ref.keras_steps(model, xi)
        r = np.zeros_like(acts[-1])
        r[ti] = head(acts[-1], ti)
        out.append(ref.propagate(steps, acts, r, rule, first_rule).reshape(xi.shape))
    return np.array(out)


def linear_hidden_net():
    """A dense net whose top layer sees negative inputs (z+ then needs the x- w- term)."""
    model = dense_net(seed=5)
    model.get_layer("fc2").activation = tf.keras.activations.linear
    return model


MODELS = {
    "dense": (lambda: dense_net(), lambda: np.random.default_rng(3).uniform(-1, 1, (3, 6))),
    "linear_hidden": (linear_hidden_net, lambda: np.random.default_rng(6).uniform(-1, 1, (3, 6))),
    "conv": (
        lambda: conv_net(softmax=False),
        lambda: np.random.default_rng(4).uniform(-1, 1, (3, 8, 8, 2)),
    ),
}
TARGETS = [0, 3, 4]
LOGIT = lambda z, t: z[t]  # noqa: E731


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request):
    make_model, make_x = MODELS[request.param]
    return make_model(), make_x().astype(np.float32)


def test_bounded_deep_taylor(case):
    model, x = case
    got = sglrp.LRP(model, low=LOW, high=HIGH).analyze(x, target=TARGETS)
    expected = per_sample(
        model,
        x,
        TARGETS,
        rule=lambda x_, w, b, r: ref.z_plus(x_, w, r),
        first_rule=lambda x_, w, b, r: ref.z_bounded(x_, w, r, LOW, HIGH),
        head=LOGIT,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.engine("innvestigate")
@pytest.mark.parametrize(
    "make_model, expected",
    [
        (conv_net, {"conv1": "BoundedRule", "conv2": "ZPlusFastRule", "logits": "ZPlusFastRule"}),
        (
            linear_hidden_net,
            {"fc1": "BoundedRule", "fc2": "ZPlusFastRule", "logits": "Alpha1Beta0IgnoreBiasRule"},
        ),
    ],
)
def test_deep_taylor_uses_the_fast_z_plus_rule_on_relu_inputs_only(make_model, expected):
    from innvestigate.analyzer.relevance_based import relevance_rule

    expected = {name: getattr(relevance_rule, rule) for name, rule in expected.items()}
    analyzer = sglrp.LRP(make_model(), low=LOW, high=HIGH)
    rules = {
        layer.name: type(mapping.__self__).__mro__
        for layer, mapping in analyzer._rule_objects.items()
        if layer.name in expected
    }
    assert rules.keys() == expected.keys()
    for name, rule in expected.items():
        assert rule in rules[name], name


@pytest.mark.parametrize("eps", [1e-7, 0.25])
def test_epsilon(case, eps):
    model, x = case
    got = sglrp.LRPE(model, epsilon=eps).analyze(x, target=TARGETS)
    expected = per_sample(
        model,
        x,
        TARGETS,
        rule=lambda x_, w, b, r: ref.epsilon(x_, w, b, r, eps),
        first_rule=None,
        head=LOGIT,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_z_plus_with_w_plus_input(case):
    model, x = case
    got = sglrp.LRPZPlus(model).analyze(x, target=TARGETS)
    expected = per_sample(
        model,
        x,
        TARGETS,
        rule=lambda x_, w, b, r: ref.z_plus(x_, w, r),
        first_rule=lambda x_, w, b, r: ref.w_plus(x_, w, r),
        head=LOGIT,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_w_plus_input_map_does_not_depend_on_pixel_values():
    # The input map is w+ applied to the relevance above the first layer: x enters only there.
    model = dense_net(use_bias=False)
    x = np.random.default_rng(5).uniform(0.1, 1, (1, 6)).astype(np.float32)
    got = sglrp.LRPZPlus(model).analyze(x, target=2)
    steps, acts = ref.keras_steps(model, x[0])
    r = np.zeros(5)
    r[2] = acts[-1][2]
    r1 = ref.propagate(steps[1:], acts[1:], r, lambda x_, w, b, r_: ref.z_plus(x_, w, r_))
    w1 = steps[0][1]
    np.testing.assert_allclose(got[0], ref.w_plus(np.zeros(6), w1, r1), rtol=1e-4, atol=1e-7)


def test_softmax_gradient_head_on_bounded_rule(case):
    model, x = case
    sg = sglrp.SGLRP(model, low=LOW, high=HIGH)

    def head(z, t, part):
        y = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        r = y * y[t]
        r[t] = y[t] * (1 - y[t]) if part == "target" else 0.0
        if part == "target":
            r[np.arange(len(z)) != t] = 0.0
        return r

    for part, fn in (("target", sg.analyze_target), ("dual", sg.analyze_others)):
        expected = []
        for xi, ti in zip(x, TARGETS):
            steps, acts = ref.keras_steps(model, xi)
            r = head(acts[-1], ti, part)
            expected.append(
                ref.propagate(
                    steps,
                    acts,
                    r,
                    lambda x_, w, b, r_: ref.z_plus(x_, w, r_),
                    lambda x_, w, b, r_: ref.z_bounded(x_, w, r_, LOW, HIGH),
                ).reshape(xi.shape)
            )
        np.testing.assert_allclose(fn(x, target=TARGETS), np.array(expected), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("eps", [1e-6, 0.1])
def test_softmax_gradient_head_on_the_epsilon_plus_box_composite(case, eps):
    # SGLRPEpsilonPlusBox: one signed pass from y * (onehot_t - y_t); z^B on the first kernel
    # layer, epsilon (bias in z) on the other dense layers, z+ (bias ignored) on convolutions.
    model, x = case
    got = sglrp.SGLRPEpsilonPlusBox(model, low=LOW, high=HIGH, epsilon=eps).analyze(
        x, target=TARGETS
    )
    kinds = [type(layer).__name__ for layer in model.layers if layer.weights]
    rules = {
        "Dense": lambda x_, w, b, r: ref.epsilon(x_, w, b, r, eps),
        "Conv2D": lambda x_, w, b, r: ref.z_plus(x_, w, r),
    }
    expected = []
    for xi, ti in zip(x, TARGETS):
        steps, acts = ref.keras_steps(model, xi)
        y = np.exp(acts[-1] - acts[-1].max())
        y /= y.sum()
        r = y * (np.eye(len(y))[ti] - y[ti])
        kernel = len(kinds)
        for i in range(len(steps) - 1, -1, -1):
            if steps[i][0] == "maxpool":
                back = np.zeros(steps[i][2])
                np.add.at(back, steps[i][1], r)
                r = back
                continue
            kernel -= 1
            _, w, b, _ = steps[i]
            if kernel == 0:
                r = ref.z_bounded(acts[i], w, r, LOW, HIGH)
            else:
                r = rules[kinds[kernel]](acts[i], w, b, r)
        expected.append(r.reshape(xi.shape))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-4, atol=1e-7)
