"""Models that build identically in Keras 2.14 (``tf.keras``) and Keras 3, for engine equality.

A model is a *recipe*: plain data (JSON-able dicts), one entry per layer with its class, the
configuration keys both Keras versions understand and the names of the layers it reads. Weights
are drawn from a NumPy generator seeded by the layer's name, so both environments build the same
numbers without storing them. ``make_engine_reference.py`` (TF 2.14 + innvestigate) writes the
reference maps of today's engine; ``test_engine_equality.py`` (Keras 3) rebuilds the models from
the same recipes and compares.

The ``keras.applications`` architectures enter as recipes too: their canonized form (nested
models flattened, batch normalization folded, input padding merged; ``sglrp/canonize.py``) is
written down once in the TF 2.14 environment and stored with the reference maps.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

#: Configuration keys carried from a layer's ``get_config()`` into a recipe, per class.
CONFIG_KEYS = {
    "Dense": ("units", "activation", "use_bias"),
    "Conv1D": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "Conv2D": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "DepthwiseConv2D": (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "SeparableConv2D": (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "dilation_rate",
        "activation",
        "use_bias",
    ),
    "MaxPooling1D": ("pool_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling1D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "GlobalAveragePooling1D": ("keepdims",),
    "GlobalAveragePooling2D": ("keepdims",),
    "GlobalMaxPooling1D": ("keepdims",),
    "GlobalMaxPooling2D": ("keepdims",),
    "ZeroPadding2D": ("padding",),
    "Cropping2D": ("cropping",),
    "Add": (),
    "Concatenate": ("axis",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "Flatten": (),
    "Reshape": ("target_shape",),
    "Dropout": ("rate",),
}


def _tuples(value):
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def _plain(value):
    """JSON-able copy (tuples -> lists, NumPy scalars -> floats)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def layer(name, cls, inbound, **config) -> dict:
    return {"name": name, "class": cls, "config": config, "inbound": list(inbound)}


def build(recipe: dict, keras, dtype: str = "float32"):
    """The functional model of ``recipe`` in the given ``keras`` (tf.keras 2.14 or Keras 3).

    Keras 3 refuses ``/`` in layer names (DenseNet121's ``conv1/conv``); there it becomes ``.``.
    """
    keras2 = int(getattr(keras, "__version__", "2").split(".")[0]) < 3  # tf.keras 2.14: none
    tensors = {}
    inputs = []
    for spec in recipe["inputs"]:
        x = keras.Input(shape=tuple(spec["shape"]), name=spec["name"], dtype=dtype)
        tensors[spec["name"]] = x
        inputs.append(x)
    for spec in recipe["layers"]:
        config = {k: _tuples(v) for k, v in spec["config"].items()}
        name = spec["name"] if keras2 else spec["name"].replace("/", ".")  # Keras 3 refuses "/"
        layer_ = getattr(keras.layers, spec["class"])(name=name, dtype=dtype, **config)
        args = [tensors[n] for n in spec["inbound"]]
        tensors[spec["name"]] = layer_(args if len(args) > 1 else args[0])
    return keras.Model(inputs, tensors[recipe["output"]], name=recipe["name"])


def _key(name: str) -> str:
    """A layer's name as both Keras spell it (Keras 3 writes ``/`` as ``.``)."""
    return name.replace("/", ".")


def set_weights(model, seed: int = 0, gains: dict | None = None) -> None:
    """Weights from a generator seeded by (seed, layer name): He-scaled kernels, small biases.

    ``gains`` scales the weights of some layers (by name): a recipe keeps the logits of a deep
    net without batch normalization in a range where the softmax does not saturate.
    """
    gains = {_key(name): gain for name, gain in (gains or {}).items()}
    for lay in model.layers:
        weights = lay.get_weights()
        if not weights:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(_key(lay.name).encode())])
        depthwise = type(lay).__name__ in ("DepthwiseConv2D", "SeparableConv2D")
        new = []
        for i, w in enumerate(weights):
            if w.ndim == 1:
                new.append(rng.normal(0.0, 0.05, w.shape))
                continue
            if depthwise and i == 0:  # (kh, kw, cin, multiplier): each output sees kh*kw inputs
                fan_in = int(np.prod(w.shape[:-2]))
            else:
                fan_in = int(np.prod(w.shape[:-1]))
            new.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), w.shape))
        gain = gains.get(_key(lay.name), 1.0)
        lay.set_weights([(v * gain).astype(w.dtype) for v, w in zip(new, weights)])


def describe(model) -> dict:
    """The recipe of a flat functional Keras 2 model (one call per layer), e.g. a canonized one."""
    config = model.get_config()
    inputs, layers_ = [], []
    for spec in config["layers"]:
        cls = spec["class_name"]
        if cls == "InputLayer":
            shape = spec["config"]["batch_input_shape"][1:]
            inputs.append({"name": spec["name"], "shape": _plain(shape)})
            continue
        if cls not in CONFIG_KEYS:
            raise ValueError(f"layer {spec['name']!r}: class {cls} has no recipe")
        (node,) = spec["inbound_nodes"]
        keys = CONFIG_KEYS[cls]
        kept = {k: _plain(spec["config"][k]) for k in keys if k in spec["config"]}
        layers_.append(layer(spec["name"], cls, [entry[0] for entry in node], **kept))
    (output,) = config["output_layers"]
    return {"name": model.name, "inputs": inputs, "layers": layers_, "output": output[0]}


def dumps(recipe: dict) -> str:
    return json.dumps(recipe, separators=(",", ":"))


# -- the small recipes -----------------------------------------------------------------------
def dense_net() -> dict:
    """tests/conftest.py's dense_net: (6,) -> Dense 8 relu -> Dense 7 relu -> Dense 5."""
    return {
        "name": "dense_net",
        "inputs": [{"name": "x", "shape": [6]}],
        "layers": [
            layer("fc1", "Dense", ["x"], units=8, activation="relu"),
            layer("fc2", "Dense", ["fc1"], units=7, activation="relu"),
            layer("logits", "Dense", ["fc2"], units=5),
        ],
        "output": "logits",
    }


def linear_hidden_net() -> dict:
    """dense_net whose second layer is linear: the top layer's z+ sees negative inputs."""
    recipe = dense_net()
    recipe["name"] = "linear_hidden_net"
    recipe["layers"][1]["config"]["activation"] = "linear"
    return recipe


def conv_net() -> dict:
    """tests/conftest.py's conv_net: (8, 8, 2) -> Conv 3x3x4 relu -> MaxPool 2 -> Conv 2x2x3
    relu -> Flatten -> Dense 5."""
    return {
        "name": "conv_net",
        "inputs": [{"name": "x", "shape": [8, 8, 2]}],
        "layers": [
            layer("conv1", "Conv2D", ["x"], filters=4, kernel_size=3, activation="relu"),
            layer("pool1", "MaxPooling2D", ["conv1"], pool_size=2),
            layer("conv2", "Conv2D", ["pool1"], filters=3, kernel_size=2, activation="relu"),
            layer("flatten", "Flatten", ["conv2"]),
            layer("logits", "Dense", ["flatten"], units=5),
        ],
        "output": "logits",
    }


def mixed_net() -> dict:
    """Two inputs and every supported layer type: strided and padded convolutions, depthwise and
    separable convolutions, ReLU6, Add, Concatenate, average and max pooling, cropping, padding,
    Reshape, Dropout, Conv1D."""
    L = layer
    return {
        "name": "mixed_net",
        "inputs": [{"name": "image", "shape": [12, 12, 3]}, {"name": "sequence", "shape": [10, 2]}],
        "layers": [
            L("pad", "ZeroPadding2D", ["image"], padding=[[1, 0], [0, 1]]),
            L("c1", "Conv2D", ["pad"], filters=6, kernel_size=3, activation="relu"),
            L("c2", "Conv2D", ["c1"], filters=6, kernel_size=3, strides=2, padding="same"),
            L("r2", "ReLU", ["c2"], max_value=6.0),
            L("dw", "DepthwiseConv2D", ["r2"], kernel_size=3, padding="same", depth_multiplier=2),
            L("rdw", "Activation", ["dw"], activation="relu"),
            L("pw", "Conv2D", ["rdw"], filters=6, kernel_size=1),
            L("add", "Add", ["pw", "r2"]),
            L("radd", "ReLU", ["add"]),
            L(
                "sep",
                "SeparableConv2D",
                ["radd"],
                filters=4,
                kernel_size=3,
                padding="same",
                activation="relu",
            ),
            L("avg", "AveragePooling2D", ["sep"], pool_size=2),
            L("crop", "Cropping2D", ["radd"], cropping=[[1, 1], [1, 1]]),
            L("max", "MaxPooling2D", ["crop"], pool_size=2, strides=1),
            L("cat", "Concatenate", ["avg", "max"], axis=-1),
            L("c3", "Conv2D", ["cat"], filters=5, kernel_size=1, activation="relu"),
            L("gap", "GlobalAveragePooling2D", ["c3"]),
            L("gmp", "GlobalMaxPooling2D", ["cat"]),
            L(
                "s1",
                "Conv1D",
                ["sequence"],
                filters=4,
                kernel_size=3,
                padding="same",
                activation="relu",
            ),
            L("s2", "Conv1D", ["s1"], filters=4, kernel_size=2, strides=2, activation="relu"),
            L("sflat", "Flatten", ["s2"]),
            L("feat", "Concatenate", ["gap", "gmp", "sflat"]),
            L("drop", "Dropout", ["feat"], rate=0.5),
            L("fc", "Dense", ["drop"], units=12, activation="relu"),
            L("shape", "Reshape", ["fc"], target_shape=[3, 4]),
            L("flat", "Flatten", ["shape"]),
            L("logits", "Dense", ["flat"], units=7),
        ],
        "output": "logits",
    }


SMALL = {
    "dense_net": dense_net,
    "linear_hidden_net": linear_hidden_net,
    "conv_net": conv_net,
    "mixed_net": mixed_net,
}
