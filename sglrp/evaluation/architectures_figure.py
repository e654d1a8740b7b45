"""One held-out scene explained by LRP and SGLRP on every shipped model, the ViT beside the CNNs.

Usage::

    python -m sglrp.evaluation.architectures_figure [--out docs/architectures.png] [--scene K]

Rows are the models (``sglrp.demo.ARCHITECTURES``; a model a method refuses gets an empty,
labelled cell), columns the scene and the maps of LRP, SGLRP and SGLRP with epsilon on the dense
layers (``sglrp.epsilon_plus_box``) for each of its two digits.
Each map is drawn with ``sglrp.plot.heatmap`` (channel sum, red for, blue against, symmetric at
its own max |h|).
"""

from __future__ import annotations

import argparse
import sys
import warnings

__all__ = ["figure", "main"]

METHODS = (("LRP", "lrp"), ("SGLRP", "sglrp"), ("SGLRP ε+box", "sglrp.epsilon_plus_box"))


def figure(scene: int = 0, seed: int = 0, models=None):
    """The figure (a matplotlib ``Figure``) for held-out scene ``scene`` of seed ``seed``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .. import plot
    from ..demo import ARCHITECTURES, DEMO_HIGH, DEMO_LOW, load_demo_model, make_scenes
    from ..registry import create_analyzer

    models = list(ARCHITECTURES) if models is None else list(models)
    scenes = make_scenes(scene + 1, seed=seed, split="test")
    image, labels = scenes.images[scene : scene + 1], scenes.labels[scene]
    columns = ["scene"] + [f"{label} explains {d}" for d in labels for label, _ in METHODS]
    fig, axes = plt.subplots(
        len(models), len(columns), figsize=(1.9 * len(columns), 2.0 * len(models))
    )
    axes = np.atleast_2d(axes)
    for row, name in enumerate(models):
        model = load_demo_model(name=name)
        axes[row, 0].imshow(image[0, ..., 0], cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(name, fontsize=10)
        col = 1
        for digit in labels:
            for _, method in METHODS:
                ax = axes[row, col]
                try:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=".*ends in a softmax")
                        with create_analyzer(method, model, low=DEMO_LOW, high=DEMO_HIGH) as a:
                            plot.heatmap(a.analyze(image, target=int(digit))[0], ax=ax)
                except ValueError:
                    ax.text(0.5, 0.5, "refused", ha="center", va="center", fontsize=9)
                col += 1
    for ax, title in zip(axes[0], columns):
        ax.set_title(title, fontsize=10)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m sglrp.evaluation.architectures_figure")
    parser.add_argument("--out", default="docs/architectures.png")
    parser.add_argument("--scene", type=int, default=0, help="held-out scene (seed 0)")
    args = parser.parse_args(argv)
    figure(args.scene).savefig(args.out, dpi=80)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
