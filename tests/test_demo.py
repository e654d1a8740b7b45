"""The demo and the zebra/elephant example end to end, and the paper's claim in numbers:
SGLRP (and CLRP) separate the explained digit from the other one better than LRP."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sglrp.demo.compare import COMPARISON
from sglrp.demo.run import run_benchmark
from sglrp.demo.zebra_elephant import DATA_DIR, run_example
from sglrp.models import WeightsUnavailableError, load_vgg16

CLAIM = {k: COMPARISON[k] for k in ("LRP", "CLRP", "SGLRP")}


def contrast(results, method):
    return results[method]["contrast"]


def test_sglrp_discriminates_better_than_lrp_on_a_few_scenes():
    _, maps, results = run_benchmark(n_scenes=12, seed=1, methods=CLAIM, log=lambda s: None)
    assert set(maps) == set(CLAIM)
    assert maps["SGLRP"].shape == (24, 32, 32, 1)
    assert contrast(results, "SGLRP")["mean"] > contrast(results, "LRP")["mean"] + 0.3
    assert contrast(results, "CLRP")["mean"] > contrast(results, "LRP")["mean"] + 0.3


@pytest.mark.slow
def test_sglrp_discriminates_better_than_lrp_on_200_scenes():
    _, _, results = run_benchmark(n_scenes=200, seed=0, log=lambda s: None)
    # the intervals do not overlap
    assert contrast(results, "SGLRP")["ci95"][0] > contrast(results, "LRP")["ci95"][1]
    assert results["SGLRP"]["pointing_game"]["mean"] > results["LRP"]["pointing_game"]["mean"]


def test_demo_command_writes_figures_and_table(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sglrp.cli",
            "demo",
            "--out",
            str(tmp_path),
            "--scenes",
            "3",
            "--figures",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| SGLRP |" in run.stdout and "| IntGrad |" in run.stdout
    assert (tmp_path / "scene0_comparison.png").stat().st_size > 10_000
    results = json.loads((tmp_path / "discrimination.json").read_text())
    assert set(results) == set(COMPARISON)
    for metrics in results.values():
        assert set(metrics) == {"relevance_mass", "contrast", "pointing_game"}
        for m in metrics.values():
            assert m["ci95"][0] <= m["mean"] <= m["ci95"][1]
    maps = np.load(tmp_path / "maps.npz")
    assert maps["SGLRP"].shape == (2, 32, 32, 1)  # one scene, both digits


@pytest.mark.filterwarnings("ignore::sglrp.ContrastLostWarning")  # said: random VGG16 weights
def test_zebra_elephant_example_fast_path(tmp_path):
    # random weights, 32x32 input: the real code path, only cheaper
    image = DATA_DIR / "zebra_elephant3.jpg"
    code = run_example(
        tmp_path,
        weights=None,
        images=[image],
        size=32,
        methods={"SGLRP": "sglrp", "Grad-CAM": "grad_cam"},
    )
    assert code == 0
    assert (tmp_path / "zebra_elephant3_comparison.png").exists()
    maps = np.load(tmp_path / "maps.npz")
    assert maps["SGLRP"].shape == (2, 1, 32, 32, 3)
    assert np.isfinite(maps["SGLRP"]).all()
    zebra, elephant = maps["SGLRP"][0], maps["SGLRP"][1]
    assert np.abs(zebra).max() > 0
    assert np.abs(zebra - elephant).max() > 1e-3 * np.abs(zebra).max()  # the targets differ


@pytest.mark.slow
def test_zebra_elephant_example_all_methods(tmp_path):
    assert run_example(tmp_path, weights=None, size=32) == 0
    assert len(list(tmp_path.glob("*_comparison.png"))) == 5


def test_offline_without_weights_says_how_to_get_them(tmp_path):
    env = dict(
        os.environ,
        KERAS_HOME=str(tmp_path),
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    run = subprocess.run(
        [sys.executable, "examples/zebra_elephant.py", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert run.returncode == 2
    assert "VGG16 ImageNet weights are not in the Keras cache" in run.stderr
    assert "--weights PATH" in run.stderr
    assert not (tmp_path / "out").exists()  # no random-weight results


def test_missing_weights_file():
    with pytest.raises(WeightsUnavailableError, match="'no/such.h5' does not exist"):
        load_vgg16("no/such.h5")
