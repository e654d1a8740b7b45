"""Train a digit-scene CNN (the demo model or another architecture) on digits and scenes.

Usage::

    python -m sglrp.demo.train [--model NAME] [--out PATH] [--epochs N]

``--model`` is one of ``sglrp.demo.ARCHITECTURES`` (default ``digits_cnn``, the demo model);
the shipped weights of every architecture were made with this command and the defaults. The
default number of epochs is 10, 6 for ``efficientnet_mini``, whose steps cost more on a
CPU (swish, depthwise convolutions, squeeze-and-excitation) and which reaches a higher accuracy
sooner, and 12 for ``vit`` (:data:`EPOCHS`; its learning-rate schedule is in
:data:`MODEL_SETTINGS`).

Training is deterministic (fixed seeds, ``enable_op_determinism``) and runs
eagerly on the CPU in a few minutes.  Each epoch draws fresh, seeded random
placements from the training pool of digits:

* single digits with one-hot labels, and
* two-digit scenes with soft labels 0.5 / 0.5 on the two classes present,

so that on a scene the softmax splits between the two digits.  Afterwards the
model is evaluated on held-out digits only, and the weights plus a JSON file
with the metrics are written next to each other.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

SEED = 0
DEFAULT_EPOCHS = 10
#: Epochs of the architectures that do not train for DEFAULT_EPOCHS.
EPOCHS = {"efficientnet_mini": 6, "vit": 12}
SINGLES_PER_EPOCH = 12000
SCENES_PER_EPOCH = 12000
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
EVAL_SCENES = 2000
EVAL_SCENE_SEED = 12345
EVAL_SINGLE_SEED = 54321
N_RECORDED = 4
#: Models trained with their own optimizer settings (peak learning rate, warm-up steps): the ViT
#: takes a cosine-decayed Adam rate after a linear warm-up, as transformers usually do.
MODEL_SETTINGS = {"vit": {"learning_rate": 2e-3, "warmup_steps": 200}}


def _metrics_path(weights: pathlib.Path) -> pathlib.Path:
    name = weights.name
    for suffix in (".weights.h5", ".h5"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return weights.with_name(name + ".json")


def epoch_data(epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Training images and (soft) targets for one epoch.

    Parameters
    ----------
    epoch : int
        Epoch number; it seeds the random placements and draws.

    Returns
    -------
    x : numpy.ndarray
        ``(SINGLES_PER_EPOCH + SCENES_PER_EPOCH, 32, 32, 1)`` float32.
    y : numpy.ndarray
        Matching ``(..., 10)`` float32 targets: one-hot for singles, 0.5 / 0.5
        on the two classes of a scene.
    """
    from sglrp.demo.scenes import N_CLASSES, make_scenes, make_singles

    singles = make_singles("train", seed=1000 + epoch, n=SINGLES_PER_EPOCH)
    scenes = make_scenes(SCENES_PER_EPOCH, seed=2000 + epoch, split="train")
    y_single = np.eye(N_CLASSES, dtype=np.float32)[singles.labels]
    y_scene = np.zeros((len(scenes), N_CLASSES), dtype=np.float32)
    rows = np.arange(len(scenes))
    y_scene[rows, scenes.labels[:, 0]] = 0.5
    y_scene[rows, scenes.labels[:, 1]] = 0.5
    x = np.concatenate([singles.images, scenes.images])
    y = np.concatenate([y_single, y_scene])
    return x, y


def scene_top2(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of scenes whose two top classes are exactly the two present.

    Parameters
    ----------
    probs : numpy.ndarray
        ``(n, 10)`` class scores.
    labels : numpy.ndarray
        ``(n, 2)`` true classes of each scene.

    Returns
    -------
    float
    """
    top2 = np.sort(np.argsort(probs, axis=1)[:, -2:], axis=1)
    return float(np.mean(np.all(top2 == np.sort(labels, axis=1), axis=1)))


def evaluate(model) -> dict:
    """Held-out metrics of a model (test pool digits only).

    Parameters
    ----------
    model : tf.keras.Model
        Model mapping 32x32x1 images to 10 class scores.

    Returns
    -------
    dict
        ``single_top1`` (centred held-out singles), ``single_top1_random_position``,
        ``scene_top2``, the class probabilities of the first ``N_RECORDED`` held-out scenes
        (``first_scene_probs``: another Keras that reads the weights must give them again) and
        the sizes and seeds they were computed with.
    """
    from sglrp.demo.scenes import make_scenes, make_singles

    centred = make_singles("test", centred=True)
    placed = make_singles("test", seed=EVAL_SINGLE_SEED)
    scenes = make_scenes(EVAL_SCENES, seed=EVAL_SCENE_SEED, split="test")

    def predict(x):
        return model.predict(x, batch_size=256, verbose=0)

    scene_probs = predict(scenes.images)
    return {
        "single_top1": float(np.mean(predict(centred.images).argmax(1) == centred.labels)),
        "single_top1_random_position": float(
            np.mean(predict(placed.images).argmax(1) == placed.labels)
        ),
        "scene_top2": scene_top2(scene_probs, scenes.labels),
        "first_scene_probs": np.round(scene_probs[:N_RECORDED], 6).tolist(),
        "n_test_singles": len(centred),
        "n_test_scenes": len(scenes),
        "eval_scene_seed": EVAL_SCENE_SEED,
        "eval_single_seed": EVAL_SINGLE_SEED,
    }


def default_epochs(name: str) -> int:
    """The epochs the shipped weights of architecture ``name`` were trained for."""
    return EPOCHS.get(name, DEFAULT_EPOCHS)


def train(epochs: int = DEFAULT_EPOCHS, verbose: int = 2, name: str = "digits_cnn"):
    """Train a digit-scene model deterministically.

    Parameters
    ----------
    epochs : int, optional
        Number of epochs (each with freshly drawn training data).
    verbose : int, optional
        Keras verbosity.
    name : str, optional
        The architecture (``sglrp.demo.ARCHITECTURES``).

    Returns
    -------
    model : tf.keras.Model
        The trained model.
    seconds : float
        Wall-clock training time.
    """
    import tensorflow as tf

    from sglrp.demo.model import build_model

    if not tf.executing_eagerly():
        print(
            "warning: eager execution is disabled; the weights may differ from the shipped ones",
            file=sys.stderr,
        )
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    model = build_model(name)
    model.compile(optimizer=_optimizer(name, epochs), loss="categorical_crossentropy")
    start = time.perf_counter()
    for epoch in range(epochs):
        x, y = epoch_data(epoch)
        model.fit(
            x,
            y,
            batch_size=BATCH_SIZE,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=True,
            verbose=verbose,
        )
    return model, time.perf_counter() - start


def _optimizer(name: str, epochs: int):
    """Adam at :data:`LEARNING_RATE`, or the schedule of :data:`MODEL_SETTINGS`."""
    import tensorflow as tf

    settings = MODEL_SETTINGS.get(name)
    if settings is None:
        return tf.keras.optimizers.Adam(LEARNING_RATE)
    steps = epochs * -(-(SINGLES_PER_EPOCH + SCENES_PER_EPOCH) // BATCH_SIZE)
    warmup = settings["warmup_steps"]
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        settings["learning_rate"] / 10,
        steps - warmup,
        warmup_target=settings["learning_rate"],
        warmup_steps=warmup,
    )
    return tf.keras.optimizers.Adam(schedule)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    from sglrp.demo.model import ARCHITECTURES, save_weights_h5, weights_file

    parser = argparse.ArgumentParser(
        prog="python -m sglrp.demo.train", description="Train a digit-scene CNN of sglrp."
    )
    parser.add_argument(
        "--model",
        choices=list(ARCHITECTURES),
        default="digits_cnn",
        help="architecture (default: %(default)s, the demo model)",
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="weights file to write (default: the shipped <model>.weights.h5); the metrics "
        "JSON goes next to it",
    )
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default: {DEFAULT_EPOCHS}, or that of the architecture in "
                        f"{EPOCHS}")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = default_epochs(args.model)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    if args.out is None:
        args.out = weights_file(args.model)

    import tensorflow as tf

    model, seconds = train(args.epochs, name=args.model)
    metrics = evaluate(model)
    info = {
        "model": args.model,
        **metrics,
        "epochs": args.epochs,
        "seed": SEED,
        "singles_per_epoch": SINGLES_PER_EPOCH,
        "scenes_per_epoch": SCENES_PER_EPOCH,
        "n_train_scenes": SCENES_PER_EPOCH * args.epochs,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        **MODEL_SETTINGS.get(args.model, {}),
        "param_count": int(model.count_params()),
        "train_seconds": round(seconds, 1),
        "eager": bool(tf.executing_eagerly()),
        "tf_version": tf.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_weights_h5(model, args.out)
    metrics_path = _metrics_path(args.out)
    metrics_path.write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {metrics_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
