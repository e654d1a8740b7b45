"""Inputs of a run: image paths, decoding to the model's size, batches of preprocessed images.

Each image file is opened once per batch: its content is hashed (SHA-256, part of the run
signature, :mod:`sglrp.explain.signature`) and decoded from the same open file, so the hash
recorded with a map is the hash of the bytes the map was computed from.

Decoding gives pixels on the 0-255 scale, which ``--preprocess`` then maps to the model's input
(:mod:`sglrp.explain.preprocess`): 8-bit images as they are (uint8; palette, grey, RGBA, CMYK...
converted by PIL, alpha dropped), 16-bit grey images (PIL modes ``I;16*``, and ``I`` from a
PNG) by the format's range, ``v / 65535 * 255`` in float32, so that a dark 16-bit image stays
dark. 32-bit integer and floating-point images (modes ``I``, ``F``) have no fixed range and are
refused, naming the mode. The maps of 16-bit images carry ``"decoder":``
:data:`DECODER_16BIT` in their signature (earlier versions scaled them by their own maximum).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageError
from .model import ModelInfo

__all__ = ["IMAGE_SUFFIXES", "DECODER_16BIT", "expand_inputs", "read_image", "read_input",
           "image_decoder", "load_input", "Batch", "read_batch", "iter_batches"]

#: File suffixes taken from a directory (files named on the command line are always tried).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
_CHUNK = 1 << 20
#: The signature's ``decoder`` of 16-bit images: scaled by the format's range, 65535.
DECODER_16BIT = "16-bit/65535"
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _is_16_bit(image) -> bool:
    return image.mode in _SIXTEEN_BIT or (image.mode == "I" and image.format == "PNG")


def expand_inputs(items: Sequence[str]) -> list[str]:
    """Files as given and the image files directly inside directories (sorted, not recursive).

    Paths are returned as given (a file in a given directory: ``os.path.join(directory, name)``),
    so that the manifest names them as the user did. Paths that do not exist are kept: reading
    them reports the problem. So are the symbolic links inside a directory that lead nowhere (a
    broken link, a loop), whatever their names: reading them says so. Duplicates (by absolute
    path) are dropped.
    """
    out: list[str] = []
    for item in map(str, items):
        if os.path.isdir(item):
            names = sorted(p.name for p in Path(item).iterdir()
                           if (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
                           or (p.is_symlink() and not p.exists()))
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
    """Read one image as (H, W, channels) pixels on the 0-255 scale, resized plainly (bilinear,
    antialiased): uint8 for 8-bit images, float32 for 16-bit ones (``v / 65535 * 255``).

    Grey, palette, RGBA and other modes are converted (``channels=3``: RGB, alpha dropped;
    ``channels=1``: PIL's grey conversion).

    Raises
    ------
    ImageError
        If the file is missing, not an image, unreadable, larger than ``max_megapixels``, or a
        32-bit image (mode ``I`` or ``F``).
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
    image, sha, _ = _read(path, size, channels, max_megapixels)
    return image, sha


def _missing(path: Path) -> str:
    """Why ``path`` is not a file to read: a broken or looping link, a folder, nothing."""
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as err:
            if err.errno == errno.ELOOP:
                return "symbolic link loop"
            with contextlib.suppress(OSError):
                return f"broken symbolic link (to {os.readlink(path)!r}, which does not exist)"
            return f"broken symbolic link ({err.strerror})"
    return "not a file" if path.exists() else "no such file"


def _read(path, size: tuple, channels: int,
          max_megapixels: float) -> tuple[np.ndarray, str, str | None]:
    """:func:`read_input`, and the signature's ``decoder`` (``None`` for 8-bit images)."""
    from PIL import Image, UnidentifiedImageError

    if hasattr(path, "read"):
        source = contextlib.nullcontext(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise ImageError(_missing(path))
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
                pixels, decoder = _decode(Image.open(f), size, channels, max_megapixels)
                return pixels, sha, decoder
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


def _decode(image, size: tuple, channels: int,
            max_megapixels: float) -> tuple[np.ndarray, str | None]:
    from PIL import Image

    with image:
        megapixels = image.width * image.height / 1e6
        if megapixels > max_megapixels:
            raise ImageError(f"image too large: {image.width}x{image.height} ({megapixels:.1f} "
                             f"megapixels > {max_megapixels:g}, see --max-megapixels)")
        if _is_16_bit(image):
            grey = np.asarray(image, np.float32).reshape(image.height, image.width)
            grey = Image.fromarray(grey * np.float32(255.0 / 65535.0), "F")
            grey = np.asarray(grey.resize((size[1], size[0]), Image.Resampling.BILINEAR),
                              np.float32)
            grey = np.clip(grey, 0.0, 255.0)[..., None]
            return np.repeat(grey, channels, axis=-1), DECODER_16BIT
        if image.mode.startswith(("I", "F")):
            kind = "floating-point" if image.mode.startswith("F") else "integer"
            raise ImageError(f"32-bit {kind} image (mode {image.mode}) is not supported: its "
                             "values have no fixed range; save it with 8 or 16 bits per "
                             "channel")
        if image.mode in ("RGBA", "PA"):
            image = image.convert("RGBA").convert("RGB")
        elif image.mode == "LA":
            image = image.convert("L")
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(image, np.uint8).reshape(size[0], size[1], channels), None


def image_decoder(path) -> str | None:
    """The signature's ``decoder`` of an image file from its header alone (:data:`DECODER_16BIT`
    for 16-bit images, else ``None``, also when it cannot be read)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                return DECODER_16BIT if _is_16_bit(image) else None
    except Exception:  # noqa: BLE001  (PIL raises many kinds; reading it reports them)
        return None


def load_input(path, info: ModelInfo, max_megapixels: float = 50.0) -> np.ndarray:
    """One image as the model input (H, W, C) float32, preprocessed exactly as the command does."""
    image = read_image(path, info.size, info.channels, max_megapixels)
    return info.preprocess(image[None])[0]


@dataclass
class Batch:
    """Images read together: the good ones (indices, pixels on the 0-255 scale, model input,
    content hashes, decoders) and the failures ``(index, message, content hash or None)``."""

    indices: list
    pixels: np.ndarray | None
    x: np.ndarray | None
    errors: list  # [(index, message, input_sha256)]
    input_sha256: list = field(default_factory=list)
    decoders: list = field(default_factory=list)


def read_batch(paths: Sequence, indices: Sequence[int], info: ModelInfo,
               max_megapixels: float = 50.0) -> Batch:
    """Read, hash and preprocess ``paths[i]`` (paths or open files) for ``i`` in ``indices``."""
    good, pixels, hashes, decoders, errors = [], [], [], [], []
    for i in indices:
        try:
            image, sha, decoder = _read(paths[i], info.size, info.channels, max_megapixels)
        except ImageError as err:
            errors.append((i, str(err), getattr(err, "input_sha256", None)))
            continue
        good.append(i)
        pixels.append(image)
        hashes.append(sha)
        decoders.append(decoder)
    if not good:
        return Batch([], None, None, errors, [], [])
    stacked = np.stack(pixels)  # float32 if any image is 16-bit (8-bit values are exact)
    return Batch(good, stacked, np.asarray(info.preprocess(stacked), np.float32), errors, hashes,
                 decoders)


def iter_batches(paths: Sequence, indices: Sequence[int], info: ModelInfo,
                 batch_size: int, max_megapixels: float = 50.0) -> Iterator[Batch]:
    """:func:`read_batch` over ``indices``, ``batch_size`` at a time."""
    for start in range(0, len(indices), batch_size):
        yield read_batch(paths, indices[start:start + batch_size], info, max_megapixels)
