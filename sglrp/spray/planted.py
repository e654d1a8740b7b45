"""The planted-shortcut data set: centred digits, and a small mark planted in one class.

Made offline from the demo's digits (scikit-learn's bundled ``load_digits``, upscaled x2 to
16x16, on the 32x32 canvas of :mod:`sglrp.demo.scenes`, with its fixed train/test split of
the digits). Every image holds one digit in the centre, with a small seeded jitter (rotation,
scale, shift of at most a pixel) so that one held-out digit gives several test images; the
position therefore never splits a class into clusters.

Everything below was fixed before any model was trained or measured:

* the **mark**: a white 4x4 square, rows 2-5 and columns 2-5 (the top-left corner, clear of the
  digit, which stays within rows and columns 6-25);
* the **marked class**: 8;
* the **shortcut** training set: the mark on a fraction :data:`MARK_FRACTION` = 0.8 of the
  class-8 images and on no other image;
* the **control** training set: the same images with the same number of marks, put on images
  drawn at random from every class, so that the mark says nothing about the class;
* the **test set** of the marked class: :data:`TEST_VARIANTS` = 6 jittered copies of each of the
  44 held-out class-8 digits (264 images, digits no model saw in training), exactly half of them
  marked (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..demo.scenes import CANVAS, DIGIT, N_CLASSES, digit_images, digit_pool

__all__ = ["MARKED_CLASS", "MARK_ROWS", "MARK_COLS", "MARK_VALUE", "MARK_FRACTION",
           "TEST_VARIANTS", "Planted", "add_mark", "remove_mark", "jittered", "training_set",
           "test_set"]

MARKED_CLASS = 8
MARK_ROWS = slice(2, 6)
MARK_COLS = slice(2, 6)
MARK_VALUE = 1.0
MARK_FRACTION = 0.8
TEST_VARIANTS = 6
TEST_SEED = 20190311  # the day the Clever Hans paper came out
_MAX_ROTATION = 0.2  # radians
_MAX_SCALE = 0.1
_MAX_SHIFT = 1.0  # pixels


@dataclass(frozen=True)
class Planted:
    """Images of the planted set.

    Attributes
    ----------
    images : numpy.ndarray
        ``(n, 32, 32, 1)`` float32 in [0, 1].
    labels : numpy.ndarray
        ``(n,)`` int64 digit classes.
    marked : numpy.ndarray
        ``(n,)`` bool, whether the image carries the mark.
    indices : numpy.ndarray
        ``(n,)`` int64, the digit's index in ``load_digits()``.
    """

    images: np.ndarray
    labels: np.ndarray
    marked: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def add_mark(images: np.ndarray, which=None) -> np.ndarray:
    """A copy of ``images`` (N, 32, 32, 1) with the mark on the images selected by ``which``
    (a bool mask; ``None``: all)."""
    out = np.array(images, dtype=np.float32, copy=True)
    sel = np.ones(len(out), bool) if which is None else np.asarray(which, bool)
    out[sel, MARK_ROWS, MARK_COLS, :] = MARK_VALUE
    return out


def remove_mark(images: np.ndarray) -> np.ndarray:
    """A copy of ``images`` with the mark's pixels set back to the black background (the digit
    never reaches them)."""
    out = np.array(images, dtype=np.float32, copy=True)
    out[:, MARK_ROWS, MARK_COLS, :] = 0.0
    return out


def jittered(indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digits ``indices`` centred on the canvas, each slightly rotated, scaled and shifted
    (bilinear), as float32 ``(n, 32, 32, 1)`` in [0, 1]."""
    from skimage.transform import AffineTransform, warp

    big, _ = digit_images()
    n = len(indices)
    out = np.zeros((n, CANVAS, CANVAS, 1), np.float32)
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    start = (CANVAS - DIGIT) // 2
    centre = (CANVAS - 1) / 2
    to_centre = AffineTransform(translation=(-centre, -centre))
    rotation = rng.uniform(-_MAX_ROTATION, _MAX_ROTATION, n)
    scale = rng.uniform(1 - _MAX_SCALE, 1 + _MAX_SCALE, n)
    shift = rng.uniform(-_MAX_SHIFT, _MAX_SHIFT, (n, 2))
    for i, index in enumerate(indices):
        canvas[:] = 0
        canvas[start:start + DIGIT, start:start + DIGIT] = big[index]
        move = AffineTransform(rotation=rotation[i], scale=scale[i],
                               translation=(centre + shift[i, 0], centre + shift[i, 1]))
        transform = to_centre + move  # centre at the origin, rotate and scale, move back
        out[i, :, :, 0] = warp(canvas, transform.inverse, order=1, preserve_range=True)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def training_set(kind: str, n: int, seed: int) -> Planted:
    """``n`` training images (jittered digits of the training pool, classes balanced by
    drawing digits uniformly) with the mark placed for ``kind``.

    Parameters
    ----------
    kind : {"shortcut", "control"}
        ``"shortcut"``: the mark on :data:`MARK_FRACTION` of the class-8 images only;
        ``"control"``: the same number of marks on images drawn from every class. Both kinds
        get the same digit images for the same ``seed``.
    n, seed : int
        Size and seed.
    """
    if kind not in ("shortcut", "control"):
        raise ValueError(f"kind must be 'shortcut' or 'control', got {kind!r}")
    _, target = digit_images()
    rng = np.random.default_rng(seed)
    pool = digit_pool("train")
    indices = pool[rng.integers(0, pool.size, size=n)].astype(np.int64)
    images = jittered(indices, rng)
    labels = target[indices].astype(np.int64)
    in_class = np.flatnonzero(labels == MARKED_CLASS)
    n_marks = int(round(MARK_FRACTION * in_class.size))
    chosen = rng.permutation(in_class)[:n_marks]
    if kind == "control":
        chosen = rng.permutation(n)[:n_marks]
    marked = np.zeros(n, bool)
    marked[chosen] = True
    return Planted(add_mark(images, marked), labels, marked, indices)


def test_set(classes=(MARKED_CLASS,)) -> Planted:
    """The test images of ``classes`` (default: the marked class only): :data:`TEST_VARIANTS`
    jittered copies of every held-out digit of each class, exactly half of each class marked
    (seeded; the same for every call)."""
    _, target = digit_images()
    pool = digit_pool("test")
    rng = np.random.default_rng(TEST_SEED)
    parts = []
    for c in range(N_CLASSES):  # every class draws, so that a class's images never depend
        members = pool[target[pool] == c]  # on which other classes are asked for
        indices = np.repeat(members, TEST_VARIANTS).astype(np.int64)
        images = jittered(indices, rng)
        marked = np.zeros(indices.size, bool)
        marked[rng.permutation(indices.size)[: indices.size // 2]] = True
        if c in classes:
            parts.append(Planted(add_mark(images, marked), target[indices].astype(np.int64),
                                 marked, indices))
    return Planted(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("images", "labels", "marked", "indices")))
