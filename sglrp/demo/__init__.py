"""Embedded demo: two-digit scenes and the small CNN trained on them.

The digit analogue of "a zebra and an elephant in one photo": every scene
holds two different handwritten digits from scikit-learn's bundled
``load_digits`` data, and the shipped model splits its softmax between them.
"""

from sglrp.demo.model import (
    ARCHITECTURES,
    CLASS_NAMES,
    DEMO_HIGH,
    DEMO_LOW,
    INPUT_SHAPE,
    METRICS_PATH,
    VIT_BLOCKS,
    WEIGHTS_PATH,
    build_model,
    load_demo_model,
    load_weights_h5,
    metrics_file,
    save_weights_h5,
    weights_file,
)
from sglrp.demo.scenes import Scenes, Singles, digit_images, digit_pool, make_scenes, make_singles

__all__ = [
    "ARCHITECTURES",
    "CLASS_NAMES",
    "DEMO_HIGH",
    "DEMO_LOW",
    "INPUT_SHAPE",
    "METRICS_PATH",
    "VIT_BLOCKS",
    "WEIGHTS_PATH",
    "Scenes",
    "Singles",
    "build_model",
    "digit_images",
    "digit_pool",
    "load_demo_model",
    "load_weights_h5",
    "metrics_file",
    "save_weights_h5",
    "weights_file",
    "make_scenes",
    "make_singles",
]
