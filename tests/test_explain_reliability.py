"""``sglrp explain`` keeps its word: resume keyed by what a map is computed from, concurrent
runs into one folder, interruptions, a full disk, file modes, arguments checked before any work.

The real command runs in child processes on the demo model (children that do not depend on each
other run side by side); signals are real signals to a child, and a full disk is a real small
tmpfs (where the tests may mount one) and a real file size limit (``RLIMIT_FSIZE``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from sglrp import explain
from sglrp.cli import main as cli_main
from sglrp.explain import outputs, signature
from sglrp.registry import create_analyzer

MANY = 24  # images of the runs that are interrupted


def start(*args, cwd, umask=None, fsize=None):
    """Start ``sglrp explain`` in a child process, with its own umask or file size limit."""

    def setup():
        if umask is not None:
            os.umask(umask)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    cmd = [sys.executable, "-m", "sglrp.cli", "explain", *map(str, args)]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=setup)


def finish(proc):
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def manifest(out):
    """The manifest's records; fails unless every line is one complete JSON object."""
    text = (out / "manifest.jsonl").read_text(encoding="utf8")
    assert text == "" or text.endswith("\n"), "the last line is cut off"
    return [json.loads(line) for line in text.splitlines()]


def count_lines(path) -> int:
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def summary(stderr):
    """(word, ok, skipped, failed) of the summary line, which must be the last line."""
    last = stderr.strip().splitlines()[-1]
    m = re.match(r"(done|stopped): (\d+) ok, (\d+) skipped, (\d+) failed", last)
    assert m, f"no summary at the end of stderr:\n{stderr}"
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


def assert_outputs_complete(out, records):
    for r in records:
        if r["status"] in ("ok", "skipped"):
            for name in r["outputs"].values():
                assert (out / name).is_file(), name
            if "npy" in r["outputs"]:
                assert np.load(out / r["outputs"]["npy"]).shape == (32, 32, 1)


def noise(path, shape, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(path)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two different photos named same.png, two non-Latin stems, and a folder of many."""
    root = tmp_path_factory.mktemp("inputs")
    for sub in ("a", "b", "many"):
        (root / sub).mkdir()
    noise(root / "a" / "same.png", (20, 20, 3), 1)
    noise(root / "b" / "same.png", (24, 24, 3), 2)
    noise(root / "名前.png", (20, 20, 3), 3)
    noise(root / "日本.png", (20, 20, 3), 4)
    for i in range(MANY):
        noise(root / "many" / f"{i:02d}.png", (12, 12), 100 + i)
    return root


# -- 1. resume keyed by the run signature; 8. file modes ------------------------------------------
FIRST = ["a/same.png", "名前.png", "日本.png"]
DEMO = ["--model", "demo", "--method", "sglrp"]


@pytest.fixture(scope="module")
def resume(root, tmp_path_factory):
    """A first run (umask 022), then two runs on copies of its folder, side by side: another
    image of the same name (umask 027), the same image with --relu. (The same settings again:
    :func:`test_killed_run_keeps_its_records_and_resumes`.)"""
    base = tmp_path_factory.mktemp("resume")
    first = base / "first"
    proc = finish(start(*FIRST, *DEMO, "--out", first, cwd=root, umask=0o022))
    assert proc.returncode == 0, proc.stderr
    before = {p.name: p.read_bytes() for p in first.iterdir() if p.name != "manifest.jsonl"}
    for name in ("other", "relu"):
        shutil.copytree(first, base / name)
    procs = {
        "other": start("b/same.png", *DEMO, "--out", base / "other", cwd=root, umask=0o027),
        "relu": start("a/same.png", *DEMO, "--relu", "--out", base / "relu", cwd=root),
    }
    runs = {k: (base / k, finish(p)) for k, p in procs.items()}
    return (first, proc), runs, before


def first_records(resume):
    (first, _), _, _ = resume
    return {r["image"]: r for r in manifest(first)}


def test_signature_is_recorded_and_non_latin_stems_stay_apart(root, resume):
    records = first_records(resume)
    assert list(records) == FIRST  # the paths as given
    keys = [r["key"] for r in records.values()]
    assert len(set(keys)) == 3
    assert keys[1].startswith("名前__sglrp__auto__") and keys[2].startswith("日本__sglrp__auto__")
    sig = records["a/same.png"]["signature"]
    content = hashlib.sha256((root / "a" / "same.png").read_bytes()).hexdigest()
    assert sig["input"] == f"sha256:{content}"
    assert sig["model"] == "demo" and sig["weights"].startswith("sha256:")
    assert sig["method"] == "sglrp" and sig["target"] == "auto"
    assert sig["options"] == {"relu": False, "low": 0.0, "high": 1.0}
    assert keys[0].endswith("__" + signature.digest(sig))


def test_another_image_with_the_same_name_is_computed(root, resume):
    """Issue 11.1: b/same.png after a/same.png was "0 ok, 1 skipped" with a's map."""
    (first, _), runs, before = resume
    out, proc = runs["other"]
    assert proc.returncode == 0, proc.stderr
    assert summary(proc.stderr) == ("done", 1, 0, 0)
    new = manifest(out)[-1]
    assert new["image"] == "b/same.png" and new["status"] == "ok"
    assert new["key"] != first_records(resume)["a/same.png"]["key"]
    info = explain.load_model_info("demo")
    x = explain.load_input(root / "b" / "same.png", info)[None]
    with create_analyzer("sglrp", info.model, low=info.low, high=info.high) as analyzer:
        expected = analyzer.analyze(x)[0]
    np.testing.assert_allclose(np.load(out / new["outputs"]["npy"]), expected, rtol=1e-5,
                               atol=1e-6)
    for name, data in before.items():  # a's outputs are still a's
        assert (out / name).read_bytes() == data, name


def test_other_options_are_computed_under_their_own_name(resume):
    """Issue 11.1: a second run with --relu was "skipped" and kept the negative values."""
    _, runs, before = resume
    out, proc = runs["relu"]
    assert proc.returncode == 0, proc.stderr
    assert summary(proc.stderr) == ("done", 1, 0, 0)
    new, old = manifest(out)[-1], first_records(resume)["a/same.png"]
    assert new["signature"]["options"]["relu"] is True and new["key"] != old["key"]
    assert np.load(out / new["outputs"]["npy"]).min() >= 0
    assert np.load(out / old["outputs"]["npy"]).min() < 0  # the first map is still there


def test_outputs_follow_the_umask(resume):
    """Issue 11.8: outputs were 0600 whatever the umask."""
    (first, _), runs, before = resume
    for path in first.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name
    out, _ = runs["other"]
    new = [p for p in out.iterdir() if p.name not in before and p.name != "manifest.jsonl"]
    assert len(new) == 3 and all(p.stat().st_mode & 0o777 == 0o640 for p in new)


def test_atomic_write_follows_the_umask(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace

    def replace(src, dst):
        replaced.append((os.stat(src).st_mode & 0o777, os.path.basename(src), dst))
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    old = os.umask(0o002)
    try:
        outputs.save_npy(tmp_path / "x.npy", np.ones(3))
    finally:
        os.umask(old)
    (mode, tmp, dst), = replaced
    assert mode == 0o664 and tmp.startswith(".x.npy.") and tmp.endswith(".tmp")
    assert os.stat(dst).st_mode & 0o777 == 0o664 and list(tmp_path.iterdir()) == [dst]


def test_signature_covers_every_setting(tmp_path):
    model, weights = tmp_path / "m.keras", tmp_path / "w.h5"
    model.write_bytes(b"model")
    weights.write_bytes(b"weights")
    copy = tmp_path / "copy.keras"
    shutil.copy(model, copy)
    ident = signature.model_identity(str(model))
    assert ident == signature.model_identity(str(copy))  # by content, not by path
    assert ident != signature.model_identity(str(model), str(weights))
    assert signature.model_identity("vgg16") == {"model": "vgg16", "weights": "imagenet"}
    assert signature.model_identity("vgg16", str(weights))["weights"].startswith("sha256:")
    assert signature.model_identity("demo") != signature.model_identity("demo", str(weights))
    model.write_bytes(b"model, trained further")
    assert signature.model_identity(str(model)) != ident

    def digest(identity=None, method="sglrp", target="auto", content="sha256:1", **options):
        options = {"relu": False, "low": 0.0, "high": 1.0, **options}
        sig = signature.method_signature(identity or ident, method, options)
        return signature.digest(signature.map_signature(sig, target, content))

    variants = [digest(), digest(relu=True), digest(low=-1.0), digest(high=2.0),
                digest(method="clrp"), digest(target=3), digest(content="sha256:2"),
                digest(identity={"model": "demo", "weights": "sha256:1"})]
    assert len(set(variants)) == len(variants)
    assert digest() == digest()


def test_resume_needs_equal_signature_files_and_top_k(tmp_path):
    sig = {"method": "sglrp", "target": "auto", "input": "sha256:1"}
    record = explain.manifest.make_record(
        key="x__sglrp__auto__d", image="x.png", model="demo", method="sglrp", target="auto",
        status="ok", signature=sig, outputs=outputs.output_files("x__sglrp__auto__d", ["npy"]),
        target_id=3, top=([3, 1], [0.6, 0.3]))
    np.save(tmp_path / "x__sglrp__auto__d.npy", np.zeros(3, np.float32))
    resume = explain.Resume([record], tmp_path, ["npy"], top_k=2)
    assert resume.may_have("x", "sglrp", "auto") and not resume.may_have("x", "lrp", "auto")
    assert resume.find("x__sglrp__auto__d", sig) == record
    assert resume.find("x__sglrp__auto__d", {**sig, "input": "sha256:2"}) is None
    assert explain.Resume([record], tmp_path, ["npy", "png"], 2).find("x__sglrp__auto__d",
                                                                     sig) is None
    assert explain.Resume([record], tmp_path, ["npy"], 3).find("x__sglrp__auto__d", sig) is None
    failed = {**record, "status": "error"}
    assert explain.Resume([record, failed], tmp_path, ["npy"], 2).find(
        "x__sglrp__auto__d", sig) == record  # an error record does not undo finished files
    unsigned = {k: v for k, v in record.items() if k != "signature"}  # an older manifest
    assert explain.Resume([unsigned], tmp_path, ["npy"], 2).find("x__sglrp__auto__d",
                                                                 sig) is None


def _explain_here(capsys, *args):
    code = cli_main(["explain", *map(str, args), "--quiet"])
    return code, summary(capsys.readouterr().err)


@pytest.fixture
def four(root, tmp_path, capsys):
    """A finished run of four images (npy and png), and its records by image."""
    out = tmp_path / "out"
    images = [root / "many" / f"{i:02d}.png" for i in range(4)]
    args = [*images, "--model", "demo", "--method", "lrp.epsilon", "--out", out]
    code, counts = _explain_here(capsys, *args)
    assert code == 0 and counts == ("done", 4, 0, 0)
    return out, args, {r["image"]: r for r in manifest(out)}, images


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_records_hold_each_output_size_and_sha256(four):
    out, _, records, _ = four
    for record in records.values():
        assert set(record["output_bytes"]) == set(record["output_sha256"]) == {
            "npy", "heatmap", "overlay"}
        for kind, name in record["outputs"].items():
            data = (out / name).read_bytes()
            assert record["output_bytes"][kind] == len(data)
            assert record["output_sha256"][kind] == f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_resume_computes_changed_outputs_again(four, capsys):
    """Issue 18.8: an output changed or cut short from outside was reused as skipped."""
    out, args, records, images = four
    rows = [records[str(p)] for p in images]
    saved = {r["key"]: np.load(out / r["outputs"]["npy"]) for r in rows}
    _flip_last_byte(out / rows[0]["outputs"]["npy"])  # same size, other content
    npy = out / rows[1]["outputs"]["npy"]
    npy.write_bytes(npy.read_bytes()[:-8])  # truncated
    _flip_last_byte(out / rows[2]["outputs"]["heatmap"])
    code, counts = _explain_here(capsys, *args)
    assert code == 0 and counts == ("done", 3, 1, 0)
    new = manifest(out)[4:]
    assert {r["image"]: r["status"] for r in new} == {
        str(images[0]): "ok", str(images[1]): "ok", str(images[2]): "ok",
        str(images[3]): "skipped"}
    for r in new:
        np.testing.assert_allclose(np.load(out / r["outputs"]["npy"]), saved[r["key"]],
                                   rtol=1e-5, atol=1e-7)
        assert r["output_sha256"] == records[r["image"]]["output_sha256"] or r["status"] == "ok"
        for kind, name in r["outputs"].items():  # the skipped record carries them over
            data = (out / name).read_bytes()
            assert r["output_sha256"][kind] == f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_verify_size_reads_sizes_only(four, capsys):
    out, args, records, images = four
    rows = [records[str(p)] for p in images]
    _flip_last_byte(out / rows[0]["outputs"]["npy"])  # not seen by the sizes
    npy = out / rows[1]["outputs"]["npy"]
    npy.write_bytes(npy.read_bytes()[:-8])
    code, counts = _explain_here(capsys, *args, "--verify", "size")
    assert code == 0 and counts == ("done", 1, 3, 0)
    statuses = {r["image"]: r["status"] for r in manifest(out)[4:]}
    assert [statuses[str(p)] for p in images] == ["skipped", "ok", "skipped", "skipped"]


def test_records_without_sizes_are_checked_by_the_npy_header(four, capsys):
    out, args, records, images = four
    old = [{k: v for k, v in r.items() if k not in ("output_bytes", "output_sha256")}
           for r in records.values()]  # as an earlier version wrote them
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    rows = [records[str(p)] for p in images]
    npy = out / rows[1]["outputs"]["npy"]
    npy.write_bytes(npy.read_bytes()[:-8])  # truncated: the header says more
    np.save(out / rows[2]["outputs"]["npy"], np.zeros((32, 32, 3), np.float32))  # wrong shape
    code, counts = _explain_here(capsys, *args)
    assert code == 0 and counts == ("done", 2, 2, 0)
    statuses = {r["image"]: r["status"] for r in manifest(out)[4:]}
    assert [statuses[str(p)] for p in images] == ["skipped", "ok", "ok", "skipped"]
    assert outputs.npy_intact(out / rows[0]["outputs"]["npy"], (32, 32, 1))
    assert not outputs.npy_intact(out / rows[0]["outputs"]["npy"], (32, 32, 3))


# -- 5. two runs into one --out -------------------------------------------------------------------
def test_two_concurrent_runs_keep_every_record(root, tmp_path):
    """Issue 11.5: both wrote manifest.jsonl.part, lines interleaved, one run crashed."""
    out = tmp_path / "shared"
    images = [f"many/{i:02d}.png" for i in range(16)]
    common = [*images, "--model", "demo", "--method", "lrp.epsilon", "--target", "auto,3",
              "--batch-size", "1", "--format", "npy", "--quiet", "--out", out]
    procs = [start(*common, "--top-k", str(k), cwd=root) for k in (3, 4)]
    results = [finish(p) for p in procs]
    records = manifest(out)
    for k, proc in zip((3, 4), results):
        assert proc.returncode == 0, proc.stderr
        word, ok, skipped, failed = summary(proc.stderr)
        assert word == "done" and ok + skipped == 32 and failed == 0
        mine = [r for r in records if len(r["top_k_ids"]) == k]  # --top-k tells the runs apart
        assert len(mine) == 32 and {r["status"] for r in mine} <= {"ok", "skipped"}
        assert sorted((r["image"], str(r["target"])) for r in mine) == sorted(
            (i, t) for i in images for t in ("auto", "3"))
    assert len(records) == 64
    assert_outputs_complete(out, records)
    assert not list(out.glob("*.part"))


def test_append_cuts_back_a_line_that_could_not_be_written(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(b'{"image": "old", "status": "ok"}\n{"image": "cut off')
    with explain.ManifestWriter(path) as writer:
        writer.append({"image": "new", "status": "ok"})
    assert [r["image"] for r in explain.read_manifest(path)] == ["old", "new"]
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    size = path.stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, old[1]))  # the next line stops short
    try:
        with explain.ManifestWriter(path) as writer, pytest.raises(OSError) as err:
            writer.append({"image": "x" * 100, "status": "ok"})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
    assert outputs.is_disk_full(err.value) and str(path) in str(err.value)
    assert path.stat().st_size == size


def test_latest_record_per_image_method_and_target_wins():
    rows = [{"image": "x", "method": "sglrp", "target": "auto", "status": "ok", "n": 1},
            {"image": "x", "method": "lrp", "target": "auto", "status": "ok", "n": 2},
            {"image": "x", "method": "sglrp", "target": 3, "status": "ok", "n": 3},
            {"image": "x", "method": "sglrp", "target": "auto", "status": "skipped", "n": 4}]
    latest = explain.latest(rows)
    assert [r["n"] for r in latest.values()] == [4, 2, 3]
    assert latest["x", "sglrp", "auto"]["status"] == "skipped"


# -- 6, 7. interruptions --------------------------------------------------------------------------
INTERRUPTED = ["many", "--model", "demo", "--method", "sglrp", "--batch-size", "1", "--quiet"]


@pytest.fixture(scope="module")
def interrupted(root, tmp_path_factory):
    """SIGINT, SIGTERM, SIGKILL to three runs once each has written 3 records; then the
    SIGKILLed run's command again."""
    base = tmp_path_factory.mktemp("interrupted")
    sigs = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
    procs = {name: start(*INTERRUPTED, "--out", base / name, cwd=root) for name in sigs}
    waiting, deadline = set(sigs), time.monotonic() + 300
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            if count_lines(base / name / "manifest.jsonl") >= 3 or procs[name].poll() is not None:
                procs[name].send_signal(sigs[name])
                waiting.discard(name)
        time.sleep(0.02)
    results = {name: (base / name, finish(p)) for name, p in procs.items()}
    killed = base / "SIGKILL"
    before = (killed / "manifest.jsonl").read_bytes()
    resumed = start(*INTERRUPTED, "--format", "npy", "--top-k", "3", "--out", killed, cwd=root)
    results["resumed"] = (killed, finish(resumed))
    return results, before


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_ends_with_one_line_and_the_summary(interrupted, name, code):
    """Issue 11.6, 11.7: a traceback, no manifest.jsonl (only .part), exit code 1."""
    out, proc = interrupted[0][name]
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-2].startswith(f"sglrp explain: interrupted ({name}); finished maps are "
                                "recorded in")
    word, ok, skipped, failed = summary(proc.stderr)
    records = manifest(out)
    assert (word, ok, skipped, failed) == ("stopped", len(records), 0, 0), proc.stderr
    assert ok >= 3, proc.stderr
    assert f"{MANY - ok} not done" in lines[-1]
    assert_outputs_complete(out, records)
    assert not list(out.glob("*.part"))


def test_killed_run_keeps_its_records_and_resumes(interrupted):
    """Issue 11.6: after SIGKILL the next run called the finished work "skipped" without its
    target_id and top_k_*, and replaced the manifest. Issue 11.1: the same settings (the
    formats and --top-k do not change the maps) reuse what was finished."""
    (out, killed), before = interrupted[0]["SIGKILL"], interrupted[1]
    assert killed.returncode == -signal.SIGKILL
    done = [json.loads(line) for line in before.decode().splitlines()]
    assert len(done) >= 3 and {r["status"] for r in done} == {"ok"}
    out, proc = interrupted[0]["resumed"]
    assert proc.returncode == 0, proc.stderr
    assert summary(proc.stderr) == ("done", MANY - len(done), len(done), 0)
    assert (out / "manifest.jsonl").read_bytes().startswith(before)  # kept as it was
    records = manifest(out)
    by_image = {r["image"]: r for r in records[len(done):]}
    for old in done:
        new = by_image[old["image"]]
        assert new["status"] == "skipped" and new["key"] == old["key"]
        assert new["signature"] == old["signature"]
        for field in ("target_id", "target_name"):
            assert new[field] == old[field] is not None, field
        for field in ("top_k_ids", "top_k_names", "top_k_probs"):
            assert new[field] == old[field][:3], field
        assert new["outputs"] == {"npy": old["outputs"]["npy"]}
    latest = explain.latest(records)
    assert len(latest) == MANY and {r["status"] for r in latest.values()} <= {"ok", "skipped"}
    assert_outputs_complete(out, records)


# -- 7. a full disk -------------------------------------------------------------------------------
def mount_small_tmpfs(path) -> str | None:
    """Mount a 64 KiB tmpfs on ``path`` (root only); the reason if that is not possible."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting a tmpfs needs root"
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                             capture_output=True, text=True)
    return None if mounted.returncode == 0 else f"cannot mount a tmpfs: {mounted.stderr.strip()}"


@pytest.fixture(scope="module")
def full_disk(root, tmp_path_factory):
    """Side by side: a run into a full 64 KiB tmpfs (ENOSPC, where it can be mounted) and a run
    under a file size limit of 8000 bytes (EFBIG: the maps fit, the manifest does not)."""
    base = tmp_path_factory.mktemp("full")
    (base / "tmpfs").mkdir()
    why_not = mount_small_tmpfs(base / "tmpfs")
    try:
        procs = {"EFBIG": start(*INTERRUPTED, "--out", base / "limited", cwd=root, fsize=8000)}
        if why_not is None:
            procs["ENOSPC"] = start(*INTERRUPTED, "--out", base / "tmpfs" / "out", cwd=root)
        results = {k: finish(p) for k, p in procs.items()}
        # read what the tests need before the tmpfs goes
        outs = {"EFBIG": base / "limited", "ENOSPC": base / "tmpfs" / "out"}
        return {k: (outs[k], proc, check_full_disk_stop(outs[k], proc, k),
                    (outs[k] / "manifest.jsonl").stat().st_size) for k, proc in results.items()
                }, why_not
    finally:
        if why_not is None:
            subprocess.run(["umount", str(base / "tmpfs")], check=False)


def check_full_disk_stop(out, proc, name):
    """The checks shared by both runs; returns the manifest's records."""
    reason = {"ENOSPC": "No space left on device (ENOSPC)", "EFBIG": "File too large (EFBIG)"}
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-2].startswith("sglrp explain: error: cannot write "), proc.stderr
    assert reason[name] in lines[-2], proc.stderr
    word, ok, skipped, failed = summary(proc.stderr)
    records = manifest(out)
    assert word == "stopped" and (ok, skipped, failed) == (len(records), 0, 0)
    assert_outputs_complete(out, records)
    assert not list(out.glob(".*.tmp"))  # temporary files of the failed write are removed
    return records


def test_full_disk_stops_cleanly(full_disk):
    """Issue 11.7 with ENOSPC: a real 64 KiB tmpfs fills up (a traceback before)."""
    results, why_not = full_disk
    if why_not is not None:
        pytest.skip(why_not)
    _, _, records, _ = results["ENOSPC"]
    assert 1 <= len(records) < MANY


def test_file_size_limit_stops_cleanly(full_disk):
    """Issue 11.7 with EFBIG: ``ulimit -f`` lets the maps through but stops the manifest, whose
    last line is cut back instead of cut off."""
    _, _, records, size = full_disk[0]["EFBIG"]
    assert 1 <= len(records) < MANY and size <= 8000


# -- 12. arguments checked before any work ------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-megapixels", "0", "must be a finite number > 0, got '0'"),
        ("--max-megapixels", "-1", "must be a finite number > 0, got '-1'"),
        ("--max-megapixels", "nan", "must be a finite number > 0, got 'nan'"),
        ("--high", "inf", "must be a finite number, got 'inf'"),
        ("--low", "nan", "must be a finite number, got 'nan'"),
        ("--out", "", "must name a folder, got ''"),
        ("--batch-size", "0", "must be an integer >= 1, got '0'"),
        ("--top-k", "-2", "must be an integer >= 1, got '-2'"),
    ],
)
def test_explain_arguments_are_checked_first(root, tmp_path, capsys, option, value, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_:
        cli_main(["explain", str(root / "名前.png"), "--model", "demo", "--out", str(out),
                  option, value])
    assert exit_.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err
    assert not out.exists()


def test_bounds_are_checked_before_the_model_loads(root, tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(explain.cli, "load_model_info", no_model)
    code = cli_main(["explain", str(root / "名前.png"), "--model", "demo", "--low", "1",
                     "--high", "0", "--out", str(tmp_path / "never")])
    assert code == 2 and "--low must be below --high, got 1.0 and 0.0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "名前.png", "--model", "demo", "--out", "FILE"],
        ["demo", "--out", "FILE"],
        ["bench-discrimination", "--out", "FILE"],
    ],
)
def test_out_must_not_be_a_file(root, tmp_path, capsys, argv):
    file = tmp_path / "a file"
    file.write_text("keep me\n")
    argv = [str(file) if a == "FILE" else str(root / a) if a.endswith(".png") else a
            for a in argv]
    with pytest.raises(SystemExit) as exit_:
        cli_main(argv)
    assert exit_.value.code == 2
    assert f"argument --out: must name a folder, got {str(file)!r}, an existing file" in \
        capsys.readouterr().err
    assert file.read_text() == "keep me\n"


@pytest.mark.parametrize("command", ["bench-discrimination", "demo"])
def test_scenes_must_be_positive(tmp_path, capsys, command):
    with pytest.raises(SystemExit) as exit_:
        cli_main([command, "--scenes", "0", "--out", str(tmp_path / "never")])
    assert exit_.value.code == 2
    assert "argument --scenes: must be an integer >= 1, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
