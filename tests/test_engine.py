"""The engine follows the installed Keras; on Keras 3 every method runs without innvestigate."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import sglrp


def test_engine_follows_the_installed_keras():
    keras_major = int(tf.keras.__version__.split(".")[0]) if hasattr(tf.keras, "__version__") else 2
    assert sglrp.engine == ("keras3" if keras_major >= 3 else "innvestigate")
    from sglrp import rules
    from sglrp.engines import active

    assert rules.BoundedDeepTaylor is active.BoundedDeepTaylor
    assert isinstance(sglrp.SGLRP.__mro__, tuple) and active.ReverseAnalyzer in sglrp.SGLRP.__mro__


@pytest.mark.engine("innvestigate")
def test_keras2_without_innvestigate_says_what_to_install():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["innvestigate"] = None  # as if it were not installed
        import sglrp
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert run.returncode != 0
    assert 'pip install "sglrp[innvestigate]"' in run.stderr
    assert "ImportError" in run.stderr


@pytest.mark.engine("keras3")
def test_keras3_engine_runs_without_innvestigate():
    assert importlib.util.find_spec("innvestigate") is None
    assert tf.executing_eagerly()


RESNET_FAST = ["sglrp"]  # the rest: slow (a ResNet50 build each)


def _resnet():
    tf.keras.utils.set_random_seed(0)
    return tf.keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)


@pytest.mark.engine("keras3")
@pytest.mark.parametrize(
    "method",
    [
        m if m in RESNET_FAST else pytest.param(m, marks=pytest.mark.slow)
        for m in sglrp.available_methods()
        if m != "grad_cam.multi_input"
    ],
)
def test_every_method_on_keras3_resnet50_in_eager_mode(method):
    model = _resnet()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    with sglrp.create_analyzer(method, model, low=-1.0, high=1.0) as analyzer:
        maps = analyzer.analyze(x, target=[3, 7])
        np.testing.assert_allclose(
            tf.nn.softmax(analyzer.predict_logits(x)), model(x), rtol=1e-4, atol=1e-6
        )
    assert maps.shape == x.shape and np.isfinite(maps).all() and np.abs(maps).max() > 0
    assert tf.executing_eagerly()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([3, 7]), verbose=0)  # the user's model still trains
