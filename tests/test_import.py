"""What ``import sglrp`` does to the process: nothing global, and a refusal of a non-TensorFlow
Keras backend in one line."""

import os
import subprocess
import sys
import textwrap

import pytest


def _python(code: str, **env) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=300, env={**base, **env},
    )  # fmt: skip


def test_import_leaves_loggers_and_environment_alone():
    run = _python(
        """
        import logging, os
        import numpy as np
        import tensorflow as tf
        tf.get_logger().setLevel(logging.INFO)
        before = (tf.get_logger().level, logging.getLogger("absl").level)
        import sglrp
        assert (tf.get_logger().level, logging.getLogger("absl").level) == before, "import"
        assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        i = tf.keras.Input((4,))
        model = tf.keras.Model(i, tf.keras.layers.Dense(3)(i))
        sglrp.LRPE(model).analyze(np.ones((1, 4), "float32"), target=0)
        assert (tf.get_logger().level, logging.getLogger("absl").level) == before, "analyze"
        assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
        """
    )
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy"])
def test_another_keras_backend_is_refused_at_import_in_one_line(backend):
    run = _python("import sglrp", KERAS_BACKEND=backend)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: sglrp needs the TensorFlow backend of Keras"), run.stderr
    assert f"KERAS_BACKEND names {backend!r}" in last
    assert "KERAS_BACKEND=tensorflow" in last


def test_a_keras_config_naming_another_backend_is_refused(tmp_path):
    (tmp_path / "keras.json").write_text('{"backend": "jax", "floatx": "float32"}')
    run = _python("import sglrp", KERAS_HOME=str(tmp_path))
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: sglrp needs the TensorFlow backend of Keras"), run.stderr
    assert "keras.json names 'jax'" in last


def test_the_tensorflow_backend_named_explicitly_is_fine():
    run = _python("import sglrp", KERAS_BACKEND="tensorflow")
    assert run.returncode == 0, run.stderr[-3000:]
