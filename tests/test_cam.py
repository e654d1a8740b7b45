"""Grad-CAM against its closed form on a GAP network (alpha_k = W_kt / (h w)), its default
layer, the resize, guided Grad-CAM = Grad-CAM x guided backprop, and two image inputs."""

import numpy as np
import pytest
import tensorflow as tf

import sglrp

layers = tf.keras.layers


def gap_net(pool):
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((6, 6, 2))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    if pool:
        h = layers.MaxPooling2D(2, name="pooled")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    return tf.keras.Model(inputs, layers.Dense(3, name="logits")(h))


def closed_form(model, layer, x, targets):
    features = tf.keras.Model(model.input, model.get_layer(layer).output)(x).numpy()
    w = model.get_layer("logits").get_weights()[0].astype(np.float64)
    h, wd = features.shape[1:3]
    return np.stack([(f * w[:, t] / (h * wd)).sum(-1) for f, t in zip(features, targets)])


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).uniform(0, 1, (3, 6, 6, 2)).astype(np.float32)


def test_grad_cam_closed_form_and_default_layer(x):
    model = gap_net(pool=False)
    cam = sglrp.GradCAM(model)
    assert cam.layer_names == ["features"]
    got = cam.analyze(x, target=[0, 1, 2])
    expected = closed_form(model, "features", x, [0, 1, 2])
    assert got.shape == x.shape
    np.testing.assert_allclose(got[..., 0], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got[..., 1], got[..., 0])  # repeated over input channels


def test_grad_cam_resizes_to_the_input(x):
    model = gap_net(pool=True)
    cam = sglrp.GradCAM(model)
    assert cam.layer_names == ["pooled"]  # the last 4-D layer, not a hard-coded name
    got = cam.analyze(x, target=2)
    small = closed_form(model, "pooled", x, [2, 2, 2])[..., None]
    expected = tf.image.resize(small, (6, 6), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(got[..., 0], expected, rtol=1e-4, atol=1e-6)
    explicit = sglrp.GradCAM(model, layer_name="features").analyze(x, target=2)
    np.testing.assert_allclose(
        explicit[..., 0], closed_form(model, "features", x, [2, 2, 2]), rtol=1e-4, atol=1e-7
    )


def test_guided_grad_cam_is_the_product(cnn, images):
    targets = [0, 1, 2, 3]
    got = sglrp.GuidedGradCAM(cnn).analyze(images, target=targets)
    cam = sglrp.GradCAM(cnn).analyze(images, target=targets)
    guided = sglrp.GBP(cnn).analyze(images, target=targets)
    np.testing.assert_allclose(got, cam * guided, rtol=1e-5, atol=1e-9)


def test_multi_input_grad_cam():
    tf.keras.utils.set_random_seed(1)
    a, b = tf.keras.Input((6, 6, 1), name="a"), tf.keras.Input((4, 4, 2), name="b")
    fa = layers.Conv2D(3, 3, padding="same", activation="relu", name="fa")(a)
    fb = layers.Conv2D(2, 3, padding="same", activation="relu", name="fb")(b)
    h = layers.Concatenate()(
        [layers.GlobalAveragePooling2D()(fa), layers.GlobalAveragePooling2D()(fb)]
    )
    model = tf.keras.Model([a, b], layers.Dense(3, name="logits")(h))
    rng = np.random.default_rng(2)
    xa, xb = rng.uniform(size=(2, 6, 6, 1)), rng.uniform(size=(2, 4, 4, 2))
    cam = sglrp.MultiGradCAM(model)
    assert cam.layer_names == ["fa", "fb"]
    ca, cb = cam.analyze([xa, xb], target=[1, 2])
    assert ca.shape == xa.shape and cb.shape == xb.shape
    w = model.get_layer("logits").get_weights()[0]
    feats_a = tf.keras.Model(model.inputs, fa)([xa, xb]).numpy()
    feats_b = tf.keras.Model(model.inputs, fb)([xa, xb]).numpy()
    for i, t in enumerate([1, 2]):
        np.testing.assert_allclose(
            ca[i, ..., 0], (feats_a[i] * w[:3, t] / 36).sum(-1), rtol=1e-4, atol=1e-7
        )
        np.testing.assert_allclose(
            cb[i, ..., 0], (feats_b[i] * w[3:, t] / 16).sum(-1), rtol=1e-4, atol=1e-7
        )
    with pytest.raises(ValueError, match="pass a list of 2 batches"):
        cam.analyze(xa, target=1)
    with pytest.raises(ValueError, match="for models with several inputs"):
        sglrp.MultiGradCAM(gap_net(pool=False))


# -- channels_first: the CAM over the spatial axes 2, 3, repeated over axis 1 -----------------
# (TensorFlow's CPU kernels run a channels_first Conv2D nowhere; DepthwiseConv2D they do.)
CF = {"data_format": "channels_first"}


def cf_net(strides=1):
    """Input (2, 6, 6) -> DepthwiseConv2D x3 relu ('features', channels_first) -> GAP -> 3."""
    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((2, 6, 6))
    h = layers.DepthwiseConv2D(
        3, strides=strides, depth_multiplier=3, padding="same", activation="relu",
        name="features", **CF,
    )(inputs)  # fmt: skip
    h = layers.GlobalAveragePooling2D(name="gap", **CF)(h)
    return tf.keras.Model(inputs, layers.Dense(3, name="logits")(h))


def cf_closed_form(model, x, targets):
    """Grad-CAM on a GAP net in float64 NumPy: sum_k A_k W_kt / (h w), features (N, k, h, w)."""
    features = tf.keras.Model(model.input, model.get_layer("features").output)(x).numpy()
    w = model.get_layer("logits").get_weights()[0].astype(np.float64)
    h, wd = features.shape[2:]
    return np.stack(
        [np.einsum("khw,k->hw", f.astype(np.float64), w[:, t]) / (h * wd)
         for f, t in zip(features, targets)]
    )  # fmt: skip


@pytest.fixture(scope="module")
def x_cf():
    return np.random.default_rng(4).uniform(0, 1, (3, 2, 6, 6)).astype(np.float32)


def test_grad_cam_channels_first(x_cf):
    model = cf_net()
    cam = sglrp.GradCAM(model)
    assert cam.data_formats == ["channels_first"]
    got = cam.analyze(x_cf, target=[0, 1, 2])
    assert got.shape == x_cf.shape
    expected = cf_closed_form(model, x_cf, [0, 1, 2])
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got[:, 1], got[:, 0])  # repeated over the input channels


def test_grad_cam_channels_first_resizes_over_the_spatial_axes(x_cf):
    model = cf_net(strides=2)
    got = sglrp.GradCAM(model).analyze(x_cf, target=1)
    small = cf_closed_form(model, x_cf, [1, 1, 1])[..., None]  # (N, 3, 3, 1)
    expected = tf.image.resize(small, (6, 6), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[:, 1], got[:, 0])


def test_guided_grad_cam_channels_first_is_the_product(x_cf):
    model = cf_net()
    got = sglrp.GuidedGradCAM(model).analyze(x_cf, target=[2, 0, 1])
    cam = sglrp.GradCAM(model).analyze(x_cf, target=[2, 0, 1])
    guided = sglrp.GBP(model).analyze(x_cf, target=[2, 0, 1])
    np.testing.assert_allclose(cam[:, 0], cf_closed_form(model, x_cf, [2, 0, 1]), rtol=1e-4,
                               atol=1e-7)  # fmt: skip
    np.testing.assert_allclose(got, cam * guided, rtol=1e-5, atol=1e-9)


def test_multi_input_grad_cam_with_one_channels_first_input():
    tf.keras.utils.set_random_seed(5)
    a, b = tf.keras.Input((2, 6, 6), name="a"), tf.keras.Input((4, 4, 3), name="b")
    fa = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu",
                                name="fa", **CF)(a)  # fmt: skip
    fb = layers.Conv2D(2, 3, padding="same", activation="relu", name="fb")(b)
    h = layers.Concatenate()(
        [layers.GlobalAveragePooling2D(**CF)(fa), layers.GlobalAveragePooling2D()(fb)]
    )
    model = tf.keras.Model([a, b], layers.Dense(3, name="logits")(h))
    rng = np.random.default_rng(6)
    xa, xb = rng.uniform(size=(2, 2, 6, 6)), rng.uniform(size=(2, 4, 4, 3))
    cam = sglrp.MultiGradCAM(model)
    assert cam.data_formats == ["channels_first", "channels_last"]
    ca, cb = cam.analyze([xa, xb], target=[1, 2])
    assert ca.shape == xa.shape and cb.shape == xb.shape
    w = model.get_layer("logits").get_weights()[0].astype(np.float64)
    feats_a = tf.keras.Model(model.inputs, fa)([xa, xb]).numpy().astype(np.float64)
    feats_b = tf.keras.Model(model.inputs, fb)([xa, xb]).numpy().astype(np.float64)
    for i, t in enumerate([1, 2]):
        expected_a = np.einsum("khw,k->hw", feats_a[i], w[:4, t]) / 36
        expected_b = np.einsum("hwk,k->hw", feats_b[i], w[4:, t]) / 16
        for c in range(2):
            np.testing.assert_allclose(ca[i, c], expected_a, rtol=1e-4, atol=1e-7)
        for c in range(3):
            np.testing.assert_allclose(cb[i, ..., c], expected_b, rtol=1e-4, atol=1e-7)


def test_grad_cam_refuses_axes_it_cannot_follow():
    inputs = tf.keras.Input((6, 6, 2))
    h = layers.Permute((3, 1, 2), name="to_first")(inputs)
    h = layers.DepthwiseConv2D(3, name="features", **CF)(h)
    model = tf.keras.Model(inputs, layers.Dense(3)(layers.Flatten()(h)))
    with pytest.raises(ValueError, match=r"layer 'to_first' \(Permute\) moves axes"):
        sglrp.GradCAM(model)
    inputs = tf.keras.Input((6, 6, 2))
    h = layers.Conv2D(2, 3, name="last")(inputs)
    h = layers.ZeroPadding2D(1, name="first", **CF)(h)
    model = tf.keras.Model(inputs, layers.Dense(3)(layers.Flatten()(h)))
    with pytest.raises(ValueError, match="mix data formats"):
        sglrp.GradCAM(model)


# -- inputs of variable size: the CAM takes its size from the batch --------------------------
def test_grad_cam_with_a_variable_input_size():
    tf.keras.utils.set_random_seed(7)
    inputs = tf.keras.Input((None, None, 2))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    model = tf.keras.Model(inputs, layers.Dense(3, name="logits")(h))
    cam = sglrp.GradCAM(model)
    for size in [(5, 7), (8, 6)]:
        x = np.random.default_rng(8).uniform(0, 1, (2, *size, 2)).astype(np.float32)
        got = cam.analyze(x, target=[0, 2])
        assert got.shape == x.shape
        np.testing.assert_allclose(
            got[..., 0], closed_form(model, "features", x, [0, 2]), rtol=1e-4, atol=1e-7
        )


# -- ViT tokens: the patch grid of the tokens the last attention layer reads ------------------
def tiny_vit(class_token=True):
    """6x6x1 -> 2x2 patches (9 tokens) -> [class token] -> position -> one attention block."""
    from sglrp.tokens import ClassToken, PositionEmbedding

    tf.keras.utils.set_random_seed(3)
    inputs = tf.keras.Input((6, 6, 1))
    h = layers.Conv2D(4, 2, strides=2, name="patch_embed")(inputs)
    h = layers.Reshape((9, 4), name="tokens")(h)
    if class_token:
        h = ClassToken(name="class_token")(h)
    h = PositionEmbedding(name="position")(h)
    n = layers.LayerNormalization(name="norm")(h)
    h = layers.Add(name="add")([h, layers.MultiHeadAttention(2, 2, name="attention")(n, n)])
    h = layers.Cropping1D((0, h.shape[1] - 1), name="first_token")(h)
    model = tf.keras.Model(inputs, layers.Dense(3, name="logits")(layers.Flatten()(h)))
    for layer in model.layers:
        if isinstance(layer, (ClassToken, PositionEmbedding)):
            layer.set_weights([np.full(w.shape, 0.3, np.float32) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("class_token", [True, False])
def test_grad_cam_on_a_vit_uses_the_last_attention_input_on_the_patch_grid(x, class_token):
    model = tiny_vit(class_token)
    cam = sglrp.GradCAM(model)
    assert cam.layer_names == ["norm"]  # never the patch embedding
    images = x[..., :1]
    got = cam.analyze(images, target=[0, 1, 2])
    probe = tf.keras.Model(model.input, [model.get_layer("norm").output, model.output])
    with tf.GradientTape() as tape:
        tokens, logits = probe(images)
        score = tf.reduce_sum(logits * tf.one_hot([0, 1, 2], 3), axis=1)
    grads = tape.gradient(score, tokens).numpy().astype(np.float64)[:, int(class_token) :]
    tokens = tokens.numpy()[:, int(class_token) :]
    small = (tokens * grads.mean(1, keepdims=True)).sum(-1).reshape(3, 3, 3, 1)  # 3x3 patches
    expected = tf.image.resize(small, (6, 6), method="bilinear").numpy()[..., 0]
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(got[..., 0], expected, rtol=1e-4, atol=1e-6)


def test_grad_cam_refuses_tokens_off_the_patch_grid():
    inputs = tf.keras.Input((6, 6, 1))
    h = layers.Reshape((12, 3), name="rows")(inputs)  # 12 tokens: no 4-D layer before them
    h = layers.MultiHeadAttention(1, 2, name="attention")(h, h)
    model = tf.keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling1D()(h)))
    with pytest.raises(ValueError, match="'rows'.*patch embedding"):
        sglrp.GradCAM(model)


def test_grad_cam_refuses_tokens_of_a_channels_first_patch_embedding():
    inputs = tf.keras.Input((1, 6, 6))
    h = layers.DepthwiseConv2D(2, strides=2, depth_multiplier=4, name="patch_embed", **CF)(inputs)
    h = layers.Reshape((4, 9), name="rows")(h)  # (N, 4, 3, 3) -> channels x patches
    h = layers.Permute((2, 1), name="tokens")(h)  # 9 tokens of width 4
    n = layers.LayerNormalization(name="norm")(h)
    h = layers.MultiHeadAttention(1, 2, name="attention")(n, n)
    model = tf.keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling1D()(h)))
    with pytest.raises(ValueError, match="'norm'.*'patch_embed'.*channels_first"):
        sglrp.GradCAM(model)


def test_grad_cam_follows_a_squeeze_and_excitation_gate():
    """The gate's Reshape of (N, C) vectors moves no input axes: the CAM is that of 'features'."""
    tf.keras.utils.set_random_seed(9)
    inputs = tf.keras.Input((6, 6, 2))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    g = layers.Reshape((1, 1, 4), name="se_reshape")(layers.GlobalAveragePooling2D()(h))
    g = layers.Conv2D(4, 1, activation="sigmoid", name="se_expand")(g)
    h = layers.Multiply(name="features")([h, g])
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    model = tf.keras.Model(inputs, layers.Dense(3, name="logits")(h))
    cam = sglrp.GradCAM(model)
    assert cam.layer_names == ["features"] and cam.data_formats == ["channels_last"]
    x = np.random.default_rng(9).uniform(0, 1, (2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(
        cam.analyze(x, target=[0, 2])[..., 0], closed_form(model, "features", x, [0, 2]),
        rtol=1e-4, atol=1e-7,
    )
