"""The analyzer base classes: one graph per model, the target at call time, post-processing once.

* :class:`Analyzer` owns a private graph with a copy of the model (see ``backend.py``), checks
  inputs and targets, chunks batches, and applies ``relu`` - the one verb is :meth:`analyze`.
* :class:`ReverseAnalyzer` plugs a head (``heads.py``) into an innvestigate analyzer through its
  ``_head_mapping`` hook; the innvestigate base class supplies the rule.
* :class:`ContrastiveAnalyzer` runs a target head and a dual head through the same graph and
  subtracts the dual map, scaled per image (CLRP, SGLRP).
"""

from __future__ import annotations

import inspect

import numpy as np
import tensorflow as tf
from innvestigate.analyzer.network_base import AnalyzerNetworkBase
from innvestigate.backend.graph import ReverseMappingBase

from . import heads
from .backend import PrivateGraph
from .canonize import canonize
from .validation import ModelSpec, check_input, selection_from_target

__all__ = ["Analyzer", "ReverseAnalyzer", "ContrastiveAnalyzer"]


def _single(maps: list):
    """One map per model input: the array itself for a single-input model."""
    return maps[0] if len(maps) == 1 else maps


class Analyzer:
    """Base class of every sglrp analyzer.

    Parameters
    ----------
    model : tf.keras.Model
        The classifier, with or without its final softmax (a final softmax is stripped).
    target_id : int, optional
        Default target class of :meth:`analyze`; ``None`` explains the predicted class.
    relu : bool
        Keep only the positive part of the result (``max(0, R)``).
    """

    #: Whether the method is defined for ReLU networks only.
    requires_relu = False

    def __init__(self, model, target_id=None, relu: bool = False, **kwargs) -> None:
        self._spec = ModelSpec(canonize(model))  # nested models flattened, BN folded
        if target_id is not None:
            selection_from_target(target_id, 1, self._spec.n_classes)
        self.target_id = target_id
        self.relu = bool(relu)
        if self.requires_relu:
            self._spec.require_relu(type(self).__name__)
        #: How many times the analysis graph was built (once per analyzer, whatever the targets).
        self.n_builds = 0
        self._graph = PrivateGraph()
        weights = self._spec.model.get_weights()
        with self._graph.building():
            clone = tf.keras.models.clone_model(self._spec.model, clone_function=self._copy_layer)
            self._logits = clone.outputs[0]
            self._model_inputs = list(clone.inputs)
            self._create(clone, **kwargs)
            self._graph.load(clone.weights, weights)
        self.n_builds += 1

    def _copy_layer(self, layer):
        """Copy a layer into the private graph; the final softmax becomes linear."""
        config = layer.get_config()
        if self._spec.ends_in_softmax and layer is self._spec.model.layers[-1]:
            if "activation" not in config:  # a Softmax layer
                return tf.keras.layers.Activation("linear", name=layer.name)
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    # -- to be provided by subclasses -------------------------------------------------------
    def _create(self, model, **kwargs) -> None:
        """Build the analysis into the current graph from ``model`` (which outputs logits)."""
        raise NotImplementedError

    def _analyze_batch(self, x: list[np.ndarray], selection: np.ndarray) -> list[np.ndarray]:
        """Relevance for one chunk: inputs and selection in, one map per model input out."""
        raise NotImplementedError

    # -- the public verb ---------------------------------------------------------------------
    def analyze(self, x, target=None, batch_size: int | None = None) -> np.ndarray:
        """Explain ``x`` for ``target``.

        Parameters
        ----------
        x : array_like
            A batch shaped like the model's input, e.g. (N, H, W, C); a list of batches for a
            model with several inputs.
        target : int, sequence of int, or array of float, optional
            The class to explain: one int for every sample, one int per sample, or weights of
            shape (C,) or (N, C) to explain several classes at once. Defaults to the
            constructor's ``target_id``; if that is ``None`` too, the predicted class.
        batch_size : int, optional
            Analyze in chunks of this many samples to bound memory.

        Returns
        -------
        numpy.ndarray
            The relevance, same shape as ``x`` (a list for several inputs), float32.
        """
        out = self._map(x, target, batch_size, self._analyze_batch)
        if self.relu:
            out = [np.maximum(r, 0) for r in out]
        return _single(out)

    def predict_logits(self, x, batch_size: int | None = None) -> np.ndarray:
        """The model's logits for ``x`` (the input of its softmax), computed in this graph."""
        xs = self._check(x)
        chunks = self._chunks(len(xs[0]), batch_size)
        return np.concatenate([self._run(self._logits, [v[s] for v in xs]) for s in chunks])

    def close(self) -> None:
        """Free the graph and session of this analyzer; it cannot be used afterwards."""
        self._graph.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self._spec.name!r}, target_id={self.target_id!r})"

    # -- helpers -----------------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return self._spec.n_classes

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

    def _map(self, x, target, batch_size, fn) -> list[np.ndarray]:
        xs = self._check(x)
        n = len(xs[0])
        if target is None:
            target = self.target_id
        if target is None:
            target = self.predict_logits(xs if len(xs) > 1 else xs[0], batch_size).argmax(axis=1)
        selection = selection_from_target(target, n, self.n_classes)
        parts = [fn([v[s] for v in xs], selection[s]) for s in self._chunks(n, batch_size)]
        return [np.concatenate(p) for p in zip(*parts)]

    @staticmethod
    def _chunks(n: int, batch_size: int | None) -> list[slice]:
        if batch_size is None:
            return [slice(0, n)]
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return [slice(i, i + int(batch_size)) for i in range(0, n, int(batch_size))]

    def _run(self, fetches, feeds: list[np.ndarray], inputs=None):
        inputs = self._model_inputs if inputs is None else inputs
        return self._graph.run(fetches, dict(zip(inputs, feeds)))


class ReverseAnalyzer(Analyzer):
    """An innvestigate reverse analyzer whose initial relevance is given by ``heads``.

    Subclasses list an innvestigate analyzer as their second base; it supplies the rule.
    ``heads`` holds one head, or a target head and a dual head (see ContrastiveAnalyzer); each
    head gets its backward pass, and the graph outputs their maps in that order.
    """

    heads: tuple = (heads.output,)

    def _create(self, model, **kwargs) -> None:
        self._spec.forbid_lambda()
        # The next class after Analyzer in the MRO is the innvestigate analyzer.
        super(Analyzer, self).__init__(
            model, neuron_selection_mode="all", disable_model_checks=True, **kwargs
        )
        try:
            self.create_analyzer_model()
        except NotImplementedError as err:  # DeepTaylor's refusal of an unknown layer
            raise ValueError(
                f"{type(self).__name__} cannot propagate relevance through a layer of this "
                f"model: {err} Use a rule that handles it (e.g. LRPE, LRPA) or change the layer."
            ) from None

    def create_analyzer_model(self) -> None:
        # innvestigate wraps the analysis into a Keras model; sglrp runs the tensors with its
        # own session, so the tensors are all it keeps (two backward passes would also give
        # the rules' layer copies the same names, which a Keras model refuses).
        self._rule_objects = {}
        model, analysis_inputs, stop_at = self._prepare_model(self._model)
        outputs = self._create_analysis(model, stop_analysis_at_tensors=stop_at)
        self._inputs = [*self._model.inputs, *analysis_inputs]
        self._outputs = list(outputs)  # per head, one map per model input
        self._analyzer_model_done = True

    def _prepare_model(self, model):
        # Skip DeepTaylor's ReLU on the outputs: the heads see the real logits.
        model, analysis_inputs, stop_at = AnalyzerNetworkBase._prepare_model(self, model)
        self._selection = tf.keras.layers.Input(shape=(self._spec.n_classes,), name="selection")
        return model, [*analysis_inputs, self._selection], [*stop_at, self._selection]

    def _reverse_model(
        self, model, stop_analysis_at_tensors=None, return_all_reversed_tensors=False
    ):
        # One backward pass per head, all in one graph: they share the forward pass and, through
        # _reverse_mapping, the rules (TF merges their identical forward computations).
        maps = []
        for index in range(len(self.heads)):
            self._head_index = index
            reversed_inputs, _ = super()._reverse_model(model, stop_analysis_at_tensors)
            maps.extend(reversed_inputs)
        return maps, None

    def _reverse_mapping(self, layer):
        # One rule object per layer for all backward passes: its transformed weights and
        # forward computations are built once and shared by the heads.
        if layer not in self._rule_objects:
            mapping = super()._reverse_mapping(layer)
            state = {"model": self._model, "layer": layer}
            if inspect.isclass(mapping) and issubclass(mapping, ReverseMappingBase):
                mapping = mapping(layer, state).apply
            elif callable(mapping) and len(inspect.signature(mapping).parameters) == 2:
                mapping = mapping(layer, state)
            self._rule_objects[layer] = mapping
        return self._rule_objects[layer]

    def _head_mapping(self, X):
        head = self.heads[self._head_index]
        return tf.keras.layers.Lambda(lambda a: head(a[0], a[1]))([X, self._selection])

    def _relevance(self, x: list[np.ndarray], selection: np.ndarray, head: int = 0):
        """The maps of one head (one per model input)."""
        n = self._spec.n_inputs
        return list(
            self._run(self._outputs[head * n : (head + 1) * n], [*x, selection], self._inputs)
        )

    def _analyze_batch(self, x, selection):
        return self._relevance(x, selection)


class ContrastiveAnalyzer(ReverseAnalyzer):
    """Target map minus the dual map, scaled per image so their sums match (``scaling=True``).

    Both maps come from one graph in one run: two backward passes from one forward pass.
    :meth:`analyze_target` and :meth:`analyze_others` give the two maps alone.
    Where the dual map sums to zero the scale is undefined; the maps are then subtracted
    unscaled (the original divided without a guard).
    """

    heads: tuple = (heads.output, heads.contrastive_dual)

    def __init__(self, model, target_id=None, relu=False, scaling: bool = True, **kwargs):
        self.scaling = bool(scaling)
        super().__init__(model, target_id, relu, **kwargs)

    def analyze_target(self, x, target=None, batch_size=None) -> np.ndarray:
        """The map of the target head alone."""
        return _single(self._map(x, target, batch_size, lambda v, s: self._relevance(v, s, 0)))

    def analyze_others(self, x, target=None, batch_size=None) -> np.ndarray:
        """The map of the dual head alone (relevance of every other class)."""
        return _single(self._map(x, target, batch_size, lambda v, s: self._relevance(v, s, 1)))

    def _analyze_batch(self, x, selection):
        maps = self._run(self._outputs, [*x, selection], self._inputs)
        n = self._spec.n_inputs
        return [self._subtract(t, d) for t, d in zip(maps[:n], maps[n:])]

    def _subtract(self, target: np.ndarray, dual: np.ndarray) -> np.ndarray:
        target, dual = target.astype(np.float64), dual.astype(np.float64)
        scale = 1.0
        if self.scaling:
            axes = tuple(range(1, target.ndim))
            t_sum = target.sum(axis=axes, keepdims=True)
            d_sum = dual.sum(axis=axes, keepdims=True)
            defined = np.abs(d_sum) > np.finfo(np.float32).tiny
            scale = np.where(defined, t_sum / np.where(defined, d_sum, 1.0), 1.0)
        return (target - dual * scale).astype(np.float32)
