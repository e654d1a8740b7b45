"""Memory is given back by ``close()``: building analyzer after analyzer does not grow the process.

Each analyzer holds a copy of the model's weights in its own graph and session; a leak of that
copy grows the process by the model's size per analyzer. The measurement runs in a fresh
process, so that other tests (and their models) do not disturb it. The model is small to build
but has 74 MB of weights, so that a leaked analyzer shows clearly above allocator noise.
"""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import gc, json, sys
    import numpy as np
    import tensorflow as tf
    import sglrp

    def live_graphs():
        return sum(type(o) is tf.Graph for o in gc.get_objects())  # not FuncGraphs

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    close = sys.argv[1] == "close"
    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        tf.keras.Input((16, 16, 3)),
        layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(4096, activation="relu"),
        layers.Dense(4096, activation="relu"),
        layers.Dense(10),
    ])
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype(np.float32)
    model.predict_on_batch(x)
    methods = ["sglrp", "guided_grad_cam", "lrp.sequential_preset_a_flat", "lrp.epsilon"] * 2
    graphs_before, rss, kept = live_graphs(), [rss_mb()], []
    for name in methods:
        analyzer = sglrp.create_analyzer(name, model)
        analyzer.analyze(x, target=[0, 1, 2, 3])
        if close:
            analyzer.close()
        else:
            kept.append(analyzer)  # what happens without close(): the test must see it
        del analyzer
        gc.collect()
        rss.append(rss_mb())
    alive = live_graphs() - graphs_before
    print(json.dumps({"rss": rss, "graphs_alive": alive}))
    """
)

#: RSS after the 4th analyzer vs after the 8th: the second round of the same four methods.
HALF = 4


def measure(mode: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    rss = result["rss"]
    result["first"] = rss[HALF] - rss[0]  # includes one-time costs (kernels, code paths, caches)
    result["second"] = rss[-1] - rss[HALF]  # should be noise only
    result["bound"] = 0.5 * result["first"] + 50
    print(
        f"{mode}: RSS after each analyzer (MiB) {[round(r) for r in rss]}; growth analyzers "
        f"1-{HALF} {result['first']:.0f}, {HALF + 1}-8 {result['second']:.0f} "
        f"(bound {result['bound']:.0f}); graphs alive {result['graphs_alive']}"
    )
    return result


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.mark.slow
def test_close_gives_memory_back():
    result = measure("close")
    assert result["graphs_alive"] == 0
    assert result["second"] < result["bound"], result["rss"]


@pytest.mark.engine("innvestigate")  # counts the private tf.Graphs of that engine
@pytest.mark.slow
def test_detector_sees_analyzers_that_are_not_closed():
    """The same measurement without ``close()``: the memory of every analyzer stays."""
    result = measure("keep")
    assert result["graphs_alive"] >= 8
    assert result["second"] >= result["bound"], result["rss"]
