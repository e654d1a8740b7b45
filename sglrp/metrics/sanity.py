"""Sanity: does a map change when the model does, and when the explained class does?

* ``randomization_similarity`` - the Spearman rank correlation of ``|map|`` between the trained
  model and the model with its top kernel layer (the logits) re-initialised (model parameter
  randomisation, Adebayo et al., *Sanity Checks for Saliency Maps*, NeurIPS 2018). A map that
  depends on what the model learned changes: the lower the better. Re-initialising the layers
  from the top down, one after the other, gives Adebayo's cascade.
* ``random_logit_similarity`` - the same correlation between the map for the target and the
  map for a random other class (Sixt, Granz, Landgraf, *When Explanations Lie*, ICML 2020;
  Quantus' ``RandomLogit``): lower means more class-discriminative.

``|map|`` is the absolute value of the channel sum, as Adebayo et al.'s main figures; they also
report the correlation without the absolute value (``absolute=False``), which keeps the sign a
contrastive map (CLRP, SGLRP) uses to tell the classes apart. The correlation is undefined
(NaN) when either map is constant.
"""

from __future__ import annotations

import numpy as np

from .localisation import channel_sum

__all__ = [
    "METRICS",
    "rankdata",
    "spearman",
    "rank_similarity",
    "random_other_classes",
    "kernel_layers",
    "reinitialized_weights",
]

METRICS = ("randomization_similarity", "random_logit_similarity")


def rankdata(a) -> np.ndarray:
    """Ranks 1..n of the values of a 1-D array, ties given their average rank."""
    a = np.asarray(a, np.float64)
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], len(a)]
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(a))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def spearman(a, b) -> float:
    """Spearman's rank correlation of two arrays (flattened); NaN if either is constant."""
    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def rank_similarity(maps_a, maps_b, absolute: bool = True) -> np.ndarray:
    """Per-pair Spearman correlation of the channel sums of two (N, H, W[, C]) map batches.

    ``absolute=True`` correlates ``|channel sum|`` (the metrics' definition), ``False`` the
    signed sums.
    """
    a, b = channel_sum(maps_a), channel_sum(maps_b)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if a.shape != b.shape:
        raise ValueError(f"the map batches differ in shape: {a.shape} and {b.shape}")
    return np.array([spearman(u, v) for u, v in zip(a, b)])


def random_other_classes(targets, n_classes: int, seed: int = 0) -> np.ndarray:
    """For each target, a class drawn uniformly from the ``n_classes - 1`` other classes."""
    targets = np.asarray(targets, np.int64)
    offsets = np.random.default_rng(seed).integers(1, n_classes, size=targets.shape)
    return (targets + offsets) % n_classes


def kernel_layers(model) -> list:
    """The layers of ``model`` with weights, from the output to the input (the cascade's order)."""
    return [layer for layer in reversed(model.layers) if layer.weights]


def reinitialized_weights(layer, seed: int) -> list[np.ndarray]:
    """Fresh weights for ``layer`` as Keras initialises them by default, drawn with NumPy.

    Kernels (depthwise ones included): Glorot uniform, ``U(-l, l)`` with
    ``l = sqrt(6 / (fan_in + fan_out))``; biases zero; batch and layer normalisation the
    identity (gamma 1, beta 0, moving mean 0, moving variance 1); a layer scale (``gamma``)
    1; a ViT's class token zero and position embedding ``N(0, 0.02)`` (``sglrp.tokens``).
    Independent of the Keras version (Keras 2 names a depthwise kernel ``depthwise_kernel``,
    Keras 3 ``kernel``), so both engines see the same random model.
    """
    rng = np.random.default_rng(seed)
    if type(layer).__name__ == "LayerScale":  # Keras 3 leaves its one weight unnamed
        return [np.ones(tuple(w.shape), np.float32) for w in layer.weights]
    out = []
    for w in layer.weights:
        shape, name = tuple(w.shape), w.name.split("/")[-1].split(":")[0]
        if name in ("kernel", "depthwise_kernel"):
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            out.append(rng.uniform(-limit, limit, shape).astype(np.float32))
        elif name in ("gamma", "moving_variance"):
            out.append(np.ones(shape, np.float32))
        elif name in ("bias", "beta", "moving_mean", "token"):
            out.append(np.zeros(shape, np.float32))
        elif name == "embedding":  # sglrp.tokens.PositionEmbedding
            out.append(rng.normal(0, 0.02, shape).astype(np.float32))
        else:
            raise ValueError(
                f"layer {layer.name!r}: no re-initialisation for its weight {w.name!r}"
            )
    return out
