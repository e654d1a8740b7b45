"""Inputs of a run: image paths, decoding to the model's size, batches of preprocessed images."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageError
from .model import ModelInfo

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "read_image", "load_input", "Batch", "iter_batches"]

#: File suffixes taken from a directory (files named on the command line are always tried).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Files as given and the image files directly inside directories (sorted, not recursive).

    Paths that do not exist are kept: reading them reports the problem. Duplicates are dropped.
    """
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir()
                              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(path)
    seen: set[str] = set()
    unique = []
    for path in out:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique



def read_image(path, size: tuple, channels: int, max_megapixels: float = 50.0) -> np.ndarray:
    """Read one image as uint8 (H, W, channels), resized plainly (bilinear, antialiased).

    Grey, palette, RGBA and other modes are converted (``channels=3``: RGB, alpha dropped;
    ``channels=1``: PIL's grey conversion).

    Raises
    ------
    ImageError
        If the file is missing, not an image, unreadable, or larger than ``max_megapixels``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError("not a file" if path.exists() else "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decompression-bomb and palette warnings
            image = Image.open(path)
            return _decode(image, size, channels, max_megapixels)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (or an unsupported format)") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"image too large: {err}") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(f"cannot read image: {err}") from None


def _decode(image, size: tuple, channels: int, max_megapixels: float) -> np.ndarray:
    from PIL import Image

    with image:
        megapixels = image.width * image.height / 1e6
        if megapixels > max_megapixels:
            raise ImageError(f"image too large: {image.width}x{image.height} ({megapixels:.1f} "
                             f"megapixels > {max_megapixels:g}, see --max-megapixels)")
        if image.mode in ("RGBA", "LA", "PA") or image.mode.startswith("I"):
            image = _flatten_mode(image)
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(image, np.uint8).reshape(size[0], size[1], channels)


def _flatten_mode(image):
    """Drop the alpha channel; map 16/32-bit grey to 8 bits by its maximum value."""
    from PIL import Image

    if image.mode in ("RGBA", "PA"):
        return image.convert("RGBA").convert("RGB")
    if image.mode == "LA":
        return image.convert("L")
    array = np.asarray(image, np.float64)  # I, I;16 ...: integer grey
    top = 65535.0 if array.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(array / top * 255, 0, 255).round().astype(np.uint8), "L")


def load_input(path, info: ModelInfo, max_megapixels: float = 50.0) -> np.ndarray:
    """One image as the model input (H, W, C) float32, preprocessed exactly as the command does."""
    image = read_image(path, info.size, info.channels, max_megapixels)
    return info.preprocess(image[None])[0]


@dataclass
class Batch:
    """Images read together: the good ones (indices, uint8 pixels, model input) and failures."""

    indices: list
    pixels: np.ndarray | None
    x: np.ndarray | None
    errors: list  # [(index, message)]


def iter_batches(paths: Sequence[Path], indices: Sequence[int], info: ModelInfo,
                 batch_size: int, max_megapixels: float = 50.0) -> Iterator[Batch]:
    """Read and preprocess ``paths[i]`` for ``i`` in ``indices``, ``batch_size`` at a time."""
    for start in range(0, len(indices), batch_size):
        good, pixels, errors = [], [], []
        for i in indices[start:start + batch_size]:
            try:
                pixels.append(read_image(paths[i], info.size, info.channels, max_megapixels))
                good.append(i)
            except ImageError as err:
                errors.append((i, str(err)))
        if good:
            stacked = np.stack(pixels)
            yield Batch(good, stacked, np.asarray(info.preprocess(stacked), np.float32), errors)
        else:
            yield Batch([], None, None, errors)
