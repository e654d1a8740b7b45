"""Real model loading for the examples and the command line: Keras VGG16 with ImageNet weights.

Nothing is downloaded silently into a random-weight model: without the weights (offline, not
in the Keras cache) loading stops with :class:`WeightsUnavailableError` saying how to get them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGENET_CAFFE_LOW",
    "IMAGENET_CAFFE_HIGH",
    "WeightsUnavailableError",
    "load_vgg16",
    "preprocess_caffe",
    "load_images",
]

#: Bounds of caffe-preprocessed images (RGB -> BGR minus the ImageNet mean): 0 - 123.68 and
#: 255 - 103.939, the values the original example used.
IMAGENET_CAFFE_LOW, IMAGENET_CAFFE_HIGH = -123.68, 151.061
VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


class WeightsUnavailableError(OSError):
    """Pretrained weights are neither on disk nor downloadable."""


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def load_vgg16(weights: str | os.PathLike | None = "imagenet", input_shape=(224, 224, 3)):
    """Keras VGG16 with its softmax: ``"imagenet"`` (Keras cache or download), a file path, or
    ``None`` for random weights (tests and benchmarks only).

    Raises
    ------
    WeightsUnavailableError
        If ImageNet weights are asked for and cannot be found or downloaded.
    """
    import tensorflow as tf

    if weights is None or weights == "imagenet":
        try:
            return tf.keras.applications.VGG16(weights=weights, input_shape=input_shape)
        except Exception as err:  # Keras raises a plain Exception on a failed download
            if weights is None:
                raise
            raise WeightsUnavailableError(
                "VGG16 ImageNet weights are not in the Keras cache "
                f"({keras_cache_dir() / VGG16_WEIGHTS_FILE}) and could not be downloaded "
                f"({err}). On a machine with network run "
                "`python -c 'import tensorflow as tf; tf.keras.applications.VGG16()'` and copy "
                f"{VGG16_WEIGHTS_FILE} here, then pass its path (--weights PATH) or put it in "
                "the Keras cache."
            ) from None
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {str(path)!r} does not exist")
    model = tf.keras.applications.VGG16(weights=None, input_shape=input_shape)
    model.load_weights(str(path))
    return model


def preprocess_caffe(images) -> np.ndarray:
    """RGB images in [0, 255] to VGG16's input: BGR, ImageNet mean subtracted."""
    images = np.asarray(images, np.float32)[..., ::-1]
    return images - np.array([103.939, 116.779, 123.68], np.float32)


def load_images(paths, size=(224, 224)) -> np.ndarray:
    """Read RGB images and resize them plainly to ``size``; values in [0, 255], float32."""
    from skimage import io, transform

    out = []
    for path in paths:
        image = io.imread(path)
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        image = image[..., :3]
        resized = transform.resize(image, size, preserve_range=True, anti_aliasing=True)
        out.append(resized.astype(np.float32))
    return np.stack(out)


#: Per-channel mean and std of ``keras.applications`` preprocessing, in the order the channels
#: have after it (caffe: BGR, 0-255 scale; torch: RGB, 0-1 scale; tf: x / 127.5 - 1).
_PREPROCESSING = {
    "caffe": (1.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    "tf": (1.0 / 127.5, (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
    "torch": (1.0 / 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def preprocessing_bounds(mode: str) -> tuple[float, float]:
    """Input range ``(low, high)`` of images in [0, 255] after ``keras.applications``
    preprocessing, for the ``low``/``high`` of the bounded rules (LRP, CLRP, SGLRP).

    Parameters
    ----------
    mode : {"caffe", "tf", "torch"}
        The ``mode`` of ``keras.applications.imagenet_utils.preprocess_input``: ``"caffe"``
        (VGG16/19, ResNet50: BGR minus the ImageNet mean), ``"tf"`` (MobileNetV2, InceptionV3:
        scaled to [-1, 1]), ``"torch"`` (DenseNet: per-channel ``(x / 255 - mean) / std``).

    Returns
    -------
    tuple of float
        The smallest and the largest value over all channels of a preprocessed black (0) and
        white (255) image; caffe gives the original example's ``(-123.68, 151.061)``.

    Raises
    ------
    KeyError
        If ``mode`` is unknown; the message lists the valid modes.
    """
    try:
        factor, mean, std = _PREPROCESSING[mode]
    except (KeyError, TypeError):
        raise KeyError(
            f"unknown preprocessing mode {mode!r}; valid modes: {', '.join(_PREPROCESSING)}"
        ) from None
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    low = (0.0 * factor - mean) / std
    high = (255.0 * factor - mean) / std
    return float(low.min()), float(high.max())
