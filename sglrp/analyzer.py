"""The analyzers' front, written once for both engines: checks, targets, chunks, post-processing.

* :class:`Analyzer` checks the model (what the method is defined for, see ``validation.py``),
  the inputs and the targets, follows the model's current weights, chunks batches and applies
  ``relu`` - the one verb is :meth:`Analyzer.analyze`. An engine (``sglrp/engines/``) supplies
  the computation through four hooks: ``_build``, ``_reload``, ``_logits_batch``, ``close``.
  Methods that start backward passes from heads (``heads.py``) get them from ``_run_heads``.
* :class:`Contrastive` runs a target head and a dual head in one pass and subtracts the dual
  map, scaled per image (CLRP, SGLRP).
* :class:`Bounded` carries the input range ``[low, high]`` of the z^B rule.
* :class:`SampledGradient` averages the gradient over inputs derived from each sample
  (SmoothGrad, Integrated Gradients).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._quiet import quietly
from .canonize import canonize
from .validation import (
    ANY_NETWORK,
    ModelSpec,
    caller_stacklevel,
    check_bounds,
    check_execution_mode,
    check_input,
    selection_from_target,
    weights_fingerprint,
)

__all__ = ["Analyzer", "Contrastive", "Bounded", "SampledGradient", "ContrastLostWarning",
           "CANCELLED"]

#: A contrastive map smaller than this share of its target map (L1 norms) is reported: the
#: target and dual maps cancel down to the float32 rounding accumulated through a deep
#: network (random-weight VGG16, MobileNetV2: 4e-8 to 8e-8 of the target map; ResNet50: 1e-5),
#: so what is left is not evidence. Trained networks stay far above (the shipped models: 2.7e-3
#: at least, most 1e-2 to 1).
CANCELLED = 1e-4


class ContrastLostWarning(UserWarning):
    """A CLRP/SGLRP map in which the target and dual maps cancelled (see :data:`CANCELLED`)."""


def _single(maps: list):
    """One map per model input: the array itself for a single-input model."""
    return maps[0] if len(maps) == 1 else maps


class Analyzer:
    """Base class of every sglrp analyzer.

    Parameters
    ----------
    model : keras.Model
        The classifier, with or without its final softmax (a final softmax is stripped).
    target_id : int, optional
        Default target class of :meth:`analyze`; ``None`` explains the predicted class.
    relu : bool
        Keep only the positive part of the result (``max(0, R)``).
    """

    #: The networks the method is defined for (``validation.Support``), checked at construction.
    supports = ANY_NETWORK
    #: Analyze a mixed-precision model through a float32 copy (the relevance rules); the
    #: gradient methods set it False and differentiate the model's own float16 layers.
    float32_copy = True
    #: Whether the engine can run float16 layers (the innvestigate engine analyzes a float32
    #: copy of a mixed-precision model for every method).
    runs_float16 = True

    @quietly
    def __init__(self, model, target_id=None, relu: bool = False) -> None:
        check_execution_mode()
        self._user_model = model
        self._spec = ModelSpec(canonize(model, self._in_float32()), original=model)
        self.supports.check(self._spec, type(self).__name__)
        if target_id is not None:
            selection_from_target(target_id, 1, self._spec.n_classes)
        self.target_id = target_id
        self.relu = bool(relu)
        #: How many times the analysis was built (once per analyzer, whatever the targets).
        self.n_builds = 0
        self._fingerprint = weights_fingerprint(model)
        self._build()
        self.n_builds += 1

    # -- engine hooks ------------------------------------------------------------------------
    def _build(self) -> None:
        """Build the analysis of ``self._spec.model`` (which may end in a softmax to strip)."""
        raise NotImplementedError

    def _reload(self, model) -> None:
        """Load the weights of ``model`` (the canonized model, same structure) into the analysis."""
        raise NotImplementedError

    def _logits_batch(self, x: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Free what the analysis holds; the analyzer cannot be used afterwards."""

    def _run_heads(self, x: list[np.ndarray], selection: np.ndarray, heads) -> list:
        """For each head index in ``heads``: one map per model input, from one forward pass.

        The heads are the class attribute ``heads`` (``heads.py``), the rule is the engine's.
        """
        raise NotImplementedError

    # -- method hooks ------------------------------------------------------------------------
    def _analyze_batch(self, x: list[np.ndarray], selection: np.ndarray) -> list[np.ndarray]:
        """Relevance for one chunk: inputs and selection in, one map per model input out."""
        return self._run_heads(x, selection, (0,))[0]

    def _rule_options(self) -> dict:
        """The keyword arguments of the rule (bounds, epsilon, ...)."""
        return {}

    # -- the public verb ---------------------------------------------------------------------
    def analyze(self, x, target=None, *, class_weights=None, batch_size: int | None = None):
        """Explain ``x`` for ``target``.

        Parameters
        ----------
        x : array_like
            A batch shaped like the model's input, e.g. (N, H, W, C); a list of batches for a
            model with several inputs.
        target : int, sequence of int, or float array (N, C), optional
            The class to explain: one int for every sample, one int per sample, or a 2-D
            array of weights, one row per sample, to explain several classes at once.
            Defaults to the constructor's ``target_id``; if that is ``None`` too, the
            predicted class.
        class_weights : float array (C,) or (N, C), optional
            Weights of the classes to explain (an N-hot vector explains several classes at
            once), instead of ``target``.
        batch_size : int, optional
            Analyze in chunks of this many samples to bound memory.

        Returns
        -------
        numpy.ndarray
            The relevance, same shape as ``x`` (a list for several inputs), float32.
        """
        out = self._map(x, target, class_weights, batch_size, self._analyze_batch)
        if self.relu:
            out = [np.maximum(r, 0) for r in out]
        return _single(out)

    @quietly
    def predict_logits(self, x, batch_size: int | None = None) -> np.ndarray:
        """The model's logits for ``x`` (the input of its softmax), as the analysis sees them."""
        self._follow_weights()
        xs = self._check(x)
        chunks = self._chunks(len(xs[0]), batch_size)
        return np.concatenate([self._logits_batch([v[s] for v in xs]) for s in chunks])

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._spec.name!r}, target_id={self.target_id!r})"

    @property
    def n_classes(self) -> int:
        return self._spec.n_classes

    # -- helpers -----------------------------------------------------------------------------
    def _in_float32(self) -> bool:
        """Whether a mixed-precision model is analyzed through its float32 copy."""
        return self.float32_copy or not self.runs_float16

    def _follow_weights(self) -> None:
        """Reload the model's weights if they changed since the last call (fit, set_weights)."""
        fingerprint = weights_fingerprint(self._user_model)
        if fingerprint != self._fingerprint:
            self._reload(canonize(self._user_model, self._in_float32()))
            self._fingerprint = fingerprint

    def _check(self, x) -> list[np.ndarray]:
        n_inputs = self._spec.n_inputs
        if n_inputs == 1:
            return [check_input(x, self._spec.input_shapes[0])]
        if not isinstance(x, (list, tuple)) or len(x) != n_inputs:
            raise ValueError(f"the model has {n_inputs} inputs; pass a list of {n_inputs} batches")
        xs = [
            check_input(v, s, f"x[{i}]") for i, (v, s) in enumerate(zip(x, self._spec.input_shapes))
        ]
        if len({len(v) for v in xs}) != 1:
            raise ValueError(f"the input batches differ in size: {[len(v) for v in xs]}")
        return xs

    @quietly
    def _map(self, x, target, class_weights, batch_size, fn) -> list[np.ndarray]:
        self._follow_weights()
        xs = self._check(x)
        n = len(xs[0])
        if class_weights is not None:
            if target is not None:
                raise ValueError("pass either target or class_weights, not both")
            selection = selection_from_target(class_weights, n, self.n_classes, weights=True)
        else:
            if target is None:
                target = self.target_id
            if target is None:
                target = np.concatenate(
                    [self._logits_batch([v[s] for v in xs]) for s in self._chunks(n, batch_size)]
                ).argmax(axis=1)
            selection = selection_from_target(target, n, self.n_classes)
        parts = [fn([v[s] for v in xs], selection[s]) for s in self._chunks(n, batch_size)]
        return [np.concatenate(p) for p in zip(*parts)]

    @staticmethod
    def _chunks(n: int, batch_size: int | None) -> list[slice]:
        if batch_size is None:
            return [slice(0, n)]
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return [slice(i, i + int(batch_size)) for i in range(0, n, int(batch_size))]


class Contrastive:
    """Target map minus the dual map, scaled per image so their sums match (``scaling=True``).

    Both maps come from one forward pass. :meth:`analyze_target` and :meth:`analyze_others`
    give the two maps alone. Where the dual map sums to zero the scale is undefined; the maps
    are then subtracted unscaled (the original divided without a guard). Where the two maps
    cancel (:data:`CANCELLED`) a :class:`ContrastLostWarning` says so, once per analyzer and
    weights, and ``contrast_lost`` keeps its message (``None`` until then).
    """

    def __init__(self, model, target_id=None, relu=False, scaling: bool = True, **kwargs):
        self.scaling = bool(scaling)
        self.contrast_lost: str | None = None
        super().__init__(model, target_id, relu, **kwargs)

    def analyze_target(self, x, target=None, *, class_weights=None, batch_size=None):
        """The map of the target head alone."""
        return _single(self._map(x, target, class_weights, batch_size,
                                 lambda v, s: self._run_heads(v, s, (0,))[0]))

    def analyze_others(self, x, target=None, *, class_weights=None, batch_size=None):
        """The map of the dual head alone (relevance of every other class)."""
        return _single(self._map(x, target, class_weights, batch_size,
                                 lambda v, s: self._run_heads(v, s, (1,))[0]))

    def _analyze_batch(self, x, selection):
        target, dual = self._run_heads(x, selection, (0, 1))
        targets = [t.astype(np.float64) for t in target]
        out = [self._subtract(t, d.astype(np.float64)) for t, d in zip(targets, dual)]
        self._check_contrast(targets, out)
        return [o.astype(np.float32) for o in out]

    def _subtract(self, target: np.ndarray, dual: np.ndarray) -> np.ndarray:
        scale = 1.0
        if self.scaling:
            axes = tuple(range(1, target.ndim))
            t_sum = target.sum(axis=axes, keepdims=True)
            d_sum = dual.sum(axis=axes, keepdims=True)
            defined = np.abs(d_sum) > np.finfo(np.float32).tiny
            scale = np.where(defined, t_sum / np.where(defined, d_sum, 1.0), 1.0)
        return target - dual * scale

    def _reload(self, model) -> None:
        super()._reload(model)
        self.contrast_lost = None  # new weights: checked again

    def _check_contrast(self, targets: list, out: list) -> None:
        """Warn (once per analyzer and weights) where an image's maps, summed over the model's
        inputs, are below :data:`CANCELLED` of its target maps: Deep Taylor's z+ maps lose
        their dependence on the class with depth (Sixt, Granz, Landgraf, ICML 2020), until the
        target and dual maps agree to the rounding."""
        if self.contrast_lost is not None:
            return

        def l1(maps):
            return sum(np.abs(m).reshape(len(m), -1).sum(axis=1) for m in maps)

        size = l1(targets)
        left = l1(out) / np.where(size > 0, size, 1.0)
        lost = (size > 0) & (left < CANCELLED)
        if lost.any():
            self.contrast_lost = (
                f"{type(self).__name__}: the target and dual maps cancel in {int(lost.sum())} "
                f"of the {len(lost)} images of a batch: their map is "
                f"{float(left[lost].max()):.1e} of the target map or less (below "
                f"{CANCELLED:g}), near the float32 rounding of the propagation, and is returned "
                "as it is, but it is not evidence. Deep Taylor's z+ maps lose their dependence "
                "on the class in deep networks (Sixt et al., ICML 2020), above all with random "
                "weights; compare with another method"
            )
            warnings.warn(self.contrast_lost, ContrastLostWarning,
                          stacklevel=caller_stacklevel())


class Bounded:
    """The input range ``[low, high]`` of the z^B rule (Montavon et al. 2017).

    The rule assumes every input value lies in the range; a batch that leaves it gets a
    warning (once per analyzer), since a forgotten bound changes the maps without an error.
    """

    def __init__(self, model, target_id=None, relu=False, low=-1.0, high=1.0, **kwargs):
        check_bounds(low, high)
        self.low, self.high = float(low), float(high)
        self._warned_range = False
        super().__init__(model, target_id, relu, **kwargs)

    def _rule_options(self) -> dict:
        return {**super()._rule_options(), "low": self.low, "high": self.high}

    def _check(self, x):
        xs = super()._check(x)
        if not self._warned_range:
            lo, hi = min(float(v.min()) for v in xs), max(float(v.max()) for v in xs)
            if lo < self.low or hi > self.high:
                self._warned_range = True
                warnings.warn(
                    f"{type(self).__name__}: the inputs range over [{lo:.4g}, {hi:.4g}], outside "
                    f"the bounds low={self.low:g}, high={self.high:g} the z^B rule assumes; pass "
                    "the range of your preprocessed inputs as low= and high= (e.g. low=0, "
                    "high=1 for images scaled to [0, 1])",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
        return xs


class SampledGradient:
    """The target's gradient averaged over ``n`` inputs derived from each sample.

    For a model with several inputs every input gets its derived samples, and the result is
    one map per input.
    """

    #: How many derived inputs go through the analysis at once.
    chunk = 16

    def _samples(self, x: np.ndarray, index: int) -> np.ndarray:
        """(n, *x.shape) inputs derived from one sample ``x`` of model input ``index``."""
        raise NotImplementedError

    def _reduce(self, x: np.ndarray, index: int, mean_gradient: np.ndarray) -> np.ndarray:
        return mean_gradient

    def _analyze_batch(self, x, selection):
        out = [np.empty_like(v) for v in x]
        for i, row in enumerate(selection):
            samples = [self._samples(v[i], k) for k, v in enumerate(x)]
            total = [np.zeros(v.shape[1:], np.float64) for v in x]
            n = len(samples[0])
            for start in range(0, n, self.chunk):
                part = [s[start : start + self.chunk] for s in samples]
                sel = np.repeat(row[None], len(part[0]), axis=0)
                for k, g in enumerate(self._run_heads(part, sel, (0,))[0]):
                    total[k] += g.sum(axis=0)
            for k, v in enumerate(x):
                out[k][i] = self._reduce(v[i], k, total[k] / n)
        return out

