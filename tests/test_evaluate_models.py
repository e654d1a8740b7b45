"""The shipped digit-scene models: files, sizes, layout of the weights, held-out accuracy, the
layers of the EfficientNet- and ConvNeXt-style ones, and the same outputs on both engines."""

import json

import h5py
import numpy as np
import pytest

from sglrp.canonize import canonize
from sglrp.demo import (
    ARCHITECTURES,
    build_model,
    load_demo_model,
    make_scenes,
    metrics_file,
    weights_file,
)
from sglrp.demo.model import layer_scale_class
from sglrp.demo.train import (
    EVAL_SCENE_SEED,
    EVAL_SCENES,
    N_RECORDED,
    default_epochs,
    scene_top2,
)
from sglrp.validation import activation_name

MODELS = list(ARCHITECTURES)
MODERN_MODELS = ["efficientnet_mini", "convnext_mini"]
#: The ViT's target accuracy (its issue: >= 0.9 within 15 minutes of training on 2 cores).
MIN_TOP2 = {"vit": 0.9}


def test_at_least_three_models():
    assert len(MODELS) >= 3 and MODELS[0] == "digits_cnn"


@pytest.mark.parametrize("name", MODELS)
def test_shipped_files(name):
    info = json.loads(metrics_file(name).read_text())
    assert weights_file(name).stat().st_size <= 0.71 * 1024 * 1024
    assert info["param_count"] == build_model(name).count_params()
    assert info["scene_top2"] >= MIN_TOP2.get(name, 0.95)
    assert info["epochs"] == default_epochs(name) and info["seed"] == 0


@pytest.mark.parametrize("name", MODELS)
def test_weights_are_stored_by_layer_name(name):
    model = build_model(name)
    with h5py.File(weights_file(name), "r") as f:
        stored = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
    assert stored == [layer.name for layer in model.layers if layer.weights]


@pytest.mark.parametrize("name", MODELS)
def test_held_out_scene_top2_is_the_recorded_one(name):
    info = json.loads(metrics_file(name).read_text())
    scenes = make_scenes(EVAL_SCENES, seed=EVAL_SCENE_SEED, split="test")
    probs = load_demo_model(name=name).predict(scenes.images, batch_size=500, verbose=0)
    top2 = scene_top2(probs, scenes.labels)
    assert top2 == pytest.approx(info["scene_top2"], abs=2 / EVAL_SCENES)
    assert top2 >= MIN_TOP2.get(name, 0.95)


@pytest.mark.parametrize("name", MODERN_MODELS)
def test_both_engines_compute_the_recorded_probabilities(name):
    # Recorded by the training script (Keras 3); the innvestigate engine's Keras 2.14 must
    # read the same weights into the same layers (swish, GELU, layer norm, layer scale...).
    info = json.loads(metrics_file(name).read_text())
    scenes = make_scenes(EVAL_SCENES, seed=EVAL_SCENE_SEED, split="test")
    probs = load_demo_model(name=name).predict(scenes.images[:N_RECORDED], verbose=0)
    np.testing.assert_allclose(probs, info["first_scene_probs"], atol=2e-5)
    assert np.asarray(info["first_scene_probs"]).shape == (N_RECORDED, 10)


def test_efficientnet_mini_has_rescaling_swish_and_squeeze_and_excitation():
    model = build_model("efficientnet_mini")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:2] == ["InputLayer", "Rescaling"]
    assert {"DepthwiseConv2D", "Multiply", "BatchNormalization", "Add"} <= set(kinds)
    assert kinds.count("Multiply") == 4
    activations = {activation_name(layer) for layer in model.layers}
    assert activations & {"swish", "silu"} and "sigmoid" in activations
    assert "relu" not in activations
    x = np.array([0.0, 0.25, 1.0], np.float32).reshape(1, 3, 1, 1)
    out = model.get_layer("rescaling")(x)
    np.testing.assert_allclose(np.ravel(out), [-1.0, -0.5, 1.0])
    gate = model.get_layer("block2a_se_excite")
    assert [tuple(t.shape) for t in gate.input] == [(None, 8, 8, 64), (None, 1, 1, 64)]


def test_convnext_mini_has_7x7_depthwise_gelu_layer_norm_and_keras_layer_scale():
    model = build_model("convnext_mini")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("LayerNormalization") == 3 and kinds.count("LayerScale") == 3
    assert kinds[:2] == ["InputLayer", "Normalization"]
    scale = model.get_layer("stage1_block0_layer_scale")
    assert isinstance(scale, layer_scale_class())
    assert type(scale).__module__.endswith("applications.convnext")
    assert model.get_layer("stage0_block0_depthwise_conv").kernel_size == (7, 7)
    assert activation_name(model.get_layer("stage0_block0_gelu")) == "gelu"
    assert "relu" not in {activation_name(layer) for layer in model.layers}


def test_gap_resnet_has_batch_norms_that_canonization_folds():
    model = load_demo_model(name="gap_resnet")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert {"BatchNormalization", "Add", "GlobalAveragePooling2D"} <= set(kinds)
    folded = canonize(model)
    assert "BatchNormalization" not in [type(layer).__name__ for layer in folded.layers]
    x = make_scenes(8, seed=3).images
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(KeyError, match="digits_cnn, dense_head, gap_resnet"):
        build_model("resnet50")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense_head", "gap_resnet"])
def test_training_is_deterministic(name):
    from sglrp.demo.train import train

    first, _ = train(epochs=1, verbose=0, name=name)
    second, _ = train(epochs=1, verbose=0, name=name)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
