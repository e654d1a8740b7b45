"""``sglrp explain`` in one process against ``--ray`` with 1 and 2 workers: images per second.

Each configuration runs the real command in a child process on a fresh output folder and is
measured two ways: end to end (wall time of the command, from Python's start to the summary
line: with ``--ray`` this includes starting a local Ray instance and the workers, each loading
TensorFlow and the model), and steady (maps per second while the maps are being written: from
the modification times of the ``.npy`` outputs, the first batch's excluded; what a long run
approaches). Models: the demo CNN, and VGG16 with random weights saved to a file and passed
with ``--weights`` (nothing is downloaded). One method (``sglrp``), target ``auto``, the
default outputs (``.npy`` and two PNGs per map), batch size 8.

``python -m benchmarks.ray_bench --json benchmarks/ray-cpu.json`` (``make bench-ray``) prints
a Markdown table; the numbers of the development machine are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import load_average, machine_info

CONFIGS = (("single process", []), ("Ray, 1 worker", ["--ray", "--workers", "1"]),
           ("Ray, 2 workers", ["--ray", "--workers", "2"]))


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` JPEG photos-to-be: smooth random colour fields with noise, ``size`` x ``size``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        base = rng.uniform(0, 255, (8, 8, 3))
        image = np.kron(base, np.ones((size // 8 + 1, size // 8 + 1, 1)))[:size, :size]
        image = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{i:04d}.jpg"
        Image.fromarray(image).save(path, quality=90)
        paths.append(path)
    return paths


def vgg16_weights(path: Path) -> Path:
    """VGG16 with random weights (seeded), saved to ``path`` in a child process."""
    code = ("import sys, tensorflow as tf; tf.keras.utils.set_random_seed(0); "
            "from sglrp.models import load_vgg16; load_vgg16(None).save_weights(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    return path


def run_once(images: Path, out: Path, model_args: list, extra: list, batch: int = 8) -> dict:
    cmd = [sys.executable, "-m", "sglrp.cli", "explain", str(images), *model_args,
           "--method", "sglrp", "--target", "auto", "--batch-size", str(batch), "--quiet",
           "--out", str(out), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if proc.returncode != 0 or not last.startswith("done:"):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    written = sorted(p.stat().st_mtime_ns for p in out.glob("*.npy"))
    steady = (len(written) - batch) / ((written[-1] - written[batch - 1]) / 1e9)
    return {"seconds": round(seconds, 2), "maps": len(written), "steady": steady,
            "summary": last}


def bench_model(name: str, model_args: list, n: int, size: int, root: Path) -> dict:
    images = root / f"{name}-{n}"
    make_images(images, n, size)
    rows = []
    for label, extra in CONFIGS:
        run = run_once(images, root / f"out-{name}-{label}".replace(" ", "_").replace(",", ""),
                       model_args, extra)
        rows.append({
            "config": label,
            "seconds": run["seconds"],
            "images_per_s_end_to_end": round(n / run["seconds"], 2),
            "images_per_s_steady": round(run["steady"], 2),
            "s_per_image_steady": round(1 / run["steady"], 4),
            "fixed_s": round(run["seconds"] - n / run["steady"], 1),
            "summary": run["summary"],
            "load_average_after": load_average(),
        })
        print(f"  {name} {label}: {run['seconds']} s, steady {run['steady']:.2f} images/s",
              file=sys.stderr, flush=True)
    base = rows[0]
    for row in rows[1:]:
        row["overhead_steady_pct"] = round(
            100 * (row["s_per_image_steady"] / base["s_per_image_steady"] - 1), 1)
        row["overhead_end_to_end_pct"] = round(100 * (row["seconds"] / base["seconds"] - 1), 1)
    return {"model": name, "images": n, "image_size": size, "rows": rows}


def markdown(result: dict) -> str:
    lines = []
    for bench in result["models"]:
        n = bench["images"]
        lines += [f"### {bench['model']} ({n} images, {bench['image_size']} px JPEG)", "",
                  "| run | end to end, s | images/s end to end | images/s steady | s per image "
                  "steady | fixed cost, s | time vs single process (steady / end to end) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for row in bench["rows"]:
            overhead = ("" if "overhead_steady_pct" not in row else
                        f"{row['overhead_steady_pct']:+.0f} % / "
                        f"{row['overhead_end_to_end_pct']:+.0f} %")
            lines.append(f"| {row['config']} | {row['seconds']} | "
                         f"{row['images_per_s_end_to_end']} | {row['images_per_s_steady']} | "
                         f"{row['s_per_image_steady']:.3f} | {row['fixed_s']} | {overhead} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--demo-images", type=int, default=1000,
                        help="images for the demo CNN (default 1000)")
    parser.add_argument("--vgg16-images", type=int, default=48,
                        help="images for VGG16 (default 48)")
    parser.add_argument("--models", default="demo,vgg16", help="demo, vgg16 or both")
    args = parser.parse_args(argv)
    env_threads = os.environ.get("OMP_NUM_THREADS")
    result = {"machine": machine_info(), "load_average_start": load_average(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "OMP_NUM_THREADS": env_threads, "models": []}
    with tempfile.TemporaryDirectory(prefix="sglrp-ray-bench-") as tmp:
        root = Path(tmp)
        models = args.models.split(",")
        if "demo" in models:
            result["models"].append(bench_model("demo", ["--model", "demo"],
                                                args.demo_images, 64, root))
        if "vgg16" in models:
            weights = vgg16_weights(root / "vgg16-random.h5")
            result["models"].append(bench_model("vgg16", ["--model", "vgg16", "--weights",
                                                          str(weights)],
                                                args.vgg16_images, 256, root))
    result["load_average_end"] = load_average()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    print(f"load average: start {result['load_average_start']}, end "
          f"{result['load_average_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
