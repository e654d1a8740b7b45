"""``sglrp spray`` at scale: time and peak memory on many maps of one class.

Usage::

    python -m benchmarks.spray_scale [--maps 50000] [--folder /tmp/spray-scale] [--json PATH]

The folder is made like an ``sglrp explain --format npy`` output of the demo model: one
``manifest.jsonl`` record and one float32 ``32x32x1`` ``.npy`` map per image, all of one method
and class. The maps are synthetic (seeded): four patterns (a corner blob like the planted mark,
the digit's centre, two others) in proportions 40/30/20/10 with noise, so that the eigengap has
something to find. ``sglrp spray FOLDER --quiet`` then runs in a fresh process, and its wall time
CPU time and peak resident memory (``getrusage`` of the child) are recorded with the clusters
found and their agreement with the patterns (adjusted Rand index); ``import_rss_mb`` is the peak
of a process that only imports ``sglrp.spray`` (which imports sglrp, and with it TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TRUTH = "bench_truth.npy"  # the pattern of each map (spray reads the manifest only)


def _child_rss_mb(code: str) -> float:
    """Peak RSS of a fresh Python running ``code`` (to separate the imports' share)."""
    proc = subprocess.run([sys.executable, "-c", code + "; import resource; print(resource."
                           "getrusage(resource.RUSAGE_SELF).ru_maxrss)"], capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return int(proc.stdout.split()[-1]) / 1024


def make_folder(folder: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` maps and their manifest into ``folder`` (kept if already complete); the
    records have the fields of :func:`sglrp.explain.manifest.make_record` (written here without
    importing sglrp, so that no TensorFlow starts)."""
    manifest = folder / "manifest.jsonl"
    if manifest.is_file() and sum(1 for _ in open(manifest)) == n:
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    protos = np.zeros((4, 32, 32, 1), np.float32)
    protos[0, 2:6, 2:6] = 1.0
    protos[1, 10:22, 10:22] = 1.0
    protos[2, 10:22, 10:22] = 0.5
    protos[2, 20:28, 4:12] = -1.0
    protos[3, 24:30, 20:30] = 1.0
    truth = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    sig = {"sglrp": "bench", "engine": "bench", "model": "demo", "weights": "sha256:bench",
           "method": "sglrp", "options": {"high": 1.0, "low": 0.0, "relu": False}}
    with open(manifest, "w") as f:
        for i in range(n):
            key = f"map_{i:06d}__sglrp__8__bench"
            m = protos[truth[i]] + 0.3 * rng.standard_normal((32, 32, 1), np.float32)
            np.save(folder / f"{key}.npy", m)
            record = {"key": key, "image": f"images/map_{i:06d}.png", "model": "demo",
                      "method": "sglrp", "target": 8, "target_id": 8, "target_name": "8",
                      "outputs": {"npy": f"{key}.npy"}, "status": "ok", "error": None,
                      "signature": {**sig, "target": 8, "input": f"sha256:{i}"}}
            f.write(json.dumps(record) + "\n")
    np.save(folder / TRUTH, truth)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=50_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/spray-scale"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    make_folder(args.folder, args.maps)
    made = time.perf_counter() - start
    command = [sys.executable, "-c", "import sys; from sglrp.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "spray", str(args.folder), "--quiet"]
    import_mb = _child_rss_mb("import sglrp.spray")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_mb = after.ru_maxrss / 1024
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return proc.returncode
    document = json.loads((args.folder / "spray" / "clusters.json").read_text())
    (group,) = document["groups"]
    truth = np.load(args.folder / TRUTH, allow_pickle=False) \
        if (args.folder / TRUTH).exists() else None
    result = {
        "maps": args.maps, "map_shape": [32, 32, 1], "spray_seconds": round(seconds, 1),
        "spray_cpu_seconds": round(cpu, 1), "peak_rss_mb": round(peak_mb),
        "import_rss_mb": round(import_mb), "k": group["k"], "embedding": group["embedding"],
        "cluster_sizes": [c["size"] for c in group["clusters"]],
        "folder_seconds": round(made, 1), "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if truth is not None:
        from sklearn.metrics import adjusted_rand_score

        labels = [item["cluster"] for item in group["images"]]
        result["adjusted_rand_index"] = round(float(adjusted_rand_score(truth, labels)), 4)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
