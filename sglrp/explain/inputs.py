"""Inputs of a run: image paths, decoding to the model's size, batches of preprocessed images.

Each image file is opened once per batch: its content is hashed (SHA-256, part of the run
signature, :mod:`sglrp.explain.signature`) and decoded from the same open file, so the hash
recorded with a map is the hash of the bytes the map was computed from.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageError
from .model import ModelInfo

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "read_image", "read_input", "load_input", "Batch",
           "read_batch", "iter_batches"]

#: File suffixes taken from a directory (files named on the command line are always tried).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
_CHUNK = 1 << 20


def expand_inputs(items: Sequence[str]) -> list[str]:
    """Files as given and the image files directly inside directories (sorted, not recursive).

    Paths are returned as given (a file in a given directory: ``os.path.join(directory, name)``),
    so that the manifest names them as the user did. Paths that do not exist are kept: reading
    them reports the problem. Duplicates (by absolute path) are dropped.
    """
    out: list[str] = []
    for item in map(str, items):
        if os.path.isdir(item):
            names = sorted(p.name for p in Path(item).iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            out.extend(os.path.join(item, name) for name in names)
        else:
            out.append(item)
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
    return read_input(path, size, channels, max_megapixels)[0]


def read_input(path, size: tuple, channels: int,
               max_megapixels: float = 50.0) -> tuple[np.ndarray, str]:
    """:func:`read_image`, and ``"sha256:<hex>"`` of the file content it decoded.

    ``path`` may also be an open binary file (e.g. ``io.BytesIO`` of a file's content, as a
    distributed run receives it), read from its start.

    Raises
    ------
    ImageError
        As :func:`read_image`; its ``input_sha256`` is the content's hash when the file could
        be read but not decoded, else ``None``.
    """
    from PIL import Image, UnidentifiedImageError

    if hasattr(path, "read"):
        source = contextlib.nullcontext(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise ImageError("not a file" if path.exists() else "no such file")
        source = None
    sha = None
    try:
        with source or open(path, "rb") as f:
            h = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                h.update(chunk)
            sha = f"sha256:{h.hexdigest()}"
            f.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # decompression-bomb and palette warnings
                return _decode(Image.open(f), size, channels, max_megapixels), sha
    except ImageError as err:
        err.input_sha256 = sha
        raise
    except UnidentifiedImageError:
        message = "not an image (or an unsupported format)"
    except Image.DecompressionBombError as err:
        message = f"image too large: {err}"
    except (OSError, ValueError, SyntaxError) as err:
        message = f"cannot read image: {err}"
    err = ImageError(message)
    err.input_sha256 = sha
    raise err


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
    """Images read together: the good ones (indices, uint8 pixels, model input, content hashes)
    and the failures ``(index, message, content hash or None)``."""

    indices: list
    pixels: np.ndarray | None
    x: np.ndarray | None
    errors: list  # [(index, message, input_sha256)]
    input_sha256: list = field(default_factory=list)


def read_batch(paths: Sequence, indices: Sequence[int], info: ModelInfo,
               max_megapixels: float = 50.0) -> Batch:
    """Read, hash and preprocess ``paths[i]`` (paths or open files) for ``i`` in ``indices``."""
    good, pixels, hashes, errors = [], [], [], []
    for i in indices:
        try:
            image, sha = read_input(paths[i], info.size, info.channels, max_megapixels)
        except ImageError as err:
            errors.append((i, str(err), getattr(err, "input_sha256", None)))
            continue
        good.append(i)
        pixels.append(image)
        hashes.append(sha)
    if not good:
        return Batch([], None, None, errors, [])
    stacked = np.stack(pixels)
    return Batch(good, stacked, np.asarray(info.preprocess(stacked), np.float32), errors, hashes)


def iter_batches(paths: Sequence, indices: Sequence[int], info: ModelInfo,
                 batch_size: int, max_megapixels: float = 50.0) -> Iterator[Batch]:
    """:func:`read_batch` over ``indices``, ``batch_size`` at a time."""
    for start in range(0, len(indices), batch_size):
        yield read_batch(paths, indices[start:start + batch_size], info, max_megapixels)
