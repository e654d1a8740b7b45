"""The small digit-scene CNN that ships as the default demo model."""

from __future__ import annotations

import pathlib

import h5py
import numpy as np
import tensorflow as tf

DEMO_LOW = 0.0
DEMO_HIGH = 1.0
INPUT_SHAPE = (32, 32, 1)
CLASS_NAMES = tuple(str(c) for c in range(10))
WEIGHTS_PATH = pathlib.Path(__file__).parent / "digits_cnn.weights.h5"
METRICS_PATH = pathlib.Path(__file__).parent / "digits_cnn.json"

__all__ = [
    "CLASS_NAMES",
    "DEMO_HIGH",
    "DEMO_LOW",
    "INPUT_SHAPE",
    "METRICS_PATH",
    "WEIGHTS_PATH",
    "build_model",
    "load_demo_model",
    "load_weights_h5",
    "save_weights_h5",
]


def build_model() -> tf.keras.Sequential:
    """Build the (untrained) demo CNN.

    The network only uses layers that LRP rules handle directly: ReLU
    ``Conv2D``, ``MaxPooling2D``, ``Flatten``, ReLU ``Dense`` and a final
    ``Dense(10, activation="softmax")`` named ``"logits"``.

    Returns
    -------
    tf.keras.Sequential
        Model mapping ``(batch, 32, 32, 1)`` images in [0, 1] to class
        probabilities over the digits 0..9.
    """
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            tf.keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.MaxPooling2D(2, name="pool3"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="fc1"),
            layers.Dense(len(CLASS_NAMES), activation="softmax", name="logits"),
        ],
        name="digits_cnn",
    )


def load_demo_model(
    weights_path: str | pathlib.Path | None = None,
) -> tf.keras.Sequential:
    """Build the demo CNN and load its trained weights.

    Parameters
    ----------
    weights_path : str or pathlib.Path, optional
        HDF5 weights file; defaults to ``digits_cnn.weights.h5`` next to this
        module.

    Returns
    -------
    tf.keras.Sequential
        The trained model (not compiled).

    Raises
    ------
    FileNotFoundError
        If the weights file does not exist.
    """
    path = pathlib.Path(weights_path) if weights_path is not None else WEIGHTS_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"demo model weights not found at {path}; create them with `python -m sglrp.demo.train`"
        )
    model = build_model()
    load_weights_h5(model, path)
    return model


def _as_str(name) -> str:
    # h5py returns attribute strings as either ``bytes`` or ``str``
    return name.decode("utf8") if isinstance(name, bytes) else str(name)


def save_weights_h5(model: tf.keras.Model, path: str | pathlib.Path) -> None:
    """Write the layer weights of ``model`` to an HDF5 file, keyed by layer name.

    The layout is the classic Keras HDF5 weights layout: a root attribute
    ``layer_names``, one group per layer with an attribute ``weight_names`` and
    one dataset per weight.  Only the weights are stored (no optimizer state).

    Parameters
    ----------
    model : tf.keras.Model
        Model whose weights are written.
    path : str or pathlib.Path
        Output file; overwritten if it exists.
    """
    layers = [layer for layer in model.layers if layer.weights]
    with h5py.File(str(path), "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["tensorflow_version"] = tf.__version__.encode("utf8")
        for layer in layers:
            group = f.create_group(layer.name)
            names = [w.name for w in layer.weights]
            group.attrs["weight_names"] = [n.encode("utf8") for n in names]
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)


def load_weights_h5(model: tf.keras.Model, path: str | pathlib.Path) -> None:
    """Load weights written by :func:`save_weights_h5` into ``model``, by layer name.

    Unlike ``Model.load_weights`` on a ``.weights.h5`` file in TF 2.14 (which
    silently leaves the variables untouched when eager execution is disabled,
    as iNNvestigate requires), this assigns through ``Layer.set_weights`` and
    therefore works in both eager and graph mode.

    Parameters
    ----------
    model : tf.keras.Model
        Model with the same layer names and weight shapes.
    path : str or pathlib.Path
        HDF5 file to read.

    Raises
    ------
    ValueError
        If a layer of ``model`` is missing from the file or a shape differs.
    """
    with h5py.File(str(path), "r") as f:
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in f:
                raise ValueError(f"layer {layer.name!r} not found in {path}")
            group = f[layer.name]
            names = [_as_str(n) for n in group.attrs["weight_names"]]
            values = [np.asarray(group[n]) for n in names]
            expected = [tuple(w.shape) for w in layer.weights]
            if [v.shape for v in values] != expected:
                raise ValueError(
                    f"layer {layer.name!r}: shapes {[v.shape for v in values]} in {path} "
                    f"do not match the model's {expected}"
                )
            layer.set_weights(values)
