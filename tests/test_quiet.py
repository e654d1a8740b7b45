"""A user must not see pages of TF warnings while analyzers are built and run."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf  # the user imports TF first, as usual
    sys.stderr.write("<<start>>\\n"); sys.stderr.flush()
    import sglrp
    # a small VGG: functional, softmax on top, deep enough for every rule to show up
    layers = tf.keras.layers
    inputs = tf.keras.Input((32, 32, 1))
    h = layers.Conv2D(4, 3, activation="relu", padding="same")(inputs)
    h = layers.MaxPooling2D()(layers.Conv2D(4, 3, activation="relu", padding="same")(h))
    h = layers.MaxPooling2D()(layers.Conv2D(8, 3, activation="relu", padding="same")(h))
    h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
    model = tf.keras.Model(inputs, layers.Dense(4, activation="softmax")(h))
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 1))
    for name in sglrp.available_methods():
        if name != "grad_cam.multi_input":
            sglrp.create_analyzer(name, model).analyze(x, target=[0, 3])
    sys.stderr.write("<<end>>\\n")
    """
)


#: A script without sglrp: what TensorFlow itself prints at its first operation.
BARE = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    sys.stderr.write("<<start>>\\n"); sys.stderr.flush()
    tf.constant(1.0) + 1.0
    sys.stderr.write("<<end>>\\n")
    """
)


def _between(stderr: str) -> list[str]:
    return stderr.split("<<start>>", 1)[1].split("<<end>>", 1)[0].strip().splitlines()


def _message(line: str) -> str:
    """A C++ log line without its time stamp and thread: ``E0000 00:00:... x.cc:52] text``."""
    return line.split("] ", 1)[-1]


def test_building_and_analyzing_prints_nothing():
    # the environment of a fresh shell, not of this process (importing TF set variables in it)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF2_BEHAVIOR")}
    bare = subprocess.run(
        [sys.executable, "-c", BARE], capture_output=True, text=True, timeout=300, env=env
    )
    tensorflow_own = {_message(line) for line in _between(bare.stderr)}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # allowed: our notice that a softmax is stripped (test_errors checks it is said once),
    # what TensorFlow prints at any script's first operation (e.g. TF 2.21's CUDA probe on a
    # machine without a GPU), and TF 2.14's one info line at the first session run (its C++
    # log level is fixed at import)
    others = [
        line
        for line in _between(run.stderr)
        if "ends in a softmax" not in line
        and "MLIR V1 optimization pass is not enabled" not in line
        and _message(line) not in tensorflow_own
    ]
    assert others == [], "\n".join(others)[:3000]
    assert run.stdout == ""
