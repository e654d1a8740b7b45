"""What ``sglrp explain`` feeds the model: ``--preprocess``, 16- and 32-bit images, links in a
folder, and the signature fields that tell maps of changed numbers apart.

The command runs in this process (``sglrp.cli.main``) on small real models saved to files.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from sglrp import explain
from sglrp.cli import main as cli_main
from sglrp.explain import signature
from sglrp.registry import create_analyzer

OLD_SIGNATURE_FIELDS = {"sglrp", "engine", "model", "weights", "method", "options", "target",
                        "input"}


def records(out):
    with open(out / "manifest.jsonl", encoding="utf8") as f:
        return [json.loads(line) for line in f]


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def small_net(first=None, seed=0, separable=False):
    """Input (8, 8, 3) -> [first] -> Conv (or SeparableConv) 3x3x4 relu -> Flatten -> Dense 4."""
    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    conv = (layers.SeparableConv2D(4, 3, activation="relu", use_bias=False) if separable
            else layers.Conv2D(4, 3, activation="relu", use_bias=False))
    body = [tf.keras.Input((8, 8, 3)), *([first] if first is not None else []), conv,
            layers.Flatten(), layers.Dense(4, use_bias=False)]
    return tf.keras.Sequential(body)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A plain model, the same weights behind Rescaling(1/255), a separable one, two images."""
    root = tmp_path_factory.mktemp("preprocess")
    plain = small_net()
    scaled = small_net(tf.keras.layers.Rescaling(1 / 255))
    for a, b in zip([layer for layer in scaled.layers if layer.weights],
                    [layer for layer in plain.layers if layer.weights]):
        a.set_weights(b.get_weights())
    paths = {"plain": root / "plain.keras", "scaled": root / "scaled.keras",
             "separable": root / "separable.keras"}
    plain.save(paths["plain"])
    scaled.save(paths["scaled"])
    small_net(separable=True).save(paths["separable"])
    rng = np.random.default_rng(0)
    paths["rgb"] = root / "rgb.png"
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(paths["rgb"])
    paths["root"] = root
    return paths


def run(capsys, *args, quiet=True):
    """``sglrp explain ARGS`` here; returns the exit code and stderr."""
    code = cli_main(["explain", *map(str, args), *(["--quiet"] if quiet else [])])
    return code, capsys.readouterr().err


# -- 5. --preprocess ------------------------------------------------------------------------------
def test_auto_feeds_0_255_to_a_model_that_rescales(files, tmp_path, capsys):
    """Issue 18.5: a model with Rescaling(1/255) inside was fed pixels / 255."""
    out = tmp_path / "out"
    code, err = run(capsys, files["rgb"], "--model", files["scaled"], "--method",
                    "integrated_gradients", "--out", out, quiet=False)
    assert code == 0, err
    assert "preprocess 0-255, low 0, high 255" in err.splitlines()[0]
    (record,) = records(out)
    assert record["preprocess"] == "0-255"
    assert record["signature"]["preprocess"] == "0-255"
    pixels = np.asarray(Image.open(files["rgb"]), np.float32)[None]
    model = tf.keras.models.load_model(files["scaled"], compile=False)
    probs = softmax(model(pixels))[0]
    np.testing.assert_allclose(record["top_k_probs"], np.sort(probs)[::-1], atol=2e-6)
    with create_analyzer("integrated_gradients", model) as analyzer:
        expected = analyzer.analyze(pixels)[0]
    np.testing.assert_allclose(np.load(out / record["outputs"]["npy"]), expected, rtol=1e-5,
                               atol=1e-6)


def test_auto_keeps_0_1_and_the_old_signature_for_other_models(files, tmp_path, capsys):
    """The old implicit choice keeps its digest: existing folders still resume."""
    out = tmp_path / "out"
    code, err = run(capsys, files["rgb"], "--model", files["plain"], "--method", "sglrp",
                    "--out", out)
    assert code == 0, err
    code, err = run(capsys, files["rgb"], "--model", files["plain"], "--method", "sglrp",
                    "--preprocess", "0-1", "--out", out)
    assert code == 0 and "0 ok, 1 skipped" in err
    code, err = run(capsys, files["rgb"], "--model", files["plain"], "--method", "sglrp",
                    "--preprocess", "-1-1", "--out", out)
    assert code == 0 and "1 ok, 0 skipped" in err
    first, again, other = records(out)
    assert first["preprocess"] == "0-1" and set(first["signature"]) == OLD_SIGNATURE_FIELDS
    assert again["key"] == first["key"] and again["status"] == "skipped"
    assert other["key"] != first["key"] and other["signature"]["preprocess"] == "-1-1"
    assert other["signature"]["options"] == {"relu": False, "low": -1.0, "high": 1.0}
    # The plain model fed [0, 1] and the rescaling one fed [0, 255] are the same function.
    scaled = tmp_path / "scaled"
    assert run(capsys, files["rgb"], "--model", files["scaled"], "--method", "smoothgrad",
               "--out", scaled)[0] == 0
    assert run(capsys, files["rgb"], "--model", files["plain"], "--method", "smoothgrad",
               "--out", out)[0] == 0
    np.testing.assert_allclose(records(scaled)[0]["top_k_probs"], records(out)[-1]["top_k_probs"],
                               atol=2e-6)


@pytest.mark.parametrize(
    ("choice", "low", "high", "expected"),
    [
        ("0-1", 0.0, 1.0, lambda x: x / 255),
        ("0-255", 0.0, 255.0, lambda x: x),
        ("-1-1", -1.0, 1.0, lambda x: x / 127.5 - 1),
        ("caffe", -123.68, 151.061, lambda x: x[..., ::-1] - [103.939, 116.779, 123.68]),
        ("torch", -0.485 / 0.229, (1 - 0.406) / 0.225,
         lambda x: (x / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]),
    ],
)
def test_each_choice_maps_pixels_and_sets_the_bounds(files, choice, low, high, expected):
    info = explain.load_model_info(str(files["plain"]), preprocess=choice)
    assert info.preprocessing == choice
    assert np.isclose(info.low, low) and np.isclose(info.high, high)
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 3, 3))
    np.testing.assert_allclose(info.preprocess(x.astype(np.float32)), expected(x), rtol=1e-5,
                               atol=1e-4)
    given = explain.load_model_info(str(files["plain"]), low=-5.0, high=5.0, preprocess=choice)
    assert (given.low, given.high) == (-5.0, 5.0)  # --low/--high still win


def test_auto_per_model_and_nested_first_layers(files):
    from sglrp.explain import preprocess

    assert explain.load_model_info("demo").preprocessing == "0-1"
    inner = small_net(tf.keras.layers.Normalization(mean=0.0, variance=1.0))
    outer = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), inner])
    assert preprocess.resolve("auto", "file", outer) == "0-255"
    assert preprocess.resolve("auto", "file", small_net()) == "0-1"
    assert preprocess.resolve("auto", "vgg16") == "caffe"


@pytest.mark.parametrize("choice", ["caffe", "torch"])
def test_imagenet_choices_refuse_a_grey_model(tmp_path, capsys, choice):
    code, err = run(capsys, tmp_path / "x.png", "--model", "demo", "--preprocess", choice,
                    "--out", tmp_path / "never")
    assert code == 2
    assert f"--preprocess {choice} needs an RGB model" in err and "1 input channel" in err
    assert not (tmp_path / "never").exists()


def test_unknown_choice_and_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["explain", "x.png", "--preprocess", "0-2"])
    assert "invalid choice: '0-2'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--preprocess {auto,0-1,0-255,-1-1,caffe,torch}" in text
    assert "Rescaling or Normalization" in text


def test_distributed_takes_preprocess(files):
    pytest.importorskip("ray")
    import sglrp.distributed

    with pytest.raises(ValueError, match="--preprocess caffe needs an RGB model"):
        sglrp.distributed.explain([str(files["rgb"])], model="demo", preprocess="caffe")


# -- 6. 16-bit and 32-bit images -------------------------------------------------------------------
def test_16_bit_images_are_scaled_by_the_format_range(tmp_path):
    """Issue 18.6: a 16-bit image was scaled by its own maximum."""
    dark = np.full((4, 4), 250, np.uint16)
    bright = dark.copy()
    bright[0, 0] = 256  # one pixel >= 256 made the whole image come out 257x darker
    for name, array in (("dark", dark), ("bright", bright)):
        Image.fromarray(array).save(tmp_path / f"{name}.png")
        Image.fromarray(array).save(tmp_path / f"{name}.tif")
    for suffix in ("png", "tif"):
        for name, array in (("dark", dark), ("bright", bright)):
            grey = explain.read_image(tmp_path / f"{name}.{suffix}", (4, 4), 1)
            np.testing.assert_allclose(grey[..., 0], array / 65535 * 255, rtol=1e-6)
            rgb = explain.read_image(tmp_path / f"{name}.{suffix}", (4, 4), 3)
            assert rgb.shape == (4, 4, 3) and (rgb == grey).all()
    info = explain.load_model_info("demo")
    x = explain.load_input(tmp_path / "dark.png", info)
    np.testing.assert_allclose(x, 250 / 65535, rtol=1e-5)  # then the chosen preprocessing
    eight = tmp_path / "eight.png"
    Image.fromarray(np.full((4, 4), 250, np.uint8)).save(eight)
    assert explain.read_image(eight, (4, 4), 1).dtype == np.uint8  # 8 bit: as before
    assert (explain.read_image(eight, (4, 4), 1) == 250).all()


@pytest.mark.parametrize(("mode", "dtype"), [("I", np.int32), ("F", np.float32)])
def test_32_bit_images_are_refused_naming_the_mode(tmp_path, capsys, mode, dtype):
    path = tmp_path / "deep.tif"
    Image.fromarray(np.full((6, 6), 3, dtype), mode).save(path)
    assert Image.open(path).mode == mode
    with pytest.raises(explain.ImageError, match=rf"\(mode {mode}\) is not supported"):
        explain.read_image(path, (4, 4), 1)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(good)
    code, err = run(capsys, path, good, "--model", "demo", "--method", "lrp.epsilon", "--out",
                    tmp_path / "out")
    assert code == 1 and "1 ok, 0 skipped, 1 failed" in err
    assert f"error: {path}: 32-bit" in err and f"(mode {mode})" in err


# -- 13. links in an input folder ------------------------------------------------------------------
def test_broken_links_and_loops_in_a_folder_are_reported(tmp_path, capsys):
    """Issue 18.13: they were skipped without a word."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(folder / "good.png")
    os.symlink("gone.png", folder / "dangling.png")
    os.symlink("loop", folder / "loop")
    assert explain.expand_inputs([str(folder)]) == [str(folder / n) for n in
                                                    ("dangling.png", "good.png", "loop")]
    code, err = run(capsys, folder, "--model", "demo", "--method", "lrp.epsilon", "--out",
                    tmp_path / "out")
    assert code == 1 and "1 ok, 0 skipped, 2 failed" in err
    assert f"error: {folder / 'dangling.png'}: broken symbolic link (to 'gone.png'" in err
    assert f"error: {folder / 'loop'}: symbolic link loop" in err
    failed = [r for r in records(tmp_path / "out") if r["status"] == "error"]
    assert sorted(r["image"] for r in failed) == [str(folder / "dangling.png"),
                                                   str(folder / "loop")]


# -- 15. signatures change for exactly the maps whose numbers changed ------------------------------
def test_decoder_enters_the_signature_of_16_bit_images_only(tmp_path, capsys):
    Image.fromarray(np.full((6, 6), 900, np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(np.full((6, 6), 90, np.uint8)).save(tmp_path / "flat.png")
    out = tmp_path / "out"
    code, err = run(capsys, tmp_path / "deep.png", tmp_path / "flat.png", "--model", "demo",
                    "--method", "lrp.epsilon", "--out", out)
    assert code == 0, err
    deep, flat = records(out)
    assert deep["signature"]["decoder"] == explain.inputs.DECODER_16BIT
    assert set(flat["signature"]) == OLD_SIGNATURE_FIELDS
    old = {k: v for k, v in deep["signature"].items() if k != "decoder"}  # an earlier run's
    assert deep["key"].endswith(signature.digest(deep["signature"]))
    assert not deep["key"].endswith(signature.digest(old))
    code, err = run(capsys, tmp_path / "deep.png", tmp_path / "flat.png", "--model", "demo",
                    "--method", "lrp.epsilon", "--out", out)
    assert code == 0 and "0 ok, 2 skipped" in err  # found again without decoding


def test_rules_enter_the_signature_of_relevance_maps_of_separable_models(files, tmp_path,
                                                                          capsys):
    out = tmp_path / "out"
    for model in ("separable", "plain"):
        code, err = run(capsys, files["rgb"], "--model", files[model], "--method",
                        "sglrp,lrp.epsilon,integrated_gradients,smoothgrad", "--out", out)
        assert code == 0, err
    rules = {(r["model"] == str(files["separable"]), r["method"]): r["signature"].get("rules")
             for r in records(out)}
    assert rules == {
        (True, "sglrp"): signature.RULES_SEPARABLE,
        (True, "lrp.epsilon"): signature.RULES_SEPARABLE,
        (True, "integrated_gradients"): None,
        (True, "smoothgrad"): None,
        (False, "sglrp"): None,
        (False, "lrp.epsilon"): None,
        (False, "integrated_gradients"): None,
        (False, "smoothgrad"): None,
    }
    assert signature.rules_version("sglrp", False) is None
    assert signature.rules_version("lrp.z_plus", True) == signature.RULES_SEPARABLE
    assert signature.rules_version("guided_backprop", True) is None
