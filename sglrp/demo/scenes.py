"""Multi-digit scenes built from scikit-learn's bundled digits.

Each scene is a 32x32 black canvas holding two handwritten digits of
different classes, the digit analogue of a photo that shows a zebra and an
elephant side by side.  The digits come from :func:`sklearn.datasets.load_digits`
(8x8, values 0..16), are scaled to [0, 1] and upscaled x2 to 16x16.

The 1797 samples are split once, by a fixed seeded permutation, into a
training pool (80 %) and a held-out test pool (20 %), so that test scenes
only contain digits the demo model never saw during training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

CANVAS = 32
DIGIT = 16
SCALE = 2
N_CLASSES = 10
SPLIT_SEED = 20190812
TRAIN_FRACTION = 0.8

__all__ = [
    "CANVAS",
    "DIGIT",
    "Scenes",
    "Singles",
    "digit_images",
    "digit_pool",
    "make_scenes",
    "make_singles",
]


@dataclass(frozen=True)
class Scenes:
    """A batch of two-digit scenes.

    Attributes
    ----------
    images : numpy.ndarray
        ``(n, 32, 32, 1)`` float32 in [0, 1].
    labels : numpy.ndarray
        ``(n, 2)`` int64, the two (different) digit classes of each scene.
    boxes : numpy.ndarray
        ``(n, 2, 4)`` int64, ``(row0, col0, row1, col1)`` half-open pixel box
        of each digit, in the same order as ``labels``.
    indices : numpy.ndarray
        ``(n, 2)`` int64, index of each digit in ``load_digits()``.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class Singles:
    """A batch of single digits on the scene canvas.

    Attributes
    ----------
    images : numpy.ndarray
        ``(n, 32, 32, 1)`` float32 in [0, 1].
    labels : numpy.ndarray
        ``(n,)`` int64 digit classes.
    boxes : numpy.ndarray
        ``(n, 4)`` int64 ``(row0, col0, row1, col1)`` half-open boxes.
    indices : numpy.ndarray
        ``(n,)`` int64, index of each digit in ``load_digits()``.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    # Imported lazily: the data ship with scikit-learn, nothing is downloaded.
    from sklearn.datasets import load_digits

    data = load_digits()
    small = data.images.astype(np.float32) / np.float32(16.0)
    big = np.kron(small, np.ones((1, SCALE, SCALE), dtype=np.float32))
    big.setflags(write=False)
    target = data.target.astype(np.int64)
    target.setflags(write=False)
    return big, target


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """Return all upscaled digits and their labels.

    Returns
    -------
    images : numpy.ndarray
        ``(1797, 16, 16)`` float32 in [0, 1] (read-only).
    labels : numpy.ndarray
        ``(1797,)`` int64 (read-only).
    """
    return _digits()


@functools.lru_cache(maxsize=2)
def _pool(split: str) -> np.ndarray:
    n = _digits()[1].shape[0]
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_train = int(round(TRAIN_FRACTION * n))
    idx = np.sort(perm[:n_train] if split == "train" else perm[n_train:])
    idx.setflags(write=False)
    return idx


def digit_pool(split: str) -> np.ndarray:
    """Indices into ``load_digits()`` that belong to a split.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"``: the fixed 80 % training subset; ``"test"``: the held-out rest.

    Returns
    -------
    numpy.ndarray
        Sorted int64 indices (read-only); the two pools are disjoint.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _pool(split)


def _by_class(split: str) -> list[np.ndarray]:
    pool = digit_pool(split)
    labels = _digits()[1][pool]
    return [pool[labels == c] for c in range(N_CLASSES)]


def make_scenes(n: int, seed: int = 0, split: str = "test") -> Scenes:
    """Make ``n`` scenes, each with two digits of different classes.

    The two classes are drawn uniformly (first any class, then any other
    class), then one sample of each class from the split's pool.  The two
    16x16 boxes never overlap: on a 32x32 canvas this means that along one
    axis (chosen at random) they sit at offsets 0 and 16, while along the
    other axis each box has its own random offset in 0..16.  The digits are
    combined with ``np.maximum`` (boxes may touch but never overlap).

    Parameters
    ----------
    n : int
        Number of scenes.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`; equal seeds give equal scenes.
    split : {"train", "test"}, optional
        Pool the digits are drawn from.

    Returns
    -------
    Scenes
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    big, _ = _digits()
    by_class = _by_class(split)
    rng = np.random.default_rng(seed)

    first = rng.integers(0, N_CLASSES, size=n)
    second = (first + rng.integers(1, N_CLASSES, size=n)) % N_CLASSES
    labels = np.stack([first, second], axis=1).astype(np.int64)

    indices = np.empty((n, 2), dtype=np.int64)
    for i in range(n):
        for j in range(2):
            members = by_class[labels[i, j]]
            indices[i, j] = members[rng.integers(0, members.size)]

    span = CANVAS - DIGIT
    axis = rng.integers(0, 2, size=n)  # 0: stacked vertically, 1: side by side
    order = rng.integers(0, 2, size=n)  # which digit takes the 0 offset
    free = rng.integers(0, span + 1, size=(n, 2))
    offsets = np.empty((n, 2, 2), dtype=np.int64)  # (scene, digit, row/col)
    for i in range(n):
        a = axis[i]
        offsets[i, 0, a] = 0 if order[i] == 0 else span
        offsets[i, 1, a] = span - offsets[i, 0, a]
        offsets[i, :, 1 - a] = free[i]

    images = np.zeros((n, CANVAS, CANVAS, 1), dtype=np.float32)
    boxes = np.empty((n, 2, 4), dtype=np.int64)
    for i in range(n):
        for j in range(2):
            r0, c0 = offsets[i, j]
            r1, c1 = r0 + DIGIT, c0 + DIGIT
            boxes[i, j] = (r0, c0, r1, c1)
            patch = images[i, r0:r1, c0:c1, 0]
            np.maximum(patch, big[indices[i, j]], out=patch)
    return Scenes(images=images, labels=labels, boxes=boxes, indices=indices)


def make_singles(
    split: str = "test",
    seed: int = 0,
    n: int | None = None,
    centred: bool = False,
) -> Singles:
    """Make single digits on the 32x32 scene canvas.

    Parameters
    ----------
    split : {"train", "test"}, optional
        Pool the digits are drawn from.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`.
    n : int, optional
        Number of images.  ``None`` uses every digit of the pool once, in pool
        order; otherwise ``n`` digits are drawn from the pool with replacement.
    centred : bool, optional
        Put every digit in the centre (offset 8, 8) instead of at a random
        offset in 0..16 along each axis.

    Returns
    -------
    Singles
    """
    big, target = _digits()
    pool = digit_pool(split)
    rng = np.random.default_rng(seed)
    if n is None:
        indices = pool.astype(np.int64)
    else:
        if n < 0:
            raise ValueError("n must be non-negative")
        indices = pool[rng.integers(0, pool.size, size=n)].astype(np.int64)
    m = indices.size
    span = CANVAS - DIGIT
    if centred:
        offsets = np.full((m, 2), span // 2, dtype=np.int64)
    else:
        offsets = rng.integers(0, span + 1, size=(m, 2)).astype(np.int64)

    images = np.zeros((m, CANVAS, CANVAS, 1), dtype=np.float32)
    boxes = np.empty((m, 4), dtype=np.int64)
    for i in range(m):
        r0, c0 = offsets[i]
        boxes[i] = (r0, c0, r0 + DIGIT, c0 + DIGIT)
        images[i, r0 : r0 + DIGIT, c0 : c0 + DIGIT, 0] = big[indices[i]]
    return Singles(images=images, labels=target[indices].copy(), boxes=boxes, indices=indices)
