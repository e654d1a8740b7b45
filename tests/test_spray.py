"""``sglrp spray`` and ``sglrp.spray``: spectral relevance analysis, the planted-shortcut set."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from sglrp.cli import main as cli_main
from sglrp.spray import analysis as sa
from sglrp.spray import analyze, eigengap, planted

# -- the analysis on synthetic maps -------------------------------------------------------------


def planted_maps(k: int, per: int, seed: int = 0, noise: float = 0.15):
    """``k`` groups of ``per`` maps (32x32x1): one square blob per group, at its own place."""
    rng = np.random.default_rng(seed)
    protos = np.zeros((k, 32, 32))
    for c in range(k):
        r, col = divmod(c, 3)
        protos[c, 2 + 10 * r:8 + 10 * r, 2 + 10 * col:8 + 10 * col] = 1.0
    truth = np.repeat(np.arange(k), per)
    maps = protos[truth] + noise * rng.normal(size=(k * per, 32, 32))
    return maps[..., None].astype(np.float32), truth


def test_spectral_clustering_recovers_planted_clusters():
    maps, truth = planted_maps(3, 30)
    given = analyze(maps, clusters=3, truth=truth, embedding="spectral")
    assert given.k == 3 and given.k_from == "given"
    assert given.scores["adjusted_rand_index"] == 1.0
    found = analyze(maps, truth=truth, embedding="spectral")
    assert found.k == 3 and found.k_from == "eigengap"
    assert found.scores == {"adjusted_rand_index": 1.0, "homogeneity": 1.0, "completeness": 1.0}
    assert sorted(c["size"] for c in found.clusters) == [30, 30, 30]
    assert found.labels.shape == (90,) and found.embedding.shape == (90, 2)
    # every cluster's mean map is its blob: the mean's maximum lies in the blob of its members
    for c in found.clusters:
        group = truth[c["members"][0]]
        assert np.all(truth[c["members"]] == group)
        r, col = divmod(int(np.argmax(c["mean"])), 16)
        assert 1 <= r - 5 * (group // 3) <= 4 and 1 <= col - 5 * (group % 3) <= 4


@pytest.mark.parametrize("k", [2, 4, 5])
def test_eigengap_picks_the_number_of_planted_clusters(k):
    maps, truth = planted_maps(k, 25, seed=k)
    result = analyze(maps, embedding="spectral")
    assert result.k == k
    assert np.argmax(np.diff(result.eigenvalues[:11])) == k - 1


def test_eigengap_is_the_largest_step_of_the_spectrum():
    assert eigengap([0.0, 0.0, 0.0, 0.6, 0.62, 0.7]) == 3
    assert eigengap([0.0, 0.9, 0.95]) == 1
    assert eigengap([0.0, 0.05, 0.3, 0.35, 1.0], max_clusters=3) == 2  # K <= max_clusters
    assert eigengap([0.0, 0.05, 0.3, 0.35, 1.0]) == 4


def test_spectrum_equals_the_dense_normalised_laplacian():
    """Lanczos on a graph of 600 maps (the sparse path) against float64 NumPy of
    L = I - D^-1/2 A D^-1/2 (von Luxburg 2007, eq. for L_sym)."""
    maps, _ = planted_maps(4, 150, noise=0.6)
    features = sa.prepare(maps)
    graph = sa.affinity(features, 10)
    a = graph.toarray().astype(np.float64)
    assert np.array_equal(a, a.T) and set(np.unique(a)) <= {0.0, 1.0}
    assert np.all(a.sum(1) >= 10)  # every map joined to its 10 nearest (and their reverse)
    d = a.sum(1)
    lap = np.eye(len(a)) - a / np.sqrt(np.outer(d, d))
    expected = np.linalg.eigvalsh(lap)[:8]
    values, vectors = sa.spectrum(graph, 8)
    assert len(a) > 500
    np.testing.assert_allclose(values, expected, atol=1e-6)
    np.testing.assert_allclose(lap @ vectors, vectors * values, atol=1e-5)


def test_prepare_sums_channels_downsizes_and_normalises():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 64, 48, 3)).astype(np.float32)
    features = sa.prepare(maps, size=16)
    assert features.shape == (5, 16 * 12)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    one = sa.prepare(maps[:1].sum(axis=-1), size=16)  # channels summed first
    np.testing.assert_allclose(one, features[:1], atol=1e-5)
    assert np.all(sa.prepare(np.zeros((2, 8, 8))) == 0)  # a zero map stays zero
    with pytest.raises(ValueError, match="NaN"):
        sa.prepare(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match="size"):
        sa.prepare([np.zeros((8, 8)), np.zeros((9, 8))])
    with pytest.raises(ValueError, match="at least 2 maps"):
        analyze(np.zeros((1, 8, 8)))


# -- the planted-shortcut set and its models ----------------------------------------------------


def test_planted_test_set_is_fixed_and_half_marked():
    data = planted.test_set()
    assert len(data) == 264 >= 200 and int(data.marked.sum()) == 132
    assert np.all(data.labels == planted.MARKED_CLASS)
    mark = data.images[:, planted.MARK_ROWS, planted.MARK_COLS, 0]
    assert np.all(mark[data.marked] == 1.0) and np.all(mark[~data.marked] == 0.0)
    # the digit never reaches the mark: removing it changes nothing else
    clean = planted.remove_mark(data.images)
    assert np.array_equal(clean[~data.marked], data.images[~data.marked])
    assert np.array_equal(planted.test_set().images, data.images)  # seeded


def test_training_sets_differ_only_in_where_the_marks_are():
    short = planted.training_set("shortcut", 600, seed=1)
    control = planted.training_set("control", 600, seed=1)
    assert np.array_equal(short.indices, control.indices)
    assert np.array_equal(planted.remove_mark(short.images), planted.remove_mark(control.images))
    assert short.marked.sum() == control.marked.sum() > 0
    own = short.labels == planted.MARKED_CLASS
    assert not short.marked[~own].any()  # the shortcut: marks on the marked class only
    assert short.marked[own].mean() == pytest.approx(planted.MARK_FRACTION, abs=0.02)
    assert control.marked[~own].any()  # the control: marks on every class


def test_the_shortcut_model_uses_the_mark_and_the_control_does_not():
    from sglrp.spray.train import load_model, weights_path

    data = planted.test_set()
    sel = data.marked
    drop = {}
    for kind in ("shortcut", "control"):
        model = load_model(kind)
        marked = model.predict(data.images[sel], verbose=0).argmax(1)
        removed = model.predict(planted.remove_mark(data.images[sel]), verbose=0).argmax(1)
        drop[kind] = np.mean(marked == 8) - np.mean(removed == 8)
        shipped = json.loads(weights_path(kind).with_name(f"{kind}.json").read_text())
        assert np.mean(removed == 8) == pytest.approx(shipped["marked_class_mark_removed"],
                                                      abs=0.01)
    assert drop["shortcut"] >= 0.2, drop
    assert abs(drop["control"]) <= 0.05, drop


# -- sglrp spray on an explain folder -----------------------------------------------------------

N_IMAGES = 12


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """An explain folder: 12 planted test images (6 marked), sglrp and grad_cam, class 8."""
    from sglrp.spray.train import weights_path

    root = tmp_path_factory.mktemp("spray")
    images = root / "images"
    images.mkdir()
    data = planted.test_set()
    pick = np.concatenate([np.flatnonzero(data.marked)[:6], np.flatnonzero(~data.marked)[:6]])
    for n, i in enumerate(pick):
        pixels = np.round(data.images[i, :, :, 0] * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(images / f"img_{n:02d}.png")
    out = root / "explain"
    code = cli_main(["explain", str(images), "--model", "demo", "--weights",
                     str(weights_path("shortcut")), "--method", "sglrp,grad_cam", "--target",
                     "8", "--format", "npy", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("spray"))
    return target


def test_spray_writes_every_image_once_and_a_report_naming_every_cluster(explained, tmp_path,
                                                                         capsys):
    out = copy(explained, tmp_path)
    assert cli_main(["spray", str(out), "--quiet"]) == 0
    document = json.loads((out / "spray" / "clusters.json").read_text())
    assert [g["name"] for g in document["groups"]] == ["grad_cam__8", "sglrp__8"]
    report = (out / "spray" / "report.html").read_text()
    for g in document["groups"]:
        names = [item["image"] for item in g["images"]]
        assert len(names) == len(set(names)) == N_IMAGES == g["n_maps"]
        assert g["k"] == len(g["clusters"]) >= 1 and g["k_from"] == "eigengap"
        assert sum(c["size"] for c in g["clusters"]) == N_IMAGES
        assert {item["cluster"] for item in g["images"]} == set(range(g["k"]))
        assert len(g["eigenvalues"]) >= g["k"] + 1 and g["eigenvalues"][0] == pytest.approx(0)
        assert all(len(item["xy"]) == 2 for item in g["images"])
        assert g["model"] == "demo" and g["target_id"] == 8 and g["errors"] == []
        for c in g["clusters"]:
            assert f"cluster {c['cluster']}: {c['size']} images" in report
        for figure in g["figures"].values():
            assert (out / "spray" / figure).stat().st_size > 1000
    assert "<script" not in report and "http" not in report  # self-contained, no network
    assert report.count("data:image/png;base64,") == 6
    assert "K = " in capsys.readouterr().out


def test_spray_selects_and_takes_k(explained, tmp_path):
    out = copy(explained, tmp_path)
    assert cli_main(["spray", str(out), "--method", "sglrp", "--clusters", "2", "--quiet",
                     "--embedding", "spectral"]) == 0
    (g,) = json.loads((out / "spray" / "clusters.json").read_text())["groups"]
    assert g["method"] == "sglrp" and g["k"] == 2 and g["k_from"] == "given"
    assert cli_main(["spray", str(out), "--target", "3", "--quiet"]) == 2


def test_a_corrupt_or_missing_map_is_reported_not_fatal(explained, tmp_path, capsys):
    out = copy(explained, tmp_path)
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    sglrp_files = [r["outputs"]["npy"] for r in records if r["method"] == "sglrp"]
    (out / sglrp_files[0]).write_bytes(b"not a numpy file")
    (out / sglrp_files[1]).unlink()
    assert cli_main(["spray", str(out), "--quiet", "--embedding", "spectral"]) == 1
    err = capsys.readouterr().err
    assert sglrp_files[0] in err and sglrp_files[1] in err
    groups = {g["method"]: g for g in
              json.loads((out / "spray" / "clusters.json").read_text())["groups"]}
    assert groups["sglrp"]["n_maps"] == N_IMAGES - 2
    assert {e["npy"] for e in groups["sglrp"]["errors"]} == set(sglrp_files[:2])
    assert groups["grad_cam"]["n_maps"] == N_IMAGES and groups["grad_cam"]["errors"] == []


def test_a_folder_without_manifest_or_npy_maps_is_a_clear_error(explained, tmp_path, capsys):
    assert cli_main(["spray", str(tmp_path)]) == 2
    assert "no manifest.jsonl" in capsys.readouterr().err
    png_only = tmp_path / "png"
    png_only.mkdir()
    lines = []
    for line in (explained / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        record["outputs"] = {"heatmap": "x.heatmap.png", "overlay": "x.overlay.png"}
        lines.append(json.dumps(record))
    (png_only / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    assert cli_main(["spray", str(png_only)]) == 2
    assert "no .npy relevance maps" in capsys.readouterr().err
    assert not (png_only / "spray").exists()


def test_records_are_grouped_by_model_weights_and_options(explained, tmp_path):
    """A second run with other options (--relu) in the same folder makes its own groups;
    unknown record fields are ignored."""
    from sglrp.spray.inputs import find_groups

    out = copy(explained, tmp_path)
    lines = []
    for line in (out / "manifest.jsonl").read_text().splitlines():
        record = json.loads(line)
        record["signature"]["options"] = {**record["signature"]["options"], "relu": True}
        record["preprocessing"] = "future field"
        lines.append(json.dumps(record))
    with open(out / "manifest.jsonl", "a") as f:
        f.write("\n".join(lines) + "\n")
    groups = find_groups(out)
    assert len(groups) == 4 and len({g.name for g in groups}) == 4
    assert all(len(g.records) == N_IMAGES for g in groups)


# -- the planted-shortcut evaluation ------------------------------------------------------------


@pytest.mark.slow
def test_demo_spray_on_the_planted_shortcut(tmp_path):
    """The numbers of the README's table (innvestigate engine; both engines give the same maps
    to 1e-4, so the same clusters are expected): guided backprop finds the shortcut, LRP and CLRP
    split marked from unmarked images on both models, SGLRP follows the mark on the shortcut
    model (homogeneity 0.711 measured: below the 0.8 aimed at) more than on the control."""
    from sglrp.spray.demo import run_spray_demo

    summary = run_spray_demo(tmp_path, log=lambda s: None)
    methods = summary["methods"]
    assert summary["n_images"] == 264 and summary["n_marked"] == 132
    assert methods["guided_backprop"]["finds_shortcut"]
    assert methods["guided_backprop"]["control"]["adjusted_rand_index"] < 0.1
    for name in ("lrp", "clrp"):
        for kind in ("shortcut", "control"):
            assert methods[name][kind]["adjusted_rand_index"] > 0.9, (name, kind)
        assert not methods[name]["finds_shortcut"]
    sglrp = methods["sglrp"]
    assert sglrp["shortcut"]["homogeneity"] > 0.65
    assert sglrp["shortcut"]["adjusted_rand_index"] > 0.5
    assert sglrp["shortcut"]["homogeneity"] > sglrp["control"]["homogeneity"] + 0.2
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(truth) == 264 and sum(truth.values()) == 132
    for kind in ("shortcut", "control"):
        document = json.loads((tmp_path / kind / "spray" / "clusters.json").read_text())
        assert len(document["groups"]) == 5
        for g in document["groups"]:
            assert g["k_from"] == "eigengap" and g["n_maps"] == 264
            assert g["scores"] == {k: v for k, v in methods[g["method"]][kind].items()
                                   if k != "k"}


def test_command_line_values_are_checked_before_any_work(tmp_path, capsys):
    from sglrp.cli import build_parser

    args = build_parser().parse_args(["demo", "--spray", "--out", str(tmp_path)])
    assert args.spray and args.run.__name__ == "_demo"
    for bad in (["--clusters", "0"], ["--target", "x"], ["--embedding", "pca"]):
        with pytest.raises(SystemExit) as stop:
            cli_main(["spray", str(tmp_path), *bad])
        assert stop.value.code == 2
    assert "--clusters: must be an integer >= 1" in capsys.readouterr().err
