"""Outputs of a run: file names, and atomic writes of the maps (.npy) and pictures (.png).

Every output is written to a temporary file in ``--out`` (a hidden ``.<name>.<random>.tmp``,
created with mode ``0o666`` so that the umask applies as to any file the user writes: 0644
under umask 022), flushed to disk with ``fsync``, then renamed over its final name with
``os.replace``. A reader therefore sees either no file or a complete one, and a run killed
mid-write leaves at most a hidden ``.tmp`` file, which no run reads.
"""

from __future__ import annotations

import contextlib
import errno
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
    "save_npy",
    "save_png",
    "write_outputs",
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


def save_npy(path, array: np.ndarray) -> None:
    """Save ``array`` as float32 ``.npy``, atomically."""
    array = np.asarray(array, np.float32)
    atomic_write(path, lambda f: np.save(f, array))


def save_png(path, rgb: np.ndarray) -> None:
    """Save an RGB image as PNG, atomically."""
    from matplotlib import image as mpimg

    atomic_write(path, lambda f: mpimg.imsave(f, rgb, format="png"))


def write_outputs(out, files: dict[str, str], pixels: np.ndarray, relevance: np.ndarray) -> None:
    """Write one map's outputs named in ``files`` (see :func:`output_files`) into ``out``.

    ``pixels`` is the uint8 image as the model saw it (for the overlay), ``relevance`` the map.
    """
    out = Path(out)
    if "npy" in files:
        save_npy(out / files["npy"], relevance)
    if "heatmap" in files:
        from ..plot import overlay_rgb, to_rgb

        save_png(out / files["heatmap"], to_rgb(relevance))
        save_png(out / files["overlay"], overlay_rgb(pixels, relevance))


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
