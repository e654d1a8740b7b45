"""``keras.applications`` architectures with weights from a seeded NumPy generator per layer.

Keras 2.14 and Keras 3 build the same models here (measured: the same logits, to the last
bit, for all six): the layer names are Keras' own (counters reset by ``clear_session``; ``/``
read as ``_``) and every weight is drawn from a generator seeded by the layer's name and the
weight's position in the layer, so the values depend neither on Keras' random initializers
nor on the order in which layers are built. Kernels are He-normal over their fan-in and batch
normalizations get statistics near (0, 1), so activations stay finite without data (ResNet50's
logits span ~1e3, the others' ~1-10). Imports no sglrp: usable in any environment.
"""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf

applications = tf.keras.applications
layers = tf.keras.layers

#: name -> (constructor, input size): the smallest inputs the architectures accept.
ARCHITECTURES = {
    "vgg16": (applications.VGG16, 32),
    "vgg19": (applications.VGG19, 32),
    "resnet50": (applications.ResNet50, 32),
    "mobilenetv2": (applications.MobileNetV2, 32),
    "densenet121": (applications.DenseNet121, 32),
    "inceptionv3": (applications.InceptionV3, 75),
}
N_CLASSES = 10


@contextlib.contextmanager
def floatx(dtype: str):
    """Build layers in ``dtype`` (``"float64"`` for exact comparisons).

    Keras 3 fixes its global dtype policy at the first layer it builds, from ``floatx``: both
    are set.
    """
    before = tf.keras.backend.floatx(), tf.keras.mixed_precision.global_policy()
    tf.keras.backend.set_floatx(dtype)
    tf.keras.mixed_precision.set_global_policy(dtype)
    try:
        yield
    finally:
        tf.keras.backend.set_floatx(before[0])
        tf.keras.mixed_precision.set_global_policy(before[1])


def _role(variable) -> str:
    # Keras 2: "conv1_conv/kernel:0"; Keras 3: "kernel" (its path is "conv1_conv/kernel").
    return variable.name.split("/")[-1].split(":")[0]


def _draw(rng, layer, role: str, shape: tuple) -> np.ndarray:
    if role in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape)
    if role in ("beta", "moving_mean", "bias"):
        return rng.normal(0.0, 0.1, shape)
    if role in ("kernel", "depthwise_kernel", "pointwise_kernel"):
        depthwise = role == "depthwise_kernel" or isinstance(layer, layers.DepthwiseConv2D)
        fan_in = int(np.prod(shape[:-2] if depthwise else shape[:-1]))
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    raise ValueError(f"no rule to draw weight {role!r} of layer {layer.name!r}")


def flat_layers(model) -> list:
    out = []
    for layer in model.layers:
        out.extend(flat_layers(layer) if isinstance(layer, tf.keras.Model) else [layer])
    return out


def seed_weights(model, seed: int = 0) -> None:
    """Set every weight of ``model`` from a generator seeded by ``seed`` and the layer name."""
    for layer in flat_layers(model):
        values = []
        for index, variable in enumerate(layer.weights):
            # DenseNet's "conv1/conv" on Keras 2 is "conv1_conv" on Keras 3
            name = layer.name.replace("/", "_")
            rng = np.random.default_rng([seed, index, *name.encode()])
            values.append(_draw(rng, layer, _role(variable), tuple(variable.shape)))
        if values:
            layer.set_weights(values)


def application(name: str, dtype: str = "float32", seed: int = 0, softmax: bool = False):
    """``keras.applications`` model ``name`` with 10 classes and seeded weights.

    It outputs logits, or probabilities with ``softmax=True`` (the applications' default).
    """
    constructor, size = ARCHITECTURES[name]
    tf.keras.backend.clear_session()  # Keras' layer-name counters start again
    with floatx(dtype):
        model = constructor(
            weights=None,
            input_shape=(size, size, 3),
            classes=N_CLASSES,
            classifier_activation="softmax" if softmax else None,
        )
    seed_weights(model, seed)
    return model


def transfer(dtype: str = "float32", seed: int = 0, n_classes: int = 5):
    """A MobileNetV2 base (no top, 32x32) nested in a Sequential with a new head, seeded."""
    tf.keras.backend.clear_session()
    with floatx(dtype):
        base = applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
        model = tf.keras.Sequential(
            [
                tf.keras.Input((32, 32, 3)),
                base,
                layers.GlobalAveragePooling2D(name="gap"),
                layers.Dropout(0.2, name="dropout"),
                layers.Dense(n_classes, name="head"),
            ],
            name="transfer",
        )
    seed_weights(model, seed)
    return model


def images(model, n: int, seed: int = 0) -> np.ndarray:
    """``n`` inputs for ``model``, uniform in [-1, 1], in the model input's dtype."""
    shape = (n, *tuple(model.inputs[0].shape)[1:])
    dtype = tf.as_dtype(model.inputs[0].dtype).as_numpy_dtype
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(dtype)
