"""Tests for the embedded demo: digit scenes and the shipped digit CNN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from sglrp.demo import (
    CLASS_NAMES,
    DEMO_HIGH,
    DEMO_LOW,
    METRICS_PATH,
    WEIGHTS_PATH,
    build_model,
    digit_images,
    digit_pool,
    load_demo_model,
    make_scenes,
    make_singles,
)

# Accuracies the shipped weights reach (see digits_cnn.json); the test recomputes them on
# a smaller held-out sample, hence the margin.
EXPECTED_SINGLE_TOP1 = 0.98
EXPECTED_SCENE_TOP2 = 0.95
MARGIN = 0.05
N_CHECK_SCENES = 300


def _top2_hits(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    top2 = np.sort(np.argsort(probs, axis=1)[:, -2:], axis=1)
    return np.all(top2 == np.sort(labels, axis=1), axis=1)


@pytest.fixture(scope="module")
def model():
    return load_demo_model()


@pytest.fixture(scope="module")
def metrics():
    return json.loads(METRICS_PATH.read_text())


def test_constants():
    assert CLASS_NAMES == tuple(str(c) for c in range(10))
    assert (DEMO_LOW, DEMO_HIGH) == (0.0, 1.0)


def test_scenes_are_deterministic():
    a = make_scenes(40, seed=7)
    b = make_scenes(40, seed=7)
    c = make_scenes(40, seed=8)
    for field in ("images", "labels", "boxes", "indices"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.images, c.images)


@pytest.mark.parametrize("split", ["train", "test"])
def test_scene_layout(split):
    s = make_scenes(200, seed=1, split=split)
    assert s.images.shape == (200, 32, 32, 1) and s.images.dtype == np.float32
    assert s.labels.shape == (200, 2) and s.boxes.shape == (200, 2, 4)
    assert s.images.min() >= 0.0 and s.images.max() <= 1.0
    assert np.all(s.labels[:, 0] != s.labels[:, 1])
    assert set(np.unique(s.labels)) <= set(range(10))

    r0, c0, r1, c1 = (s.boxes[..., k] for k in range(4))
    assert np.all((r0 >= 0) & (c0 >= 0) & (r1 <= 32) & (c1 <= 32))
    assert np.all((r1 - r0 == 16) & (c1 - c0 == 16))
    rows_apart = (r1[:, 0] <= r0[:, 1]) | (r1[:, 1] <= r0[:, 0])
    cols_apart = (c1[:, 0] <= c0[:, 1]) | (c1[:, 1] <= c0[:, 0])
    assert np.all(rows_apart | cols_apart)


def test_scene_pixels_are_the_pasted_digits():
    digits, targets = digit_images()
    s = make_scenes(100, seed=3)
    np.testing.assert_array_equal(targets[s.indices], s.labels)
    for i in range(len(s)):
        mask = np.zeros((32, 32), dtype=bool)
        for j in range(2):
            r0, c0, r1, c1 = s.boxes[i, j]
            mask[r0:r1, c0:c1] = True
            np.testing.assert_array_equal(s.images[i, r0:r1, c0:c1, 0], digits[s.indices[i, j]])
        assert np.all(s.images[i, ~mask, 0] == 0.0)


def test_digits_are_scaled_and_upscaled():
    from sklearn.datasets import load_digits

    raw = load_digits().images
    digits, _ = digit_images()
    assert digits.shape == (raw.shape[0], 16, 16)
    np.testing.assert_array_equal(digits[:, ::2, ::2], (raw / 16.0).astype(np.float32))
    np.testing.assert_array_equal(digits[:, 1::2, 1::2], digits[:, ::2, ::2])


def test_train_and_test_pools_are_disjoint():
    train, test = digit_pool("train"), digit_pool("test")
    assert not set(train) & set(test)
    assert len(train) + len(test) == 1797
    assert len(test) == 359
    assert set(np.unique(make_scenes(300, seed=0, split="train").indices)) <= set(train)
    assert set(np.unique(make_scenes(300, seed=0, split="test").indices)) <= set(test)
    with pytest.raises(ValueError):
        digit_pool("val")


def test_singles():
    digits, targets = digit_images()
    s = make_singles("test", centred=True)
    assert len(s) == 359 and s.images.shape == (359, 32, 32, 1)
    np.testing.assert_array_equal(s.indices, digit_pool("test"))
    np.testing.assert_array_equal(s.labels, targets[s.indices])
    assert np.all(s.boxes == (8, 8, 24, 24))
    np.testing.assert_array_equal(s.images[:, 8:24, 8:24, 0], digits[s.indices])
    r = make_singles("train", seed=5, n=50)
    assert len(r) == 50 and set(r.indices) <= set(digit_pool("train"))
    np.testing.assert_array_equal(r.images, make_singles("train", seed=5, n=50).images)


def test_architecture():
    m = build_model()
    assert m.input_shape == (None, 32, 32, 1)
    assert m.output_shape == (None, 10)
    allowed = (
        tf.keras.layers.Conv2D,
        tf.keras.layers.MaxPooling2D,
        tf.keras.layers.Flatten,
        tf.keras.layers.Dense,
    )
    for layer in m.layers:
        assert isinstance(layer, allowed), layer
        if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Dense)):
            expected = "softmax" if layer is m.layers[-1] else "relu"
            assert layer.activation.__name__ == expected
    assert m.layers[-1].name == "logits"
    assert m.get_layer("conv1") is m.layers[0]


def test_shipped_files(metrics):
    assert WEIGHTS_PATH.stat().st_size < 2 * 1024 * 1024
    assert metrics["param_count"] == build_model().count_params()
    assert metrics["single_top1"] >= EXPECTED_SINGLE_TOP1
    assert metrics["scene_top2"] >= EXPECTED_SCENE_TOP2


def test_missing_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m sglrp.demo.train"):
        load_demo_model(tmp_path / "nothing.weights.h5")


def test_single_digit_accuracy(model, metrics):
    s = make_singles("test", centred=True)
    acc = float(np.mean(model.predict(s.images, verbose=0).argmax(1) == s.labels))
    assert acc == pytest.approx(metrics["single_top1"], abs=0.01)
    assert acc >= EXPECTED_SINGLE_TOP1 - MARGIN


def test_scene_top2_accuracy(model, metrics):
    s = make_scenes(N_CHECK_SCENES, seed=metrics["eval_scene_seed"], split="test")
    probs = model.predict(s.images, verbose=0)
    assert float(np.mean(_top2_hits(probs, s.labels))) >= EXPECTED_SCENE_TOP2 - MARGIN
    # The softmax is shared between the two digits present.
    present = np.take_along_axis(probs, s.labels, axis=1)
    assert float(np.median(present.sum(axis=1))) > 0.8
    assert float(np.median(present.min(axis=1))) > 0.2


@pytest.mark.engine("innvestigate")
def test_loads_with_eager_execution_disabled(model, tmp_path):
    # The loader must also fill the variables in TF1 graph mode.
    x = make_scenes(8, seed=11).images
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(
        f"""
        import numpy as np
        import tensorflow as tf
        tf.compat.v1.disable_eager_execution()
        from sglrp.demo import load_demo_model
        x = np.load({str(tmp_path / "x.npy")!r})
        np.save({str(tmp_path / "y.npy")!r}, load_demo_model().predict(x, verbose=0))
        """
    )
    root = str(WEIGHTS_PATH.parents[2])  # the directory that holds the sglrp package
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), rtol=1e-4, atol=1e-6
    )
