"""Outputs of a run: file names, and atomic writes of the maps (.npy) and pictures (.png)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "output_names", "output_files", "atomic_write", "save_png"]

FORMATS = ("npy", "png")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def output_names(paths: Sequence[Path]) -> list[str]:
    """A unique, stable base name per image: the stem, plus a path hash where stems collide."""
    stems = [_NAME_CHARS.sub("_", p.stem) or "image" for p in paths]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    names = []
    for path, stem in zip(paths, stems):
        if counts[stem.lower()] > 1:
            digest = hashlib.sha1(os.path.abspath(path).encode("utf8")).hexdigest()[:8]
            stem = f"{stem}-{digest}"
        names.append(stem)
    return names


def atomic_write(path: Path, write: Callable) -> None:
    """Write through a temporary file in the same directory, then ``os.replace`` it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_png(path: Path, rgb: np.ndarray) -> None:
    from matplotlib import image as mpimg

    atomic_write(path, lambda f: mpimg.imsave(f, rgb, format="png"))


def output_files(base: str, formats: Sequence[str]) -> dict[str, str]:
    out = {}
    if "npy" in formats:
        out["npy"] = f"{base}.npy"
    if "png" in formats:
        out["heatmap"] = f"{base}.heatmap.png"
        out["overlay"] = f"{base}.overlay.png"
    return out

