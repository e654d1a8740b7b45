"""Gradient methods: guided backprop, SmoothGrad and Integrated Gradients, for the given target.

The original ``SG`` and ``IG`` accepted ``target_id`` but explained the maximally activated class;
here every method explains the target it is asked for.
"""

from __future__ import annotations

import numpy as np
from innvestigate.analyzer import Gradient, GuidedBackprop

from . import heads
from .base import ReverseAnalyzer
from .registry import register

__all__ = ["GBP", "SG", "IG"]


@register("guided_backprop")
class GBP(ReverseAnalyzer, GuidedBackprop):
    """Guided backpropagation (Springenberg et al. 2015) of the target's logit.

    The original scaled the map by the target's logit ``z_t``; here it is the plain guided
    gradient of ``z_t`` (the same picture, a per-image factor apart).
    """

    requires_relu = True
    heads = (heads.gradient,)


class _SampledGradient(ReverseAnalyzer, Gradient):
    """Gradient of the target's logit, averaged over ``n`` inputs derived from each sample."""

    heads = (heads.gradient,)
    #: How many derived inputs go through the graph at once.
    chunk = 16

    def _samples(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _reduce(self, x: np.ndarray, mean_gradient: np.ndarray) -> np.ndarray:
        return mean_gradient

    def _analyze_batch(self, x, selection):
        (x,) = x
        out = np.empty_like(x)
        for i, (xi, ti) in enumerate(zip(x, selection)):
            samples = self._samples(xi)
            total = np.zeros(xi.shape, np.float64)
            for start in range(0, len(samples), self.chunk):
                part = samples[start : start + self.chunk]
                sel = np.repeat(ti[None], len(part), axis=0)
                total += self._relevance([part], sel)[0].sum(axis=0)
            out[i] = self._reduce(xi, total / len(samples))
        return [out]


@register("smoothgrad")
class SG(_SampledGradient):
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

    def __init__(
        self,
        model,
        target_id=None,
        relu=False,
        augment_by_n=64,
        noise_scale=None,
        noise_level=0.1,
        seed=0,
        **kwargs,
    ):
        if int(augment_by_n) < 1:
            raise ValueError(f"augment_by_n must be >= 1, got {augment_by_n!r}")
        self.augment_by_n, self.noise_scale = int(augment_by_n), noise_scale
        self.noise_level, self.seed = float(noise_level), seed
        super().__init__(model, target_id, relu, **kwargs)

    def _samples(self, x):
        rng = np.random.default_rng(self.seed)
        scale = self.noise_scale
        if scale is None:
            scale = self.noise_level * float(x.max() - x.min())
        noise = rng.normal(0.0, scale, size=(self.augment_by_n, *x.shape))
        return (x[None] + noise).astype(np.float32)


@register("integrated_gradients")
class IG(_SampledGradient):
    """Integrated Gradients (Sundararajan et al. 2017) of the target's logit.

    ``(x - x0) * mean_k grad(x0 + a_k (x - x0))`` with the midpoints ``a_k = (k + 1/2) / steps``.

    Parameters
    ----------
    steps : int
        Number of points on the path.
    reference_inputs : float or array
        The baseline ``x0`` (broadcast to one sample), 0 by default.
    """

    def __init__(self, model, target_id=None, relu=False, steps=64, reference_inputs=0.0, **kwargs):
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps!r}")
        self.steps, self.reference_inputs = int(steps), reference_inputs
        super().__init__(model, target_id, relu, **kwargs)

    def _baseline(self, x):
        return np.broadcast_to(np.asarray(self.reference_inputs, np.float32), x.shape)

    def _samples(self, x):
        alphas = (np.arange(self.steps) + 0.5) / self.steps
        x0 = self._baseline(x)
        return (x0[None] + alphas.reshape(-1, *[1] * x.ndim) * (x - x0)[None]).astype(np.float32)

    def _reduce(self, x, mean_gradient):
        return (x - self._baseline(x)) * mean_gradient
