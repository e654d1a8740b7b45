"""``sglrp explain`` in one process against ``--ray`` with 1 and 2 workers: images per second.

Each configuration runs the real command in a child process on a fresh output folder, twice:
with ``n`` and with ``2n`` images. The difference gives the steady cost per image (the images
the second run has in addition), the rest is the fixed cost of a run (Python and TensorFlow
start, model load; with ``--ray`` also the local Ray instance and the workers, each loading
TensorFlow and the model). Models: the demo CNN, and VGG16 with random weights saved to a file
and passed with ``--weights`` (nothing is downloaded). One method (``sglrp``), target ``auto``,
the default outputs (``.npy`` and two PNGs per map), batch size 8.

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


def run_once(images: Path, out: Path, model_args: list, extra: list) -> dict:
    cmd = [sys.executable, "-m", "sglrp.cli", "explain", str(images), *model_args,
           "--method", "sglrp", "--target", "auto", "--batch-size", "8", "--quiet",
           "--out", str(out), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if proc.returncode != 0 or not last.startswith("done:"):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return {"seconds": round(seconds, 2), "summary": last}


def bench_model(name: str, model_args: list, n: int, size: int, root: Path) -> dict:
    small = root / f"{name}-{n}"
    large = root / f"{name}-{2 * n}"
    make_images(small, n, size)
    make_images(large, 2 * n, size)
    rows = []
    for label, extra in CONFIGS:
        t1 = run_once(small, root / f"out-{name}-{label}-1".replace(" ", "_"), model_args, extra)
        t2 = run_once(large, root / f"out-{name}-{label}-2".replace(" ", "_"), model_args, extra)
        per_image = (t2["seconds"] - t1["seconds"]) / n
        rows.append({
            "config": label,
            f"seconds_{n}": t1["seconds"],
            f"seconds_{2 * n}": t2["seconds"],
            "per_image_s": round(per_image, 4),
            "images_per_s_steady": round(1 / per_image, 2) if per_image > 0 else None,
            "images_per_s_end_to_end": round(2 * n / t2["seconds"], 2),
            "fixed_s": round(t1["seconds"] - n * per_image, 1),
            "load_average_after": load_average(),
        })
        print(f"  {name} {label}: {t1['seconds']} s ({n}), {t2['seconds']} s ({2 * n})",
              file=sys.stderr, flush=True)
    base = rows[0]
    for row in rows[1:]:
        row["overhead_steady_pct"] = round(100 * (row["per_image_s"] / base["per_image_s"] - 1),
                                           1)
        row["overhead_end_to_end_pct"] = round(
            100 * (row[f"seconds_{2 * n}"] / base[f"seconds_{2 * n}"] - 1), 1)
    return {"model": name, "images": [n, 2 * n], "image_size": size, "rows": rows}


def markdown(result: dict) -> str:
    lines = []
    for bench in result["models"]:
        n, m = bench["images"]
        lines += [f"### {bench['model']} ({n} and {m} images, {bench['image_size']} px JPEG)", "",
                  f"| run | {n} images, s | {m} images, s | s per image (steady) | images/s "
                  f"(steady) | images/s ({m}, end to end) | fixed cost, s | Ray overhead "
                  "(steady / end to end) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in bench["rows"]:
            overhead = ("" if "overhead_steady_pct" not in row else
                        f"{row['overhead_steady_pct']:+.0f} % / "
                        f"{row['overhead_end_to_end_pct']:+.0f} %")
            lines.append(f"| {row['config']} | {row[f'seconds_{n}']} | {row[f'seconds_{m}']} | "
                         f"{row['per_image_s']:.3f} | {row['images_per_s_steady']} | "
                         f"{row['images_per_s_end_to_end']} | {row['fixed_s']} | {overhead} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--demo-images", type=int, default=500,
                        help="n for the demo CNN (runs of n and 2n images; default 500)")
    parser.add_argument("--vgg16-images", type=int, default=16,
                        help="n for VGG16 (runs of n and 2n images; default 16)")
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
