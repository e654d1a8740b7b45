"""Every ``keras.applications`` family x every registry method: works, or refused and why.

Each family is built with ``weights=None`` at a small input size (the smallest its architecture
takes, 32x32 where it can), its batch norms given the statistics of a batch of inputs (so that
activations and logits are of order one, as in ``tests/test_architectures.py``), and every
registered method is built on it and run on one image. A cell is ``works`` when the map is
finite and not all zero, or the first line of the refusal. The rows go to a JSON file and, as
a table, between the markers ``<!-- applications-matrix -->`` in the README::

    python -m benchmarks.applications_matrix --json benchmarks/applications-matrix-keras3.json \\
        --readme README.md            # every family (hours on 2 busy cores)
    python -m benchmarks.applications_matrix --only EfficientNetB0 ...  # some families
    python -m benchmarks.applications_matrix --only --readme README.md  # the table again

``tests/test_applications_matrix.py`` (slow) computes the rows again and compares them with
the JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="model .* ends in a softmax")

#: family -> (constructor name in keras.applications, input size, images in [0, 255]: the
#: model rescales them itself).
FAMILIES = {
    "VGG16": ("VGG16", 32, False),
    "VGG19": ("VGG19", 32, False),
    "ResNet50": ("ResNet50", 32, False),
    "ResNet50V2": ("ResNet50V2", 32, False),
    "MobileNet": ("MobileNet", 32, False),
    "MobileNetV2": ("MobileNetV2", 32, False),
    "MobileNetV3Small": ("MobileNetV3Small", 32, True),
    "MobileNetV3Large": ("MobileNetV3Large", 32, True),
    "DenseNet121": ("DenseNet121", 32, False),
    "InceptionV3": ("InceptionV3", 75, False),
    "Xception": ("Xception", 71, False),
    "InceptionResNetV2": ("InceptionResNetV2", 75, False),
    "NASNetMobile": ("NASNetMobile", 32, False),
    "EfficientNetB0": ("EfficientNetB0", 32, True),
    "EfficientNetV2B0": ("EfficientNetV2B0", 32, True),
    "ConvNeXtTiny": ("ConvNeXtTiny", 32, True),
}
#: The methods the goal excludes: guided backprop is defined by the ReLU's backward pass, and
#: Grad-CAM for several inputs needs a model with several inputs.
EXCLUDED = ("guided_backprop", "guided_grad_cam", "grad_cam.multi_input")
#: Constructor arguments that keep the sampling methods cheap.
CHEAP = {"smoothgrad": {"augment_by_n": 4}, "integrated_gradients": {"steps": 4}}
WORKS = "works"
#: Finite and non-zero, but CLRP's or SGLRP's target and dual maps cancel on these random
#: weights (``sglrp.ContrastLostWarning``): what is left is rounding, not evidence.
CANCELS = "works; contrast cancels"
MARK = "<!-- applications-matrix -->"


def bounds(name: str) -> tuple[float, float]:
    """The range of the images the family takes: raw pixels, or preprocessed to [-1, 1]."""
    return (0.0, 255.0) if FAMILIES[name][2] else (-1.0, 1.0)


def images(name: str, n: int, seed: int) -> np.ndarray:
    size = FAMILIES[name][1]
    low, high = bounds(name)
    return np.random.default_rng(seed).uniform(low, high, (n, size, size, 3)).astype(np.float32)


def build(name: str):
    """The family with random weights, batch norms calibrated on a batch of images (VGG: its
    kernels; ConvNeXt's layer norms keep its activations of order one)."""
    import tensorflow as tf

    cls, size, _ = FAMILIES[name]
    tf.keras.utils.set_random_seed(0)
    model = getattr(tf.keras.applications, cls)(
        weights=None, input_shape=(size, size, 3), classes=10
    )
    norms = [
        layer for layer in _flat(model) if isinstance(layer, tf.keras.layers.BatchNormalization)
    ]
    if norms:
        for layer in norms:
            layer.momentum = 0.0
        model(images(name, 16, seed=1), training=True)
        for layer in norms:
            layer.momentum = 0.99
    elif name.startswith("VGG"):  # kernels scaled to unit output variance, layer by layer
        x = images(name, 16, seed=1)
        for layer in _flat(model)[:-1]:
            if hasattr(layer, "kernel") and layer.name != "predictions":
                std = float(np.std(tf.keras.Model(model.inputs, layer.output)(x)))
                layer.set_weights([layer.get_weights()[0] / std, *layer.get_weights()[1:]])
    _unit_logits(model, images(name, 16, seed=1))
    return model


def _unit_logits(model, x) -> None:
    """The classifier scaled so that the logits have unit spread, as a trained net's: a random
    net's logits can differ by hundreds (EfficientNetV2B0's do), and a softmax saturated in
    float32 makes SGLRP's heads ``y_t (1 - y_t)`` and ``y_t y_n`` exactly 0."""
    import tensorflow as tf

    top = [layer for layer in _flat(model) if hasattr(layer, "kernel")][-1]
    features = np.asarray(tf.keras.Model(model.inputs, top.input)(x), np.float64)
    kernel, *bias = top.get_weights()
    std = float(np.std(features @ kernel + (bias[0] if bias else 0)))
    if std > 1:
        top.set_weights([w / std for w in top.get_weights()])


def _flat(model) -> list:
    import tensorflow as tf

    out = []
    for layer in model.layers:
        out.extend(_flat(layer) if isinstance(layer, tf.keras.Model) else [layer])
    return out


def cell(method: str, model, x, low: float, high: float, log=None, notes=None) -> str:
    """``works`` or the refusal's first sentence; any other error is raised. CLRP's and SGLRP's
    map size as a share of the target map's (L1 norms) goes to ``log`` and ``notes[method]``."""
    import sglrp

    try:
        analyzer = sglrp.create_analyzer(method, model, low=low, high=high, **CHEAP.get(method, {}))
    except ValueError as error:
        return "refused: " + _reason(str(error))
    with analyzer, warnings.catch_warnings():
        warnings.simplefilter("ignore", sglrp.ContrastLostWarning)
        t = target(analyzer.predict_logits(x))
        r = analyzer.analyze(x, target=t)
        if hasattr(analyzer, "analyze_target"):
            size = np.abs(analyzer.analyze_target(x, target=t).astype(np.float64)).sum()
            left = float(np.abs(r.astype(np.float64)).sum() / size)
            if notes is not None:
                notes[method] = float(f"{left:.2e}")
            if log:
                log(f"  {method}: the map is {left:.2e} of the target map")
    if not np.isfinite(r).all():
        return "not finite"
    if not np.abs(r).sum() > 0:
        return "all zero"
    return CANCELS if getattr(analyzer, "contrast_lost", None) else WORKS


def target(logits: np.ndarray) -> np.ndarray:
    """The predicted class; where the random model's softmax saturates (``y_t = 1`` in float32)
    the second most likely class. (Kept so that the rows stay comparable: since the head takes
    ``1 - y_t`` from the other classes' probabilities it is no longer zero there.)"""
    z = logits.astype(np.float32)
    order = np.argsort(-z, axis=1)
    y = np.exp(z - z.max(1, keepdims=True))
    y_top = (y.max(1) / y.sum(1)).astype(np.float32)
    return np.where(y_top == np.float32(1), order[:, 1], order[:, 0])


def _reason(message: str) -> str:
    """The refusal without the list of other methods, on one line."""
    message = message.split(" Methods defined for this model")[0]
    message = message.split(" No method of sglrp")[0]
    return " ".join(message.split())


def row(name: str, methods=None, log=None, notes=None) -> dict:
    """method -> cell for the family ``name``; ``notes`` as in :func:`cell`."""
    import sglrp

    methods = methods or sglrp.available_methods()
    model = build(name)
    x = images(name, 1, seed=2)
    low, high = bounds(name)
    out = {}
    for method in methods:
        start = time.perf_counter()
        out[method] = cell(method, model, x, low, high, log, notes)
        if log:
            log(f"{name} {method}: {out[method][:80]} ({time.perf_counter() - start:.0f} s)")
    return out


def table(results: dict, methods: list) -> str:
    """The Markdown table: one row per family, one column per method; refusals footnoted."""
    reasons: list[str] = []
    lines = [
        "| family | " + " | ".join(f"`{m}`" for m in methods) + " |",
        "|---" * (len(methods) + 1) + "|",
    ]
    for name in FAMILIES:
        if name not in results:
            lines.append(f"| {name} | " + " | ".join("not run" for _ in methods) + " |")
            continue
        cells = []
        for method in methods:
            value = results[name].get(method, "not run")
            if value == WORKS:
                cells.append("✓")
            elif value == CANCELS:
                cells.append("✓ᶜ")
            elif value.startswith("refused: "):
                reason = value[len("refused: ") :]
                reason = re.sub(r"layer '[^']*' \(", "layer (", reason)  # names of the family's
                reason = re.sub(r"; '[^']*' has one", "; the model has one", reason)  # own
                if reason not in reasons:
                    reasons.append(reason)
                cells.append(f"✗{reasons.index(reason) + 1}")
            else:
                cells.append(value)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"{i}. {reason}" for i, reason in enumerate(reasons, 1))
    return "\n".join(lines)


def write_readme(path: str, text: str) -> None:
    with open(path, encoding="utf-8") as f:
        readme = f.read()
    parts = readme.split(MARK)
    if len(parts) != 3:
        raise SystemExit(f"{path} needs two lines {MARK} around the table")
    with open(path, "w", encoding="utf-8") as f:
        f.write(parts[0] + MARK + "\n" + text + "\n" + MARK + parts[2])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default="benchmarks/applications-matrix-keras3.json")
    parser.add_argument("--readme", help="rewrite the table between the markers of this file")
    parser.add_argument("--methods", help="comma-separated: only these cells, the others kept")
    parser.add_argument(
        "--only",
        nargs="*",
        help="these families, the others kept from --json (none: only --readme)",
    )
    args = parser.parse_args(argv)
    import sglrp

    methods = None
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = sorted(set(methods) - set(sglrp.available_methods()))
        if unknown or not methods:
            parser.error(f"unknown methods {unknown}; valid: {sglrp.available_methods()}")
    unknown = sorted(set(args.only or ()) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; valid: {list(FAMILIES)}")
    results, contrast = {}, {}
    if os.path.exists(args.json):
        with open(args.json, encoding="utf-8") as f:
            recorded = json.load(f)
        results, contrast = recorded["results"], recorded.get("contrast_left", {})
    for name in list(FAMILIES) if args.only is None else args.only:
        notes: dict = {}
        cells = row(name, methods, log=lambda s: print(s, file=sys.stderr, flush=True),
                    notes=notes)
        results[name] = {**results.get(name, {}), **cells}
        contrast[name] = {**contrast.get(name, {}), **notes}
        with open(args.json, "w", encoding="utf-8") as f:  # after every family
            json.dump({"engine": sglrp.engine, "results": results, "contrast_left": contrast},
                      f, indent=1, sort_keys=True)
    if args.readme:
        write_readme(args.readme, table(results, sglrp.available_methods()))


if __name__ == "__main__":
    main()
