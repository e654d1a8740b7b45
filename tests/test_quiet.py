"""A user must not see pages of TF warnings while analyzers are built and run."""

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
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(3, 3, activation="relu"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(4),
    ])
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1))
    for name in sglrp.available_methods():
        if name != "grad_cam.multi_input":
            sglrp.create_analyzer(name, model).analyze(x, target=[0, 3])
    sys.stderr.write("<<end>>\\n")
    """
)


def test_building_and_analyzing_prints_nothing():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    during = run.stderr.split("<<start>>", 1)[1].split("<<end>>", 1)[0].strip()
    assert during == "", during[:3000]
    assert run.stdout == ""
