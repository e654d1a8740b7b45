"""The metrics of ``sglrp.metrics`` against literal NumPy versions of their papers' definitions,
on hand-made maps, and against Quantus 0.6 where it is installed."""

import numpy as np
import pytest

from sglrp.metrics import faithfulness, localisation, sanity, summarize
from sglrp.metrics.localisation import box_mask, scores

TARGET, DISTRACTOR = (0, 0, 2, 2), (2, 2, 4, 4)


def one(h):
    return {k: v[0] for k, v in scores(np.asarray(h, float)[None], [TARGET], [DISTRACTOR]).items()}


# -- localisation: known answers ------------------------------------------------------------


def test_all_on_the_target():
    h = np.zeros((4, 4))
    h[0, 1] = 2.0
    h[3, 3] = -5.0  # negative relevance does not count
    assert one(h) == {"relevance_mass": 1.0, "contrast": 1.0, "pointing_game": 1.0}


def test_split_between_objects_and_background():
    h = np.zeros((4, 4))
    h[1, 1], h[3, 2], h[0, 3] = 1.0, 3.0, 4.0  # target, distractor, background
    got = one(h)
    assert got["relevance_mass"] == pytest.approx(1 / 8)
    assert got["contrast"] == pytest.approx((1 - 3) / 4)
    assert got["pointing_game"] == 0.0


def test_channels_are_summed_and_constant_maps_are_undefined():
    h = np.zeros((3, 4, 4, 3))
    h[0, 0, 0] = [1, 1, -1]
    h[2] = -1.0  # constant, no positive relevance
    h[2, 3, 3] = -2.0  # not constant; still no positive relevance, the maximum -1 is everywhere
    got = scores(h, [TARGET] * 3, [DISTRACTOR] * 3)
    assert [got[k][0] for k in localisation.METRICS] == [1, 1, 1]
    assert all(np.isnan(got[k][1]) for k in localisation.METRICS)
    assert np.isnan(got["relevance_mass"][2]) and np.isnan(got["contrast"][2])
    assert got["pointing_game"][2] == 1.0  # one of the equal maxima lies in the target box


def test_box_mask_is_half_open():
    assert box_mask((4, 4), (1, 0, 3, 2)).sum() == 4


# -- localisation: literal definitions on random maps ----------------------------------------


def hand_made(n=40, size=12, seed=0):
    """Random signed maps with ties at zero, random non-overlapping boxes."""
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(n, size, size)) * (rng.uniform(size=(n, size, size)) < 0.6)
    maps[:3] = np.round(maps[:3])  # ties, also at the maximum
    maps[3] = 0.0  # constant
    targets, distractors = [], []
    for _ in range(n):
        r, c = rng.integers(0, size // 2, 2)
        targets.append((r, c, r + size // 2, c + size // 2))
        distractors.append(((r + size // 2) % size, c, (r + size // 2) % size + size // 2, c + 3))
    return maps, targets, distractors


def literal_localisation(h, tb, db):
    """Arras et al. 2022 (positive relevance), the contrast, Zhang et al. 2018, pixel by pixel."""
    inside = lambda box, i, j: box[0] <= i < box[2] and box[1] <= j < box[3]  # noqa: E731
    r_in = r_total = r_distractor = 0.0
    maxima = []
    peak = max(h.ravel())
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            v = h[i, j]
            if v > 0:
                r_total += v
                r_in += v if inside(tb, i, j) else 0.0
                r_distractor += v if inside(db, i, j) else 0.0
            if v == peak:
                maxima.append((i, j))
    nan = float("nan")
    return {
        "relevance_mass": r_in / r_total if r_total > 0 else nan,
        "contrast": (r_in - r_distractor) / (r_in + r_distractor) if r_in + r_distractor else nan,
        "pointing_game": nan if h.min() == h.max() else float(any(inside(tb, *p) for p in maxima)),
    }


def test_localisation_equals_the_literal_definitions():
    maps, tbs, dbs = hand_made()
    got = scores(maps, tbs, dbs)
    for metric in localisation.METRICS:
        expected = [literal_localisation(h, tb, db)[metric] for h, tb, db in zip(maps, tbs, dbs)]
        np.testing.assert_allclose(got[metric], expected, rtol=1e-12, equal_nan=True)
    assert np.isnan(got["pointing_game"][3])


# -- faithfulness ------------------------------------------------------------------------------


def linear_softmax(weights, bias):
    """A NumPy 'model': softmax of a linear function of the image, float64."""

    def predict(batch):
        z = np.asarray(batch, np.float64).reshape(len(batch), -1) @ weights + bias
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return predict


def literal_pixel_flipping(predict, x, h, target, steps, mode):
    """Samek et al. 2017 (MoRF) / insertion: flip pixels one step at a time, in map order."""
    h_flat = h.ravel()
    order = sorted(range(h_flat.size), key=lambda i: (-h_flat[i], i))  # stable on ties
    height, width = h.shape
    ys, xs = [], []
    for k in range(steps + 1):
        n = int(round(k / steps * h_flat.size))
        image = x.copy() if mode == "deletion" else np.zeros_like(x)
        for p in order[:n]:
            r, c = divmod(p, width)
            image[r, c, :] = 0.0 if mode == "deletion" else x[r, c, :]
        ys.append(predict(image[None])[0, target])
        xs.append(n / h_flat.size)
    return sum((ys[k] + ys[k + 1]) / 2 * (xs[k + 1] - xs[k]) for k in range(steps))  # trapezoid


@pytest.mark.parametrize("steps", [1, 7, 16])
def test_deletion_and_insertion_equal_the_literal_definition(steps):
    rng = np.random.default_rng(1)
    n, size, channels, classes = 6, 5, 2, 4
    x = rng.uniform(0, 1, (n, size, size, channels))
    maps = rng.normal(size=(n, size, size, channels))
    maps[0] = np.round(maps[0])  # ties
    targets = rng.integers(0, classes, n)
    predict = linear_softmax(rng.normal(size=(size * size * channels, classes)) * 3, 0.1)
    curves = faithfulness.perturbation_curves(
        predict, x, maps, targets, steps=steps, max_batch=3 * (steps + 1)
    )
    for mode in ("deletion", "insertion"):
        got = faithfulness.auc(curves[mode], curves["fractions"])
        expected = [
            literal_pixel_flipping(predict, x[i], maps[i].sum(-1), targets[i], steps, mode)
            for i in range(n)
        ]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert np.all((got >= 0) & (got <= 1))


def test_curves_start_and_end_at_the_image_and_the_baseline():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (3, 4, 4, 1))
    maps = rng.normal(size=(3, 4, 4, 1))
    maps[2] = 1.0  # constant: undefined
    predict = linear_softmax(rng.normal(size=(16, 3)), 0.0)
    curves = faithfulness.perturbation_curves(predict, x, maps, [0, 1, 2], steps=4)
    full, empty = predict(x), predict(np.zeros_like(x))
    for i, t in enumerate([0, 1]):
        assert curves["deletion"][i, 0] == pytest.approx(full[i, t])
        assert curves["deletion"][i, -1] == pytest.approx(empty[i, t])
        assert curves["insertion"][i, 0] == pytest.approx(empty[i, t])
        assert curves["insertion"][i, -1] == pytest.approx(full[i, t])
    assert np.isnan(curves["deletion"][2]).all() and np.isnan(curves["insertion"][2]).all()
    assert np.isnan(faithfulness.auc(curves["deletion"], curves["fractions"])[2])


def test_one_predict_call_covers_whole_maps():
    sizes = []
    x = np.random.default_rng(3).uniform(size=(5, 4, 4, 1))
    predict = linear_softmax(np.ones((16, 2)), 0.0)
    faithfulness.perturbation_curves(
        lambda b: sizes.append(len(b)) or predict(b), x, x, [0] * 5, steps=4, max_batch=25
    )
    assert sizes == [20, 20, 10]  # 2 maps x 2 modes x 5 points, never a map split


# -- sanity ------------------------------------------------------------------------------------


def literal_spearman(a, b):
    """Spearman's rho = 1 - 6 sum d^2 / (n (n^2 - 1)) for values without ties."""
    a, b = np.ravel(a), np.ravel(b)
    rank = lambda v: np.array([sum(w < u for w in v) + 1 for u in v], float)  # noqa: E731
    d = rank(a) - rank(b)
    n = a.size
    return 1 - 6 * (d * d).sum() / (n * (n * n - 1))


def test_spearman_equals_the_literal_definition_and_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = rng.normal(size=30), rng.normal(size=30)
        b = a + rng.normal(size=30)
        assert sanity.spearman(a, b) == pytest.approx(literal_spearman(a, b), rel=1e-12)
        tied_a, tied_b = np.round(a), np.round(b)  # ties: average ranks, as scipy
        assert sanity.spearman(tied_a, tied_b) == pytest.approx(
            spearmanr(tied_a, tied_b)[0], rel=1e-12
        )
    assert np.isnan(sanity.spearman(np.ones(5), np.arange(5)))


def test_rank_similarity_uses_the_absolute_channel_sum():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 6, 6, 2))
    np.testing.assert_allclose(sanity.rank_similarity(a, -a), 1.0)  # the same |map|
    np.testing.assert_allclose(sanity.rank_similarity(a, -a, absolute=False), -1.0)
    assert np.isnan(sanity.rank_similarity(a, np.zeros_like(a))).all()  # constant maps
    b = rng.normal(size=a.shape)
    expected = [literal_spearman(np.abs(u.sum(-1)), np.abs(v.sum(-1))) for u, v in zip(a, b)]
    np.testing.assert_allclose(sanity.rank_similarity(a, b), expected, rtol=1e-12)


def test_random_other_classes():
    targets = np.repeat(np.arange(10), 300)
    others = sanity.random_other_classes(targets, 10, seed=3)
    assert np.all(others != targets) and others.min() >= 0 and others.max() <= 9
    counts = np.bincount((others - targets) % 10, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 250  # uniform over the 9 others
    np.testing.assert_array_equal(others, sanity.random_other_classes(targets, 10, seed=3))


def test_reinitialized_weights_follow_glorot_uniform_and_identity_batch_norm():
    import tensorflow as tf

    conv = tf.keras.layers.Conv2D(8, 3)
    conv.build((None, 10, 10, 4))
    bn = tf.keras.layers.BatchNormalization()
    bn.build((None, 10, 10, 8))
    kernel, bias = sanity.reinitialized_weights(conv, seed=1)
    limit = np.sqrt(6 / (3 * 3 * 4 + 3 * 3 * 8))
    assert kernel.shape == (3, 3, 4, 8) and np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit and np.all(bias == 0)
    np.testing.assert_array_equal(kernel, sanity.reinitialized_weights(conv, seed=1)[0])
    gamma, beta, mean, var = sanity.reinitialized_weights(bn, seed=1)
    assert np.all(gamma == 1) and np.all(beta == 0) and np.all(mean == 0) and np.all(var == 1)


def test_reinitialized_weights_of_depthwise_layer_norm_and_layer_scale_layers():
    # Keras 2 names a depthwise kernel "depthwise_kernel", Keras 3 "kernel": the same draw.
    import tensorflow as tf

    from sglrp.demo.model import layer_scale_class

    dw = tf.keras.layers.DepthwiseConv2D(7)
    dw.build((None, 10, 10, 4))
    kernel, bias = sanity.reinitialized_weights(dw, seed=2)
    limit = np.sqrt(6 / (7 * 7 * 4 + 7 * 7 * 1))
    assert kernel.shape == (7, 7, 4, 1) and limit * 0.9 < np.abs(kernel).max() <= limit
    expected = np.random.default_rng(2).uniform(-limit, limit, (7, 7, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(kernel, expected)
    assert np.all(bias == 0)
    ln = tf.keras.layers.LayerNormalization()
    ln.build((None, 10, 10, 4))
    gamma, beta = sanity.reinitialized_weights(ln, seed=2)
    assert np.all(gamma == 1) and np.all(beta == 0) and gamma.shape == (4,)
    scale = layer_scale_class()(1e-6, 4)
    scale.build((None, 10, 10, 4))
    (gamma,) = sanity.reinitialized_weights(scale, seed=2)
    np.testing.assert_array_equal(gamma, np.ones(4, np.float32))


# -- summary -----------------------------------------------------------------------------------


def test_summary_interval_contains_the_mean_and_counts_undefined_values():
    values = np.random.default_rng(0).uniform(size=300)
    s = summarize(values)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert s["ci95"][1] - s["ci95"][0] < 0.1
    assert summarize(values) == s  # seeded
    with_nan = summarize(np.r_[values, np.nan, np.nan])
    assert with_nan["mean"] == pytest.approx(values.mean()) and with_nan["n_undefined"] == 2
    assert summarize([np.nan]) == {"mean": None, "ci95": None, "n": 0, "n_undefined": 1}


# -- Quantus 0.6 on the same precomputed maps ----------------------------------------------------


@pytest.fixture(scope="module")
def quantus():
    return pytest.importorskip("quantus", minversion="0.6.0")


def channel_first(maps, tbs):
    """(N, 1, H, W) maps and masks, the layout Quantus expects."""
    masks = np.stack([box_mask(h.shape, tb) for h, tb in zip(maps, tbs)])[:, None]
    return maps[:, None], masks.astype(float)


def test_pointing_game_equals_quantus(quantus):
    maps, tbs, dbs = hand_made(seed=6)
    maps, tbs, dbs = maps[4:], tbs[4:], dbs[4:]  # Quantus scores a constant map as a hit
    a, s = channel_first(maps, tbs)
    expected = quantus.PointingGame(abs=False, normalise=False, disable_warnings=True)(
        model=None, x_batch=a, y_batch=np.zeros(len(a), int), a_batch=a, s_batch=s
    )
    got = scores(maps, tbs, dbs)["pointing_game"]
    np.testing.assert_array_equal(got, np.array(expected, float))


def test_relevance_mass_equals_quantus_on_the_positive_part(quantus):
    maps, tbs, dbs = hand_made(seed=7)
    maps, tbs, dbs = maps[4:], tbs[4:], dbs[4:]
    a, s = channel_first(maps, tbs)
    expected = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)(
        model=None, x_batch=a, y_batch=np.zeros(len(a), int), a_batch=np.maximum(a, 0), s_batch=s
    )
    np.testing.assert_allclose(scores(maps, tbs, dbs)["relevance_mass"], expected, rtol=1e-12)


def test_random_logit_similarity_equals_quantus_spearman(quantus):
    import tensorflow as tf

    rng = np.random.default_rng(8)
    n, size, classes = 12, 6, 10
    x = rng.uniform(size=(n, 1, size, size)).astype(np.float32)
    table = rng.normal(size=(n, classes, 1, size, size))  # the precomputed map of every class
    y = rng.integers(0, classes, n)
    asked = []

    def explain(model, inputs, targets, **kwargs):  # one call for the whole batch, in order
        assert len(inputs) == n
        asked.append(np.asarray(targets))
        return table[np.arange(n), targets]

    model = tf.keras.Sequential([tf.keras.Input((1, size, size)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(classes)])
    metric = quantus.RandomLogit(
        similarity_func=quantus.similarity_func.correlation_spearman,
        num_classes=classes, abs=True, normalise=False, disable_warnings=True,
    )
    expected = metric(model=model, x_batch=x, y_batch=y, a_batch=table[np.arange(n), y],
                      explain_func=explain, channel_first=True)
    others = np.concatenate(asked)
    assert np.all(others != y)
    last = lambda maps: maps.transpose(0, 2, 3, 1)  # noqa: E731 - sglrp's maps are (N, H, W, C)
    got = sanity.rank_similarity(last(table[np.arange(n), y]), last(table[np.arange(n), others]))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_the_first_module_name_keeps_working_with_zeros_for_undefined_values():
    from sglrp import evaluate

    maps, tbs, dbs = hand_made()
    new = scores(maps, tbs, dbs)
    old = evaluate.scores(maps, tbs, dbs)
    for metric in localisation.METRICS:
        np.testing.assert_array_equal(old[metric], np.nan_to_num(new[metric], nan=0.0))
    assert old["pointing_game"][3] == 0.0 and evaluate.summarize is summarize
