"""``sglrp demo``: every method on the embedded digit-scene model, figures and a table.

Each scene holds two digits; every method explains each of the two in turn (the other is the
distractor), like the zebra and the elephant of the paper's photo.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import DEMO_HIGH, DEMO_LOW, load_demo_model, make_scenes
from .compare import COMPARISON, discrimination, format_table, run_methods, write_json

__all__ = ["run_demo", "run_benchmark"]


def _scene_targets(scenes):
    """Every scene twice: first explaining digit 0 (distractor 1), then digit 1."""
    x = np.concatenate([scenes.images, scenes.images])
    targets = np.concatenate([scenes.labels[:, 0], scenes.labels[:, 1]])
    target_boxes = np.concatenate([scenes.boxes[:, 0], scenes.boxes[:, 1]])
    distractor_boxes = np.concatenate([scenes.boxes[:, 1], scenes.boxes[:, 0]])
    return x, targets, target_boxes, distractor_boxes


def run_benchmark(n_scenes=200, seed=0, methods=COMPARISON, model=None, log=print):
    """Maps and discrimination results on ``n_scenes`` held-out scenes (2 targets each)."""
    model = load_demo_model() if model is None else model
    scenes = make_scenes(n_scenes, seed=seed, split="test")
    x, targets, target_boxes, distractor_boxes = _scene_targets(scenes)
    with warnings.catch_warnings():  # the demo model's softmax: said once here instead
        warnings.filterwarnings("ignore", message=".*ends in a softmax", category=UserWarning)
        log("the model ends in a softmax: every method explains its logits")
        maps = run_methods(model, x, targets, methods, low=DEMO_LOW, high=DEMO_HIGH,
                           progress=lambda label: log(f"  {label}"))
    return scenes, maps, discrimination(maps, target_boxes, distractor_boxes, seed=seed)


def save_figures(out: Path, scenes, maps, n_figures: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import comparison

    n = len(scenes.images)
    paths = []
    for i in range(min(n_figures, n)):
        a, b = scenes.labels[i]
        rows = {
            f"explain {a}": {k: v[i] for k, v in maps.items()},
            f"explain {b}": {k: v[n + i] for k, v in maps.items()},
        }
        fig = comparison(scenes.images[i], rows, title=f"scene {i}: digits {a} and {b}")
        path = out / f"scene{i}_comparison.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def run_demo(out="results/demo", n_scenes=200, n_figures=3, seed=0, log=print) -> dict:
    """The main job: figures, raw arrays, ``discrimination.json`` and the printed table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log(f"sglrp demo: {len(COMPARISON)} methods on {n_scenes} two-digit scenes (seed {seed})")
    scenes, maps, results = run_benchmark(n_scenes, seed, log=log)
    figures = save_figures(out, scenes, maps, n_figures)
    keep = np.r_[0:n_figures, n_scenes : n_scenes + n_figures]
    np.savez_compressed(
        out / "maps.npz",
        images=scenes.images[:n_figures],
        labels=scenes.labels[:n_figures],
        boxes=scenes.boxes[:n_figures],
        **{k: v[keep] for k, v in maps.items()},
    )
    write_json(out / "discrimination.json", results)
    log("")
    log(format_table(results, 2 * n_scenes))
    log("")
    log(
        f"wrote {', '.join(str(p) for p in figures)}, {out / 'maps.npz'}, "
        f"{out / 'discrimination.json'} in {time.perf_counter() - start:.0f} s"
    )
    return results


def main(args) -> int:
    if args.model == "vgg16":
        from .zebra_elephant import run_example

        return run_example(args.out, weights=args.weights)
    run_demo(args.out, n_scenes=args.scenes, n_figures=args.figures, seed=args.seed)
    return 0


def bench_main(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, _, results = run_benchmark(args.scenes, args.seed, log=lambda s: print(s, file=sys.stderr))
    write_json(out / "discrimination.json", results)
    print(format_table(results, 2 * args.scenes))
    return 0
