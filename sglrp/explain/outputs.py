"""Outputs of a run: file names, and atomic writes of the maps (.npy) and pictures (.png).

Every output is written to a temporary file in ``--out`` (a hidden ``.<name>.<random>.tmp``,
created with mode ``0o666`` so that the umask applies as to any file the user writes: 0644
under umask 022), flushed to disk with ``fsync``, then renamed over its final name with
``os.replace``. A reader therefore sees either no file or a complete one, and a run killed
mid-write leaves at most a hidden ``.tmp`` file, which no run reads.

Each output is made in memory first, so that its size and SHA-256 are known when it is written
(:func:`write_outputs` returns them; the manifest records them, and a resumed run compares them
with the files it reuses, :class:`sglrp.explain.signature.Resume`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "FORMATS",
    "DISK_FULL_ERRNOS",
    "DiskFullError",
    "is_disk_full",
    "output_stem",
    "output_key",
    "output_files",
    "atomic_write",
    "npy_bytes",
    "png_bytes",
    "save_npy",
    "save_png",
    "write_outputs",
    "npy_intact",
    "sync_dir",
]

FORMATS = ("npy", "png")
#: The errors that mean "nothing more can be written here": no space left, a file size limit
#: (``RLIMIT_FSIZE``, ``ulimit -f``), a disk quota. A run stops on them instead of failing image
#: after image.
DISK_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if code
)
_NOT_NAME = re.compile(r"[^\w.-]+")  # \w: letters and digits of every script, and "_"
_STEM_BYTES = 120  # file names stay below the usual 255-byte limit with the suffixes added


class DiskFullError(OSError):
    """No space left, a file size limit or a quota: the run cannot write anything more."""


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is an ``OSError`` with one of :data:`DISK_FULL_ERRNOS`."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


def output_stem(path) -> str:
    """The readable start of an image's output names: its file stem, kept to safe characters.

    Letters and digits of any script (``名前.jpg`` -> ``名前``), ``.``, ``_`` and ``-`` are kept
    (NFC-normalized), anything else becomes ``_``; leading dots are dropped (no hidden files);
    long stems are cut to 120 UTF-8 bytes. The stem alone need not be unique:
    :func:`output_key` adds the digest of what the outputs are computed from.
    """
    stem = unicodedata.normalize("NFC", Path(path).stem)
    stem = _NOT_NAME.sub("_", stem).lstrip(".")
    while len(stem.encode("utf8", "surrogateescape")) > _STEM_BYTES:
        stem = stem[:-1]
    return stem or "image"


def output_key(stem: str, method: str, target, digest: str | None) -> str:
    """``<stem>__<method>__<target>__<digest>``: the common base name of one map's outputs.

    ``digest`` (see :func:`sglrp.explain.signature.digest`) names what the map is computed
    from (model, weights, method, options, target and the input file's content), so outputs
    computed from anything else never share a name. ``None`` (an image that could not be read)
    leaves it out.
    """
    key = f"{stem}__{method}__{target}"
    return key if digest is None else f"{key}__{digest}"


def output_files(key: str, formats: Sequence[str]) -> dict[str, str]:
    """The output file names of one map, by kind (``npy``, ``heatmap``, ``overlay``)."""
    out = {}
    if "npy" in formats:
        out["npy"] = f"{key}.npy"
    if "png" in formats:
        out["heatmap"] = f"{key}.heatmap.png"
        out["overlay"] = f"{key}.overlay.png"
    return out


def _create_temporary(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp  # the umask applies, as to any new file
        except FileExistsError:
            continue


def atomic_write(path, write: Callable) -> None:
    """Write ``path`` through a temporary file in its folder: ``write(file)``, fsync, rename.

    Raises
    ------
    DiskFullError
        If the disk is full, a file size limit or a quota is reached (the temporary file is
        removed; ``path`` is left as it was).
    OSError
        For other write errors, likewise.
    """
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if is_disk_full(err) and not isinstance(err, DiskFullError):
            raise DiskFullError(err.errno, err.strerror, str(path)) from None
        raise


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the content of a float32 ``.npy`` file."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, np.float32))
    return buffer.getvalue()


def png_bytes(rgb: np.ndarray) -> bytes:
    """An RGB image as the content of a PNG file."""
    from matplotlib import image as mpimg

    buffer = io.BytesIO()
    mpimg.imsave(buffer, rgb, format="png")
    return buffer.getvalue()


def _save(path, data: bytes) -> tuple[int, str]:
    atomic_write(path, lambda f: f.write(data))
    return len(data), f"sha256:{hashlib.sha256(data).hexdigest()}"


def save_npy(path, array: np.ndarray) -> tuple[int, str]:
    """Save ``array`` as float32 ``.npy``, atomically; return its size and SHA-256."""
    return _save(path, npy_bytes(array))


def save_png(path, rgb: np.ndarray) -> tuple[int, str]:
    """Save an RGB image as PNG, atomically; return its size and SHA-256."""
    return _save(path, png_bytes(rgb))


def write_outputs(out, files: dict[str, str], pixels: np.ndarray,
                  relevance: np.ndarray) -> dict[str, tuple[int, str]]:
    """Write one map's outputs named in ``files`` (see :func:`output_files`) into ``out``.

    ``pixels`` is the image as the model saw it, on the 0-255 scale (for the overlay),
    ``relevance`` the map. Returns ``(size in bytes, "sha256:<hex>")`` of each file, by kind.
    """
    out = Path(out)
    written = {}
    if "npy" in files:
        written["npy"] = save_npy(out / files["npy"], relevance)
    if "heatmap" in files:
        from ..plot import overlay_rgb, to_rgb

        written["heatmap"] = save_png(out / files["heatmap"], to_rgb(relevance))
        written["overlay"] = save_png(out / files["overlay"], overlay_rgb(pixels, relevance))
    return written


def npy_intact(path, shape: tuple | None = None) -> bool:
    """Whether ``path`` is a complete float32 ``.npy`` file (of ``shape``, if given), from its
    header and its size alone (the data is not read)."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            read_header = {(1, 0): npy.read_array_header_1_0,
                           (2, 0): npy.read_array_header_2_0}.get(version)
            if read_header is None:
                return False
            found, _, dtype = read_header(f)
            offset, size = f.tell(), os.fstat(f.fileno()).st_size
    except (OSError, ValueError):
        return False
    if dtype != np.float32 or (shape is not None and tuple(found) != tuple(shape)):
        return False
    return size == offset + int(np.prod(found, dtype=np.int64)) * dtype.itemsize


def sync_dir(path) -> None:
    """fsync a folder, so that the renames into it are on disk (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
