"""A process with eager execution off, as innvestigate's own README tells its users to set up.

On the innvestigate engine every method works there, beside innvestigate's own analyzers, with
the maps of an eager process. Keras 3 runs eagerly only: its engine says so in one line.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sglrp

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    if sys.argv[1] == "graph":
        tf.compat.v1.disable_eager_execution()
    import sglrp

    layers = tf.keras.layers
    rng = np.random.default_rng(0)

    def seeded(model):  # the same weights in either mode
        model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32")
                           for w in model.get_weights()])
        for layer in model.layers:
            if isinstance(layer, layers.BatchNormalization):
                g, b, m, v = layer.get_weights()
                layer.set_weights([g, b, m, np.abs(v) + 0.5])
        return model

    # a conv net with a batch normalization to fold and a softmax to strip (canonized copy)
    i = tf.keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, activation="relu", name="conv1")(i)
    h = layers.BatchNormalization(name="bn")(layers.Conv2D(4, 3, name="conv2")(h))
    h = layers.Activation("relu")(h)
    out = layers.Dense(5, activation="softmax")(layers.Flatten()(h))
    model = seeded(tf.keras.Model(i, out))
    a, b = tf.keras.Input((8, 8, 3)), tf.keras.Input((8, 8, 3))
    ha = layers.Conv2D(3, 3, activation="relu")(a)
    hb = layers.Conv2D(3, 3, activation="relu")(b)
    f = layers.Concatenate()([layers.Flatten()(ha), layers.Flatten()(hb)])
    two = seeded(tf.keras.Model([a, b], layers.Dense(5)(f)))

    x = np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 3)).astype("float32")
    kwargs = {"smoothgrad": {"augment_by_n": 4}, "integrated_gradients": {"steps": 4}}
    maps = {}
    for name in sglrp.available_methods():
        net, data = (two, [x, x[::-1]]) if name == "grad_cam.multi_input" else (model, x)
        analyzer = sglrp.create_analyzer(name, net, low=0, high=1, **kwargs.get(name, {}))
        result = analyzer.analyze(data, target=[0, 2, 4])
        for k, r in enumerate(result if isinstance(result, list) else [result]):
            maps[f"{name}:{k}"] = r
    maps["logits"] = sglrp.LRP(model, low=0, high=1).predict_logits(x)
    # the analyzer follows new weights in this mode too
    analyzer = sglrp.create_analyzer("lrp.epsilon", model)
    before = analyzer.analyze(x, target=1)
    seeded(model)
    maps["after_set_weights"] = analyzer.analyze(x, target=1)
    assert not np.allclose(before, maps["after_set_weights"])
    if sglrp.engine == "innvestigate" and sys.argv[1] == "graph":
        # innvestigate's own analyzers on the user's model, beside sglrp's, in this process
        import innvestigate
        h = layers.Conv2D(4, 3, activation="relu")(i)
        plain = seeded(tf.keras.Model(i, layers.Dense(5)(layers.Flatten()(h))))
        for name, ours in [("gradient", sglrp.SG(plain, noise_scale=0.0, augment_by_n=1)),
                           ("lrp.epsilon", sglrp.LRPE(plain))]:
            own = innvestigate.create_analyzer(name, plain, neuron_selection_mode="index")
            maps[f"innvestigate.{name}"] = own.analyze(x, 3)
            maps[f"sglrp.{name}"] = ours.analyze(x, 3)
    np.savez(sys.argv[2], **maps)
    """
)


def _run(mode: str, path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(path)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


@pytest.mark.engine("innvestigate")
def test_every_method_works_with_eager_execution_off(tmp_path):
    runs = {mode: _run(mode, tmp_path / f"{mode}.npz") for mode in ("eager", "graph")}
    for mode, run in runs.items():
        assert run.returncode == 0, f"{mode}: {run.stderr[-3000:]}"
    eager, graph = (np.load(tmp_path / f"{mode}.npz") for mode in ("eager", "graph"))
    methods = {key.split(":")[0] for key in eager.files if ":" in key}
    assert methods == set(sglrp.available_methods())
    for key in eager.files:
        scale = max(float(np.ptp(eager[key])), 1e-12)
        assert np.allclose(graph[key], eager[key], rtol=0, atol=1e-5 * scale), key
    # innvestigate's own analyzers, in the same process, agree with sglrp's
    for name in ("gradient", "lrp.epsilon"):
        own = graph[f"innvestigate.{name}"]
        assert np.allclose(graph[f"sglrp.{name}"], own, rtol=0, atol=1e-5 * np.ptp(own)), name


@pytest.mark.engine("keras3")
def test_keras3_says_it_needs_eager_execution():
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        i = keras.Input((6,))
        model = keras.Model(i, keras.layers.Dense(3)(keras.layers.Dense(4, activation="relu")(i)))
        tf.compat.v1.disable_eager_execution()
        import sglrp
        sglrp.LRPE(model)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: Keras 3 needs eager execution"), run.stderr[-2000:]
