"""The original paper's example: Keras VGG16 (ImageNet weights) on zebra_elephant*.jpg.

Target 340 (zebra) and 386 (African elephant): with SGLRP and CLRP the explained animal is red
and the other one blue; plain LRP paints both red. Needs the ImageNet weights (Keras cache,
download, or ``weights=PATH``); offline without them it stops with a message saying how to get
them, never with random weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..models import (
    IMAGENET_CAFFE_HIGH,
    IMAGENET_CAFFE_LOW,
    WeightsUnavailableError,
    load_images,
    load_vgg16,
    preprocess_caffe,
)
from .compare import COMPARISON, run_methods

__all__ = ["ORIGINAL_METHODS", "TARGETS", "explain", "run_example", "DATA_DIR"]

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "images"
TARGETS = {340: "zebra", 386: "African elephant"}
#: The eleven methods of the original notebook's figure, in its order.
ORIGINAL_METHODS = {k: v for k, v in COMPARISON.items() if k not in ("SmoothGrad", "IntGrad")}


def explain(model, images, targets=tuple(TARGETS), methods=ORIGINAL_METHODS, size=224):
    """Maps of every method for every image and target: {method: (n_targets, n_images, ...)}."""
    x = preprocess_caffe(load_images(images, (size, size)))
    x_all = np.concatenate([x] * len(targets))
    t_all = np.repeat(np.asarray(targets), len(x))
    maps = run_methods(
        model,
        x_all,
        t_all,
        methods,
        low=IMAGENET_CAFFE_LOW,
        high=IMAGENET_CAFFE_HIGH,
        batch_size=len(x),
    )
    return x, {k: v.reshape(len(targets), len(x), *x.shape[1:]) for k, v in maps.items()}


def run_example(
    out="results/zebra_elephant",
    weights="imagenet",
    images=None,
    size=224,
    methods=ORIGINAL_METHODS,
) -> int:
    """Write one comparison figure per photo and the raw maps; return an exit code."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import comparison

    images = sorted(DATA_DIR.glob("zebra_elephant*.jpg")) if images is None else list(images)
    try:
        model = load_vgg16(weights, input_shape=(size, size, 3))
    except WeightsUnavailableError as err:
        print(f"sglrp: {err}", file=sys.stderr)
        return 2
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x, maps = explain(model, images, methods=methods, size=size)
    probabilities = model.predict(x, verbose=0)
    raw = load_images(images, (size, size)) / 255.0
    for i, path in enumerate(images):
        top = np.argsort(probabilities[i])[::-1][:5]
        print(
            f"{Path(path).name}: top-5 " + ", ".join(f"{c} {probabilities[i, c]:.4f}" for c in top)
        )
        rows = {
            f"{name} ({t})": {k: v[j, i] for k, v in maps.items()}
            for j, (t, name) in enumerate(TARGETS.items())
        }
        fig = comparison(raw[i], rows, title=Path(path).name)
        fig.savefig(out / f"{Path(path).stem}_comparison.png", dpi=80)
        plt.close(fig)
    np.savez_compressed(
        out / "maps.npz",
        targets=np.array(list(TARGETS)),
        images=np.array([str(p) for p in images]),
        **maps,
    )
    print(f"wrote {len(images)} figures and maps.npz to {out}")
    return 0
