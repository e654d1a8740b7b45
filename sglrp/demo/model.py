"""The small digit-scene models that ship with the package: the demo model and five others.

==================  =====================================================================
name                architecture (``Dense(10)`` logits then softmax)
==================  =====================================================================
digits_cnn          the demo model, ReLU: 3 x (Conv 3x3, max pool), Flatten, Dense(128)
dense_head          the demo model with a second dense hidden layer, ReLU: 3 x (Conv 3x3,
                    max pool), Flatten, Dense(128), Dense(128)
gap_resnet          ReLU: Conv 3x3, max pool, a residual block with batch norms (Conv, BN,
                    ReLU, Conv, BN, Add, ReLU), 2 x (max pool, Conv 3x3), global average
                    pooling: no dense hidden layer, and batch norms that canonization folds
efficientnet_mini   EfficientNet-style (Tan & Le 2019), as ``keras.applications``
                    EfficientNet builds it: ``Rescaling`` of [0, 1] to [-1, 1] inside the
                    model, a swish stem, four MBConv blocks (1x1 expansion, depthwise conv,
                    batch norms, swish, a squeeze-and-excitation ``Multiply`` gate with a
                    sigmoid, 1x1 projection, an identity skip where the shapes allow), a
                    1x1 swish top convolution, global average pooling
convnext_mini       ConvNeXt-style (Liu et al. 2022): ``Normalization`` of [0, 1] to [-1, 1]
                    inside the model, a Conv 4x4 stride-2 stem, one ConvNeXt block at 16x16
                    and two at 8x8 as ``keras.applications`` ConvNeXt builds them (7x7
                    depthwise conv, ``LayerNormalization``, ``Dense`` x4, GELU, ``Dense``,
                    Keras' own ``LayerScale``, ``Add``), a Conv 2x2 stride-2 downsampling,
                    global average pooling. The stem and the downsampling are normalised by
                    batch norms where ConvNeXt has layer norms: on these scenes a layer norm
                    there normalises each position of the black background to the same
                    vector, and the net did not learn in six epochs
vit                 a small Vision Transformer (:func:`_vit`), GELU: convolutional patch
                    embedding (two 3x3 stride-2 convolutions: 8x8 patch tokens), class
                    token, position embedding, 2 pre-norm blocks of ``MultiHeadAttention``
                    and a GELU MLP, final layer norm, the class token's features to the
                    logits
==================  =====================================================================

Each is built from code with named layers; the trained weights are stored by layer name
(:func:`save_weights_h5`), so any Keras version that builds the model can read them. The
first three have only layers that every method of both engines handles; the last three have
the layers of the networks designed after 2018, which the relevance methods of the Keras 3
engine support and the innvestigate engine refuses (``sglrp evaluate`` marks those cells).
"""

from __future__ import annotations

import pathlib

import h5py
import numpy as np
import tensorflow as tf

DEMO_LOW = 0.0
DEMO_HIGH = 1.0
INPUT_SHAPE = (32, 32, 1)
CLASS_NAMES = tuple(str(c) for c in range(10))
_HERE = pathlib.Path(__file__).parent
WEIGHTS_PATH = _HERE / "digits_cnn.weights.h5"
METRICS_PATH = _HERE / "digits_cnn.json"

__all__ = [
    "ARCHITECTURES",
    "CLASS_NAMES",
    "DEMO_HIGH",
    "DEMO_LOW",
    "INPUT_SHAPE",
    "VIT_BLOCKS",
    "METRICS_PATH",
    "WEIGHTS_PATH",
    "build_model",
    "load_demo_model",
    "load_weights_h5",
    "metrics_file",
    "save_weights_h5",
    "weights_file",
]


def _digits_cnn(layers) -> tf.keras.Model:
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


def _dense_head(layers) -> tf.keras.Model:
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
            layers.Dense(128, activation="relu", name="fc2"),
            layers.Dense(len(CLASS_NAMES), activation="softmax", name="logits"),
        ],
        name="dense_head",
    )


def _gap_resnet(layers) -> tf.keras.Model:
    image = tf.keras.Input(INPUT_SHAPE, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(image)
    skip = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(32, 3, padding="same", name="block_conv1")(skip)
    x = layers.BatchNormalization(name="block_bn1")(x)
    x = layers.ReLU(name="block_relu1")(x)
    x = layers.Conv2D(32, 3, padding="same", name="block_conv2")(x)
    x = layers.BatchNormalization(name="block_bn2")(x)
    x = layers.Add(name="block_add")([skip, x])
    x = layers.ReLU(name="block_out")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(2, name="pool3")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    logits = layers.Dense(len(CLASS_NAMES), activation="softmax", name="logits")(x)
    return tf.keras.Model(image, logits, name="gap_resnet")


def layer_scale_class():
    """Keras' own ``LayerScale`` (``x * gamma``, one ``gamma`` per channel), as ConvNeXt uses it.

    ``keras.applications`` ConvNeXt defines it in Keras 2.13+ and Keras 3 alike; the class
    is not exported, so it is imported from the module that defines it.
    """
    from keras.src.applications.convnext import LayerScale

    return LayerScale


def _mbconv(layers, x, name: str, filters_in: int, filters_out: int, expand: int,
            kernel: int, stride: int):
    """EfficientNet's inverted residual block, laid out as ``keras.applications`` does."""
    filters = filters_in * expand
    inputs = x
    if expand != 1:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_expand_bn")(x)
        x = layers.Activation("swish", name=f"{name}_expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.Activation("swish", name=f"{name}_activation")(x)
    squeezed = max(1, filters_in // 4)
    se = layers.GlobalAveragePooling2D(name=f"{name}_se_squeeze")(x)
    se = layers.Reshape((1, 1, filters), name=f"{name}_se_reshape")(se)
    se = layers.Conv2D(squeezed, 1, padding="same", activation="swish",
                       name=f"{name}_se_reduce")(se)
    se = layers.Conv2D(filters, 1, padding="same", activation="sigmoid",
                       name=f"{name}_se_expand")(se)
    x = layers.Multiply(name=f"{name}_se_excite")([x, se])
    x = layers.Conv2D(filters_out, 1, padding="same", use_bias=False,
                      name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def _efficientnet_mini(layers) -> tf.keras.Model:
    image = tf.keras.Input(INPUT_SHAPE, name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="rescaling")(image)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("swish", name="stem_activation")(x)
    x = _mbconv(layers, x, "block1a", 16, 16, expand=1, kernel=3, stride=1)
    x = _mbconv(layers, x, "block2a", 16, 24, expand=4, kernel=3, stride=2)
    x = _mbconv(layers, x, "block3a", 24, 32, expand=4, kernel=5, stride=1)
    x = _mbconv(layers, x, "block3b", 32, 32, expand=4, kernel=5, stride=1)
    x = layers.Conv2D(128, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(name="top_bn")(x)
    x = layers.Activation("swish", name="top_activation")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = layers.Dense(len(CLASS_NAMES), activation="softmax", name="logits")(x)
    return tf.keras.Model(image, logits, name="efficientnet_mini")


#: The initial layer scale of convnext_mini's blocks: 1 (ConvNeXt's 1e-6 is for deep networks
#: trained for hundreds of epochs; this three-block net trains for six).
LAYER_SCALE_INIT = 1.0


def _convnext_block(layers, x, name: str, dim: int):
    """ConvNeXt's block, laid out as ``keras.applications`` does (no stochastic depth)."""
    inputs = x
    x = layers.DepthwiseConv2D(7, padding="same", name=f"{name}_depthwise_conv")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_layernorm")(x)
    x = layers.Dense(4 * dim, name=f"{name}_pointwise_conv_1")(x)
    x = layers.Activation("gelu", name=f"{name}_gelu")(x)
    x = layers.Dense(dim, name=f"{name}_pointwise_conv_2")(x)
    x = layer_scale_class()(LAYER_SCALE_INIT, dim, name=f"{name}_layer_scale")(x)
    return layers.Add(name=f"{name}_add")([inputs, x])


def _convnext_mini(layers) -> tf.keras.Model:
    image = tf.keras.Input(INPUT_SHAPE, name="image")
    x = layers.Normalization(mean=0.5, variance=0.25, name="normalization")(image)
    x = layers.Conv2D(16, 4, strides=2, padding="same", name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = _convnext_block(layers, x, "stage0_block0", 16)
    x = layers.BatchNormalization(name="downsample1_bn")(x)
    x = layers.Conv2D(40, 2, strides=2, name="downsample1_conv")(x)
    x = _convnext_block(layers, x, "stage1_block0", 40)
    x = _convnext_block(layers, x, "stage1_block1", 40)
    x = layers.GlobalAveragePooling2D(name="head_gap")(x)
    logits = layers.Dense(len(CLASS_NAMES), activation="softmax", name="logits")(x)
    return tf.keras.Model(image, logits, name="convnext_mini")


#: ViT sizes: patch side, token width, heads, blocks, MLP width.
VIT_PATCH, VIT_DIM, VIT_HEADS, VIT_BLOCKS, VIT_MLP = 4, 48, 3, 2, 96


def _vit(layers) -> tf.keras.Model:
    """A small pre-norm ViT (Dosovitskiy et al. 2021) on the 32x32 scenes: 64 patch tokens.

    The patch embedding is a convolutional stem (Xiao et al., *Early Convolutions Help
    Transformers See Better*, NeurIPS 2021): two 3x3 stride-2 convolutions instead of one 4x4
    stride-4 one, which lets so small a ViT learn the scenes in minutes on a CPU.
    """
    from sglrp.tokens import ClassToken, PositionEmbedding

    grid = INPUT_SHAPE[0] // VIT_PATCH
    image = tf.keras.Input(INPUT_SHAPE, name="image")
    x = layers.Conv2D(VIT_DIM // 3, 3, strides=2, padding="same", name="stem_conv")(image)
    x = layers.Activation("gelu", name="stem_gelu")(x)
    x = layers.Conv2D(VIT_DIM, 3, strides=2, padding="same", name="patch_embed")(x)
    x = layers.Reshape((grid * grid, VIT_DIM), name="tokens")(x)
    x = ClassToken(name="class_token")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    for b in range(1, VIT_BLOCKS + 1):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm1")(x)
        h = layers.MultiHeadAttention(
            VIT_HEADS, VIT_DIM // VIT_HEADS, name=f"block{b}_attention"
        )(h, h)
        x = layers.Add(name=f"block{b}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm2")(x)
        h = layers.Dense(VIT_MLP, name=f"block{b}_mlp1")(h)
        h = layers.Activation("gelu", name=f"block{b}_gelu")(h)
        h = layers.Dense(VIT_DIM, name=f"block{b}_mlp2")(h)
        x = layers.Add(name=f"block{b}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = layers.Cropping1D((0, grid * grid), name="class_token_slice")(x)
    x = layers.Flatten(name="class_features")(x)
    logits = layers.Dense(len(CLASS_NAMES), activation="softmax", name="logits")(x)
    return tf.keras.Model(image, logits, name="vit")


#: name -> builder of the shipped architectures (see the module docstring).
ARCHITECTURES = {
    "digits_cnn": _digits_cnn,
    "dense_head": _dense_head,
    "gap_resnet": _gap_resnet,
    "efficientnet_mini": _efficientnet_mini,
    "convnext_mini": _convnext_mini,
    "vit": _vit,
}


def _check_name(name: str) -> str:
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(ARCHITECTURES)}")
    return name


def weights_file(name: str = "digits_cnn") -> pathlib.Path:
    """The shipped weights file of architecture ``name``."""
    return _HERE / f"{_check_name(name)}.weights.h5"


def metrics_file(name: str = "digits_cnn") -> pathlib.Path:
    """The JSON file with the training settings and held-out accuracy of ``name``."""
    return _HERE / f"{_check_name(name)}.json"


def build_model(name: str = "digits_cnn") -> tf.keras.Model:
    """Build an (untrained) digit-scene CNN.

    The first three networks only use layers that LRP rules handle directly: ReLU ``Conv2D``
    and ``Dense``, ``MaxPooling2D``, ``Flatten``, inference-mode ``BatchNormalization``
    (folded into the convolution before it by canonization), ``Add``,
    ``GlobalAveragePooling2D``; ``efficientnet_mini`` and ``convnext_mini`` add those of
    EfficientNet and ConvNeXt (see the module docstring). The ViT (``"vit"``) adds
    ``MultiHeadAttention``, ``LayerNormalization``, GELU and the token layers of
    :mod:`sglrp.tokens`; only the Keras 3 engine's relevance rules accept it. Each ends in a
    ``Dense(10, activation="softmax")`` named ``"logits"``.

    Parameters
    ----------
    name : str
        One of :data:`ARCHITECTURES`; the default is the demo model.

    Returns
    -------
    tf.keras.Model
        Model mapping ``(batch, 32, 32, 1)`` images in [0, 1] to class probabilities over
        the digits 0..9.

    Raises
    ------
    KeyError
        For an unknown name; the message lists the valid ones.
    """
    return ARCHITECTURES[_check_name(name)](tf.keras.layers)


def load_demo_model(
    weights_path: str | pathlib.Path | None = None, name: str = "digits_cnn"
) -> tf.keras.Model:
    """Build a digit-scene CNN and load its trained weights.

    Parameters
    ----------
    weights_path : str or pathlib.Path, optional
        HDF5 weights file; defaults to the shipped ``<name>.weights.h5`` next to this module.
    name : str
        The architecture (:data:`ARCHITECTURES`); the default is the demo model.

    Returns
    -------
    tf.keras.Model
        The trained model (not compiled).

    Raises
    ------
    FileNotFoundError
        If the weights file does not exist.
    """
    path = pathlib.Path(weights_path) if weights_path is not None else weights_file(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights of model {name!r} not found at {path}; create them with "
            f"`python -m sglrp.demo.train --model {name}`"
        )
    model = build_model(name)
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
            names = [getattr(w, "path", w.name) for w in layer.weights]  # Keras 3: unique path
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
