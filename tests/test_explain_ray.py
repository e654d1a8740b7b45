"""``sglrp explain --ray`` and :mod:`sglrp.distributed` on a local Ray instance (2 CPUs, no
dashboard), against the single-process run on the demo model.

41 images (40 good, one broken) x 2 methods x 2 targets. The single-process run and the Ray
run with 2 workers go side by side in child processes; one worker of the Ray run is killed
(SIGKILL by its pid) once the run has recorded its first maps. The Ray run must give the same
maps, records, error lines, exit code and summary, every record once; running it again
resumes. The executor, the workers and the run's executor hook are also tested in this
process without a cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("ray")

from sglrp.cli import main as cli_main  # noqa: E402
from sglrp.explain import loop, ray_runner  # noqa: E402
from sglrp.explain.model import load_model_info  # noqa: E402
from sglrp.explain.signature import model_identity  # noqa: E402

METHODS = "sglrp,lrp.epsilon"
TARGETS = "auto,3"
N_GOOD = 40
RECORDS = (N_GOOD + 1) * 2 * 2  # every image x method x target, the broken file's included
WORKER_TITLE = "MapWorker(MapBatches(ExplainWorker))"


def start(*args, cwd):
    cmd = [sys.executable, "-m", "sglrp.cli", "explain", *map(str, args)]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc):
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def manifest(out) -> list[dict]:
    path = Path(out) / "manifest.jsonl"
    if not path.exists():
        return []
    text = path.read_text(encoding="utf8")
    assert text == "" or text.endswith("\n"), "the last line is cut off"
    return [json.loads(line) for line in text.splitlines()]


def by_map(records) -> dict:
    """(image, method, target) -> record; fails if one is there twice."""
    out = {}
    for record in records:
        key = (record["image"], record["method"], record["target"])
        assert key not in out, f"recorded twice: {key}"
        out[key] = record
    return out


def visible(folder) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith("."))


def errors(stderr: str) -> list[str]:
    return sorted(line for line in stderr.splitlines() if line.startswith("error:"))


def summary(stderr: str) -> str:
    """The last line without its peak RSS (which differs between processes)."""
    line = stderr.strip().splitlines()[-1]
    return line.split(", peak RSS")[0]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def ray_workers(pid: int) -> list[int]:
    return [p for p in descendants(pid) if title(p).startswith(f"ray::{WORKER_TITLE}")]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_inputs")
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(N_GOOD):
        if i % 4 == 0:  # some colour images of other sizes
            pixels = rng.integers(0, 256, (28 + i % 9, 36, 3), np.uint8)
        else:
            pixels = rng.integers(0, 256, (32, 32), np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:02d}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture(scope="module")
def runs(images):
    """The single-process run and the Ray run (one worker killed) side by side, then the Ray
    run again into the same folder."""
    common = ["images", "--model", "demo", "--method", METHODS, "--target", TARGETS,
              "--batch-size", "4", "--quiet"]
    single = start(*common, "--out", "single", cwd=images)
    distributed = start(*common, "--out", "ray", "--ray", "--workers", "2", cwd=images)
    killed, seen, records_then = None, set(), None
    deadline = time.monotonic() + 400
    while distributed.poll() is None and time.monotonic() < deadline:
        workers = ray_workers(distributed.pid)
        seen.update(workers)
        if killed is None and workers:
            done = len(manifest(images / "ray"))
            if done:  # the workers are at work: kill one
                killed, records_then = workers[0], done
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    result = {"single": finish(single), "ray": finish(distributed), "killed": killed,
              "records_then": records_then, "workers_seen": seen,
              "ray_records": manifest(images / "ray")}
    result["again"] = finish(start(*common, "--out", "ray", "--ray", "--workers", "2",
                                   cwd=images))
    return result


@pytest.mark.slow
def test_ray_run_equals_the_single_process_run(images, runs):
    single, ray = runs["single"], runs["ray"]
    assert single.returncode == ray.returncode == 1, ray.stderr  # the broken file
    assert summary(ray.stderr) == summary(single.stderr) == \
        f"done: {N_GOOD * 4} ok, 0 skipped, 4 failed"
    expected = by_map(manifest(images / "single"))
    got = by_map(runs["ray_records"])
    assert got.keys() == expected.keys() and len(got) == RECORDS
    # The maps agree to float32 rounding (below), so the bytes of a .npy may differ.
    differ = {"output_sha256"}
    for key, record in expected.items():
        # names, signature, target, top-k, status, error, file sizes
        assert {k: v for k, v in got[key].items() if k not in differ} == \
            {k: v for k, v in record.items() if k not in differ}, key
    names = visible(images / "single")
    assert visible(images / "ray") == names
    worst = 0.0
    for name in names:
        if name.endswith(".npy"):
            a, b = np.load(images / "single" / name), np.load(images / "ray" / name)
            scale = float(np.abs(a).max()) or 1.0
            worst = max(worst, float(np.abs(a - b).max()) / scale)
    assert worst <= 1e-5


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_records_nothing_twice(images, runs):
    killed = runs["killed"]
    assert killed is not None, "no worker was found to kill"
    assert 0 < runs["records_then"] < RECORDS  # killed mid-run
    assert len(runs["workers_seen"] - {killed}) >= 2  # the other one and the restarted one
    records = runs["ray_records"]
    assert len(records) == RECORDS and len(by_map(records)) == RECORDS
    for record in records:
        for name in record["outputs"].values():
            assert (images / "ray" / name).is_file()
    # The killed worker may have left the temporary file it was writing (hidden, never read),
    # as a killed single-process run does.
    for path in (images / "ray").glob(".*"):
        assert path.name.endswith(".tmp") and path.name[1:].split(".")[0].startswith("img")


@pytest.mark.slow
def test_a_bad_file_is_reported_as_in_the_single_process_run(images, runs):
    lines = errors(runs["ray"].stderr)
    assert lines == errors(runs["single"].stderr)
    assert lines == ["error: images/broken.png: not an image (or an unsupported format)"]


@pytest.mark.slow
def test_running_again_resumes(images, runs):
    again = runs["again"]
    assert again.returncode == 1, again.stderr
    assert summary(again.stderr) == f"done: 0 ok, {N_GOOD * 4} skipped, 4 failed"
    assert errors(again.stderr) == errors(runs["single"].stderr)
    records = manifest(images / "ray")[RECORDS:]
    assert len(by_map(records)) == RECORDS
    assert {r["status"] for r in records if r["image"] != "images/broken.png"} == {"skipped"}


@pytest.mark.parametrize("value", ["images/", "host:port", "ray://head"])
def test_ray_address_is_checked_while_parsing(tmp_path, capsys, value):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_:
        cli_main(["explain", "--ray", value, "a.png", "--model", "demo", "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --ray: must be a Ray address (host:port, ray://host:port, auto or " \
        f"local), got {value!r}; put --ray after the inputs, or write --ray=ADDRESS" in err
    assert not out.exists()


def test_ray_addresses_taken():
    from sglrp.explain.cli import ray_address

    for good in ("", "local", "auto", "10.0.0.1:6379", "head:6379", "ray://head:10001"):
        assert ray_address(good) == good


def test_an_address_where_nothing_answers_is_refused(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "never"
    code = cli_main(["explain", str(tmp_path / "a.png"), "--model", "demo", "--out", str(out),
                     f"--ray=127.0.0.1:{port}"])
    assert code == 2
    assert f"error: cannot connect to Ray at '127.0.0.1:{port}': nothing answers there" in \
        capsys.readouterr().err
    assert not out.exists()


def test_workers_need_ray(tmp_path, capsys):
    out = tmp_path / "never"
    code = cli_main(["explain", str(tmp_path / "a.png"), "--model", "demo", "--out", str(out),
                     "--workers", "2"])
    assert code == 2
    assert "sglrp explain: error: --workers needs --ray" in capsys.readouterr().err
    assert not out.exists()


# -- without a cluster: jobs and results as data, the worker, the executor, the hook ----------
@pytest.fixture(scope="module")
def demo():
    return load_model_info("demo")


def jobs_of(images, demo, out):
    """The jobs of a run of 6 images (the broken one among them), 2 methods, 3 per batch."""
    paths = sorted(str(p) for p in (images / "images").iterdir())[:6]
    run = loop.Run(info=demo, identity=model_identity("demo"), images=paths,
                   methods=["sglrp", "lrp.epsilon"], targets=["auto", 3], formats=("npy",),
                   out=out, batch_size=3)
    try:
        return run.plan("sglrp") + run.plan("lrp.epsilon")
    finally:
        run.close()


def test_jobs_and_results_travel_as_json(images, demo, tmp_path):
    job = jobs_of(images, demo, tmp_path)[0]
    assert ray_runner.job_from_json(ray_runner.job_to_json(job)) == job
    result = loop.failed_batch(job, demo, "boom")
    result.stop = (28, "No space left on device", "x")
    back = ray_runner.result_from_json(ray_runner.result_to_json(result))
    assert back == result


def test_worker_equals_explain_batch_and_keeps_one_analyzer(images, demo, tmp_path):
    jobs = jobs_of(images, demo, tmp_path)
    worker = ray_runner.ExplainWorker(ray_runner.ModelSpec("demo"), ray_runner.sglrp_version())
    try:
        out = worker({"index": np.arange(len(jobs)),
                      "job": np.asarray([ray_runner.job_to_json(j) for j in jobs], object)})
        assert list(out["index"]) == list(range(len(jobs)))
        live = [a for a in worker._analyzers.values() if not isinstance(a, str)]
        assert len(live) == 1  # the last method's; the other was closed
        for job, text in zip(jobs, out["result"]):
            result = ray_runner.result_from_json(text)
            analyzer = loop.create_method_analyzer(job.method, demo, job.signature["options"])
            try:
                expected = loop.explain_batch(job, analyzer, demo)
            finally:
                analyzer.close()
            assert result.records == expected.records and result.error is None
    finally:
        worker.close()


def test_worker_fails_the_batches_of_a_method_it_cannot_create(images, demo, tmp_path,
                                                                monkeypatch):
    tried = []

    def refuse(method, info, options):
        tried.append(method)
        raise ValueError("layer x is not supported")

    monkeypatch.setattr(ray_runner, "create_method_analyzer", refuse)
    jobs = jobs_of(images, demo, tmp_path)
    worker = ray_runner.ExplainWorker(ray_runner.ModelSpec("demo"), ray_runner.sglrp_version())
    out = worker({"index": np.arange(len(jobs)),
                  "job": np.asarray([ray_runner.job_to_json(j) for j in jobs], object)})
    results = [ray_runner.result_from_json(t) for t in out["result"]]
    assert [r.error for r in results] == ["cannot create sglrp: layer x is not supported"] * 2 \
        + ["cannot create lrp.epsilon: layer x is not supported"] * 2
    assert all(r["status"] == "error" for res in results for r in res.records)
    assert tried == ["sglrp", "lrp.epsilon"]  # tried once per method


def test_worker_refuses_another_version():
    with pytest.raises(RuntimeError, match="install the same on every node"):
        ray_runner.ExplainWorker(ray_runner.ModelSpec("demo"), ("0.0.0", "other"))


def test_executor_records_each_job_once_and_fails_the_lost_ones(images, demo, tmp_path,
                                                               monkeypatch):
    jobs = jobs_of(images, demo, tmp_path)
    results = [loop.failed_batch(job, demo, f"fake {i}") for i, job in enumerate(jobs)]

    class Finished:  # what Ray Data gives back: job 1 twice (run again), job 2 never
        def iter_batches(self, **kwargs):
            order = [3, 1, 0, 1]
            yield {"index": np.asarray(order),
                   "result": np.asarray([ray_runner.result_to_json(results[i]) for i in order],
                                        object)}

    executor = ray_runner.RayExecutor(ray_runner.ModelSpec("demo"), demo, workers=2,
                                      resources={"num_cpus": 1, "num_gpus": 0})
    monkeypatch.setattr(executor, "dataset", lambda jobs: Finished())
    got = list(executor(jobs))
    assert [jobs.index(job) for job, _ in got] == [3, 1, 0, 2]
    assert [r.error for _, r in got[:3]] == ["fake 3", "fake 1", "fake 0"]
    lost = got[3][1]
    assert lost.error.startswith(f"a worker died {ray_runner.TASK_RETRIES + 1} times")
    assert {r["status"] for r in lost.records} == {"error"}
    assert len(lost.records) == len(jobs[2].images) * len(jobs[2].targets)


def test_run_hands_every_job_to_its_executor(images, demo, tmp_path):
    paths = sorted(str(p) for p in (images / "images").iterdir())[:5]  # broken.png first
    said, handed = [], []

    def executor(jobs):
        handed.extend(jobs)
        for job in reversed(jobs):  # in any order
            if job.method == "lrp.epsilon":
                yield job, loop.failed_batch(job, demo, "cannot create lrp.epsilon: no")
                continue
            analyzer = loop.create_method_analyzer(job.method, demo, job.signature["options"])
            try:
                yield job, loop.explain_batch(job, analyzer, demo)
            finally:
                analyzer.close()

    run = loop.Run(info=demo, identity=model_identity("demo"), images=paths,
                   methods=["sglrp", "lrp.epsilon"], targets=["auto", 3], formats=("npy",),
                   out=tmp_path, batch_size=2, say=said.append, executor=executor)
    try:
        run.execute()
    finally:
        run.close()
    assert [j.method for j in handed] == ["sglrp"] * 3 + ["lrp.epsilon"] * 3
    assert said == ["error: cannot create lrp.epsilon: no",  # once, not once per image
                    f"error: {paths[0]}: not an image (or an unsupported format)"]
    assert run.counts == {"ok": 4 * 2, "skipped": 0, "error": 1 * 2 + 5 * 2}
    assert len(by_map(manifest(tmp_path))) == 5 * 2 * 2


# -- the Python API on a Ray instance in this process -----------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    import ray

    # "local": a new instance, never one another process on this machine started
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_distributed_rows_equal_the_single_process_maps(images, runs, local_ray, monkeypatch):
    from sglrp import distributed

    monkeypatch.chdir(images)  # relative paths, as on the command line
    rows = distributed.explain("images", model="demo", methods=METHODS.split(","),
                               targets=["auto", 3], workers=2, batch_size=4).take_all()
    expected = by_map(manifest(images / "single"))
    got = {(r["image"], r["method"], "auto" if r["target"] == "auto" else int(r["target"])): r
           for r in rows}
    assert len(rows) == len(got) == RECORDS and got.keys() == expected.keys()
    for key, record in expected.items():
        row = got[key]
        assert row["status"] == record["status"] and row["error"] == (record["error"] or "")
        assert row["target_id"] == (-1 if record["target_id"] is None else record["target_id"])
        assert json.loads(row["signature"]) == record["signature"]
        if record["status"] != "ok":
            assert np.isnan(row["relevance"]).all() and (row["top_k_ids"] == -1).all()
            continue
        assert row["key"] == record["key"]
        assert list(row["top_k_ids"]) == record["top_k_ids"]
        np.testing.assert_allclose(row["top_k_probs"], record["top_k_probs"], atol=1e-6)
        saved = np.load(images / "single" / record["outputs"]["npy"])
        assert np.abs(row["relevance"] - saved).max() <= 1e-5 * np.abs(saved).max()


@pytest.mark.slow
def test_distributed_takes_file_contents(images, runs, local_ray):
    from sglrp import distributed

    files = local_ray.data.read_binary_files(
        [str(images / "images" / n) for n in ("img01.png", "img04.png", "broken.png")],
        include_paths=True)
    rows = distributed.explain(files, model="demo", methods="sglrp", targets="auto",
                               workers=1).take_all()
    expected = {r["key"]: r for r in manifest(images / "single")
                if r["method"] == "sglrp" and r["target"] == "auto" and r["status"] == "ok"}
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(rows) == 3 and len(ok) == 2
    for row in ok:
        saved = np.load(images / "single" / expected[row["key"]]["outputs"]["npy"])
        assert np.abs(row["relevance"] - saved).max() <= 1e-5 * np.abs(saved).max()
    bad = [r for r in rows if r["status"] == "error"]
    assert bad[0]["error"] == "not an image (or an unsupported format)"


@pytest.mark.slow
def test_distributed_refuses_decoded_images_and_other_data(local_ray):
    from sglrp import distributed

    with pytest.raises(TypeError, match="column 'bytes'"):
        distributed.explain(local_ray.data.from_items([{"image": 1}]), model="demo")
    with pytest.raises(TypeError, match="data must be"):
        distributed.explain(3.5, model="demo")
    with pytest.raises(ValueError, match="unknown method"):
        distributed.explain(["x.png"], model="demo", methods="nope")


@pytest.mark.slow
def test_workers_filter_tensorflow_notices(local_ray):
    """Issue 18.13: sglrp's actors start with the filter of TensorFlow's C++ notices on."""

    class Probe:  # defined here: Ray sends it by value
        def __call__(self, batch):
            from sglrp import _stderr

            n = len(batch["x"])
            return {"env": np.asarray([os.environ.get(_stderr.ENV, "")] * n, dtype=object),
                    "installed": np.asarray([_stderr._installed] * n)}

    ds = local_ray.data.from_items([{"x": 1}])
    (row,) = ray_runner.map_actors(ds, Probe, 1, {"num_cpus": 1}, {}, batch_size=1).take_all()
    assert row["env"] == "1" and row["installed"]
