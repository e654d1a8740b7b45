"""Vision Transformers through the public API: conservation on a bias-free ViT (every head's
total, Ali et al. 2022's conservative propagation), the shipped ViT explained by every relevance
method on the Keras 3 engine, refused by name on the innvestigate engine."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import sglrp
from sglrp.tokens import ClassToken, PositionEmbedding

layers = tf.keras.layers
N_CLASSES = 5


def bias_free_vit(seed=0, position=False):
    """A ViT block without biases or position embedding; the class token is zero (no bias).

    16 channels: wide enough that alpha1-beta0 (the Deep Taylor rule sets' rule at dense
    layers with signed inputs) finds a positive contribution for every unit, so it conserves.
    """
    tf.keras.utils.set_random_seed(seed)
    x = tf.keras.Input((8, 8, 1))
    h = layers.Conv2D(16, 2, strides=2, use_bias=False, name="patch_embed")(x)
    h = layers.Reshape((16, 16), name="tokens")(h)
    h = ClassToken(name="class_token")(h)
    if position:
        h = PositionEmbedding(name="position")(h)
    n = layers.LayerNormalization(center=False, name="norm1")(h)
    h = layers.Add(name="add1")(
        [h, layers.MultiHeadAttention(2, 8, use_bias=False, name="attention")(n, n)]
    )
    n = layers.LayerNormalization(center=False, name="norm2")(h)
    n = layers.Dense(32, use_bias=False, name="mlp1")(n)
    n = layers.Activation("gelu", name="gelu")(n)
    h = layers.Add(name="add2")([h, layers.Dense(16, use_bias=False, name="mlp2")(n)])
    h = layers.LayerNormalization(center=False, name="final_norm")(h)
    h = layers.Flatten(name="features")(layers.Cropping1D((0, 16), name="class_slice")(h))
    logits = layers.Dense(N_CLASSES, use_bias=False, name="logits")(h)
    return tf.keras.Model(x, logits, name="bias_free_vit")


@pytest.fixture(scope="module")
def vit():
    model = bias_free_vit()
    x = np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
    return model, x


def _sums(r):
    return r.reshape(len(r), -1).astype(np.float64).sum(1)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


keras3 = pytest.mark.engine("keras3")


@keras3
def test_lrp_epsilon_conserves_the_logit(vit):
    model, x = vit
    analyzer = sglrp.create_analyzer("lrp.epsilon", model, epsilon=1e-9)
    z = analyzer.predict_logits(x)
    target = z.argmax(1)
    got = _sums(analyzer.analyze(x, target=target))
    np.testing.assert_allclose(got, z[np.arange(3), target], rtol=1e-3)


@keras3
def test_clrp_heads_conserve_the_logit(vit):
    model, x = vit
    analyzer = sglrp.CLRP(model, low=0.0, high=1.0)
    z = analyzer.predict_logits(x)
    target = [0, 2, 4]
    total = z[np.arange(3), target]
    np.testing.assert_allclose(_sums(analyzer.analyze_target(x, target=target)), total, rtol=1e-3)
    np.testing.assert_allclose(_sums(analyzer.analyze_others(x, target=target)), total, rtol=1e-3)


@keras3
def test_sglrp_heads_conserve_the_softmax_gradient(vit):
    model, x = vit
    analyzer = sglrp.SGLRP(model, low=0.0, high=1.0)
    target = [1, 3, 0]
    y = _softmax(analyzer.predict_logits(x).astype(np.float64))[np.arange(3), target]
    for part in (analyzer.analyze_target, analyzer.analyze_others):
        np.testing.assert_allclose(_sums(part(x, target=target)), y * (1 - y), rtol=1e-3)


@keras3
def test_the_position_embedding_is_a_bias_under_epsilon():
    """With a position embedding the epsilon map no longer sums to the logit: it absorbs."""
    model = bias_free_vit(seed=2, position=True)
    x = np.random.default_rng(3).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    analyzer = sglrp.create_analyzer("lrp.epsilon", model, epsilon=1e-9)
    z = analyzer.predict_logits(x)[np.arange(2), [0, 1]]
    assert np.abs(_sums(analyzer.analyze(x, target=[0, 1])) / z - 1).max() > 1e-2


@pytest.mark.engine("innvestigate")
@pytest.mark.parametrize(
    "name", ["lrp", "sglrp", "clrp", "lrp.epsilon", "lrp.sequential_preset_a_flat"]
)
def test_the_innvestigate_engine_refuses_attention_naming_the_keras3_engine(name):
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((8, 8, 1))
    h = layers.Reshape((16, 4), name="tokens")(layers.Conv2D(4, 2, strides=2)(x))
    h = layers.MultiHeadAttention(2, 2, name="attention")(h, h)
    model = tf.keras.Model(x, layers.Dense(3)(layers.GlobalAveragePooling1D()(h)))
    with pytest.raises(ValueError, match="'attention' \\(MultiHeadAttention\\).*Keras 3 engine"):
        sglrp.create_analyzer(name, model)


def test_grad_cam_on_the_shipped_vit_reads_the_last_block_not_the_patch_embedding():
    from sglrp.demo import VIT_BLOCKS, load_demo_model

    model = load_demo_model(name="vit")
    cam = sglrp.GradCAM(model)
    assert cam.layer_names == [f"block{VIT_BLOCKS}_norm1"]
    assert cam.token_grids == [(8, 8, 1)]
    x = sglrp.demo.make_scenes(2, seed=0, split="test")
    maps = cam.analyze(x.images, target=x.labels[:, 0])
    assert maps.shape == x.images.shape and np.isfinite(maps).all() and np.abs(maps).max() > 0


@pytest.mark.slow
@keras3
def test_the_shipped_vit_claim_sglrp_with_epsilon_separates_the_digits():
    """The README's claim on the ViT, on 16 maps: SGLRP with epsilon on the dense layers far
    above LRP and Grad-CAM in contrast, below random maps in deletion AUC."""
    from sglrp.evaluation.run import Settings, evaluate_model

    methods = ["lrp", "sglrp.epsilon_plus_box", "grad_cam"]
    settings = Settings(scenes=8, steps=8, cascade_maps=2)
    result = evaluate_model("vit", methods, settings, log=lambda s: None)
    m = {e["method"]: e for e in result["methods"]}
    assert result["top2_accuracy"] >= 0.9
    best = m["sglrp.epsilon_plus_box"]
    assert best["contrast"] >= m["lrp"]["contrast"] + 0.3
    assert best["contrast"] >= m["grad_cam"]["contrast"] + 0.3
    assert best["deletion_auc"] < result["random"]["deletion_auc"]
