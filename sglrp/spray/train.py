"""Train the two models of the planted-shortcut set: the shortcut model and its control.

Usage::

    python -m sglrp.spray.train [--kind shortcut|control|both] [--out FOLDER]

Both are the demo's architecture (``digits_cnn``: 3 x (conv, max pool), dense 128), trained
deterministically on the CPU for :data:`EPOCHS` epochs of :data:`IMAGES_PER_EPOCH` fresh
jittered digits (:func:`sglrp.spray.planted.training_set`; the same digit images for both, only
the marks differ). The shipped weights (``shortcut.weights.h5``, ``control.weights.h5`` next to
this module) were made with this command and the defaults; ``<kind>.json`` beside each holds the
settings and :func:`evaluate`'s numbers.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from .planted import MARKED_CLASS, add_mark, remove_mark, test_set, training_set

__all__ = ["KINDS", "EPOCHS", "IMAGES_PER_EPOCH", "weights_path", "load_model", "train",
           "evaluate", "main"]

KINDS = ("shortcut", "control")
SEED = 0
EPOCHS = 4
IMAGES_PER_EPOCH = 10000
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
_HERE = pathlib.Path(__file__).parent


def _check(kind: str) -> str:
    if kind not in KINDS:
        raise KeyError(f"unknown planted model {kind!r}; available: {', '.join(KINDS)}")
    return kind


def weights_path(kind: str) -> pathlib.Path:
    """The shipped weights file of ``kind`` (``"shortcut"`` or ``"control"``)."""
    return _HERE / f"{_check(kind)}.weights.h5"


def load_model(kind: str):
    """The shipped ``kind`` model (``"shortcut"`` or ``"control"``), with its softmax."""
    from ..demo.model import load_demo_model

    return load_demo_model(weights_path(kind), name="digits_cnn")


def train(kind: str, epochs: int = EPOCHS, verbose: int = 0):
    """Train ``kind`` deterministically; returns ``(model, seconds)``."""
    import tensorflow as tf

    from ..demo.model import build_model

    _check(kind)
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    model = build_model("digits_cnn")
    model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                  loss="sparse_categorical_crossentropy")
    start = time.perf_counter()
    for epoch in range(epochs):
        data = training_set(kind, IMAGES_PER_EPOCH, seed=3000 + epoch)
        model.fit(data.images, data.labels, batch_size=BATCH_SIZE, epochs=epoch + 1,
                  initial_epoch=epoch, shuffle=True, verbose=verbose)
    return model, time.perf_counter() - start


def evaluate(model) -> dict:
    """Accuracies on the held-out test images of every class (6 jittered copies per digit).

    ``marked_class_marked``: accuracy on the marked test images of the marked class;
    ``marked_class_mark_removed``: on the same images with the mark removed (the shortcut
    model's falls, the control's does not); ``marked_class_unmarked``: on its unmarked test
    images; ``others_unmarked``: on the other classes' images without a mark;
    ``others_to_marked_class_with_mark``: the fraction of the other classes' images predicted
    as the marked class once the mark is added to all of them.
    """
    data = test_set(classes=tuple(range(10)))
    own = data.labels == MARKED_CLASS
    clean = remove_mark(data.images)

    def accuracy(x, labels):
        return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(1) == labels))

    sel = own & data.marked
    others = ~own
    predicted = model.predict(add_mark(clean[others]), batch_size=256, verbose=0).argmax(1)
    return {
        "marked_class": MARKED_CLASS,
        "marked_class_marked": accuracy(data.images[sel], data.labels[sel]),
        "marked_class_mark_removed": accuracy(clean[sel], data.labels[sel]),
        "marked_class_unmarked": accuracy(data.images[own & ~data.marked], MARKED_CLASS),
        "others_unmarked": accuracy(clean[others], data.labels[others]),
        "others_to_marked_class_with_mark": float(np.mean(predicted == MARKED_CLASS)),
        "n_marked_class_marked": int(sel.sum()),
        "n_marked_class": int(own.sum()),
        "n_others": int(others.sum()),
    }


def main(argv=None) -> int:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m sglrp.spray.train",
                                     description="Train the planted-shortcut models.")
    parser.add_argument("--kind", choices=[*KINDS, "both"], default="both")
    parser.add_argument("--out", type=pathlib.Path, default=_HERE,
                        help="folder for <kind>.weights.h5 and <kind>.json")
    args = parser.parse_args(argv)
    import tensorflow as tf

    from ..demo.model import save_weights_h5

    for kind in KINDS if args.kind == "both" else (args.kind,):
        model, seconds = train(kind)
        info = {"kind": kind, "architecture": "digits_cnn", **evaluate(model), "epochs": EPOCHS,
                "images_per_epoch": IMAGES_PER_EPOCH, "batch_size": BATCH_SIZE,
                "learning_rate": LEARNING_RATE, "seed": SEED,
                "train_seconds": round(seconds, 1), "tf_version": tf.__version__}
        args.out.mkdir(parents=True, exist_ok=True)
        weights = args.out / f"{kind}.weights.h5"
        save_weights_h5(model, weights)
        (args.out / f"{kind}.json").write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps(info, indent=2))
        print(f"wrote {weights} ({weights.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
