"""Gradient methods: guided backprop, SmoothGrad and Integrated Gradients, for the given target.

The original ``SG`` and ``IG`` accepted ``target_id`` but explained the maximally activated class;
here every method explains the target it is asked for. SmoothGrad and Integrated Gradients
give one map per input of a model with several inputs.
"""

from __future__ import annotations

import numpy as np

from . import heads
from .analyzer import SampledGradient
from .engines.active import ReverseAnalyzer
from .registry import register
from .rules import Gradient, GuidedBackprop
from .validation import RELU_ACTIVATIONS, finite_number

__all__ = ["GBP", "SG", "IG"]


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _broadcast_reference(ref: np.ndarray, shape: tuple, index: int) -> np.ndarray:
    """``ref`` broadcast to one sample's ``shape``; an axis of variable size (``None``) takes
    the reference's own size there (checked against each batch at analysis)."""
    lead = len(shape) - ref.ndim
    target = tuple(
        (ref.shape[k - lead] if k >= lead else 1) if n is None else n for k, n in enumerate(shape)
    )
    try:
        return np.broadcast_to(ref, target)
    except ValueError:
        raise ValueError(
            f"reference input {index} of shape {ref.shape} does not broadcast to one sample "
            f"of shape {tuple(shape)}"
        ) from None


@register("guided_backprop")
class GBP(ReverseAnalyzer, GuidedBackprop):
    """Guided backpropagation (Springenberg et al. 2015) of the target's logit.

    The original scaled the map by the target's logit ``z_t``; here it is the plain guided
    gradient of ``z_t`` (the same picture, a per-image factor apart).
    """

    supports = RELU_ACTIVATIONS
    heads = (heads.gradient,)


@register("smoothgrad")
class SG(SampledGradient, ReverseAnalyzer, Gradient):
    """SmoothGrad (Smilkov et al. 2017): the target's gradient averaged over noisy copies.

    Parameters
    ----------
    augment_by_n : int
        Number of noisy copies per sample.
    noise_scale : float, optional
        Standard deviation of the Gaussian noise; by default ``noise_level * (max - min)`` of
        each sample.
    noise_level : float
        Relative noise, used when ``noise_scale`` is not given (0.1-0.2 in the paper).
    seed : int
        Seed of the noise; equal calls give equal results.
    """

    heads = (heads.gradient,)
    float32_copy = False

    def __init__(
        self,
        model,
        target_id=None,
        relu=False,
        augment_by_n=64,
        noise_scale=None,
        noise_level=0.1,
        seed=0,
    ):
        self.augment_by_n = _count("augment_by_n", augment_by_n)
        self.noise_scale = (
            None if noise_scale is None else finite_number("noise_scale", noise_scale, minimum=0)
        )
        self.noise_level = finite_number("noise_level", noise_level, minimum=0)
        self.seed = seed
        super().__init__(model, target_id, relu)

    def _samples(self, x, index):
        rng = np.random.default_rng(self.seed)
        scale = self.noise_scale
        if scale is None:
            scale = self.noise_level * float(x.max() - x.min())
        noise = rng.normal(0.0, scale, size=(self.augment_by_n, *x.shape))
        return (x[None] + noise).astype(np.float32)


@register("integrated_gradients")
class IG(SampledGradient, ReverseAnalyzer, Gradient):
    """Integrated Gradients (Sundararajan et al. 2017) of the target's logit.

    ``(x - x0) * mean_k grad(x0 + a_k (x - x0))`` with the midpoints ``a_k = (k + 1/2) / steps``.

    Parameters
    ----------
    steps : int
        Number of points on the path.
    reference_inputs : float or array, or a list of them (one per model input)
        The baseline ``x0`` (broadcast to one sample), 0 by default.
    """

    heads = (heads.gradient,)
    float32_copy = False

    def __init__(self, model, target_id=None, relu=False, steps=64, reference_inputs=0.0):
        self.steps = _count("steps", steps)
        references = reference_inputs
        if not isinstance(references, (list, tuple)):
            references = [references]
        self.reference_inputs = reference_inputs
        self._references = []
        for i, ref in enumerate(references):
            arr = np.asarray(ref)
            if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
                raise TypeError(f"reference_inputs must hold numbers, got {ref!r}")
            if not np.isfinite(arr).all():
                raise ValueError(f"reference_inputs[{i}] contains NaN or infinite values")
            self._references.append(arr.astype(np.float32))
        super().__init__(model, target_id, relu)
        if len(self._references) not in (1, self._spec.n_inputs):
            raise ValueError(
                f"got {len(self._references)} reference inputs for a model with "
                f"{self._spec.n_inputs} inputs"
            )
        for i, (ref, shape) in enumerate(zip(self._baselines(), self._spec.input_shapes)):
            _broadcast_reference(ref, shape[1:], i)

    def _baselines(self) -> list:
        refs = self._references
        return refs * self._spec.n_inputs if len(refs) == 1 else refs

    def _baseline(self, x, index):
        return _broadcast_reference(self._baselines()[index], x.shape, index)

    def _samples(self, x, index):
        alphas = (np.arange(self.steps) + 0.5) / self.steps
        x0 = self._baseline(x, index)
        return (x0[None] + alphas.reshape(-1, *[1] * x.ndim) * (x - x0)[None]).astype(np.float32)

    def _reduce(self, x, index, mean_gradient):
        return (x - self._baseline(x, index)) * mean_gradient
