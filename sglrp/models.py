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
