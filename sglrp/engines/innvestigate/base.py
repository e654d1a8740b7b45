"""The innvestigate engine's analyzers: a copy of the model in a private graph per analyzer.

* :class:`Analyzer` clones the model into its own ``tf.Graph`` (see ``backend.py``) with the
  final softmax made linear, loads the weights, and runs what a subclass built there.
* :class:`ReverseAnalyzer` plugs the heads (``sglrp/heads.py``) into an innvestigate analyzer
  through its ``_head_mapping`` hook; the innvestigate base class that follows it among a
  method's bases supplies the rule (``rules.py``).
"""

from __future__ import annotations

import inspect

import numpy as np
import tensorflow as tf
from innvestigate.analyzer.network_base import AnalyzerNetworkBase
from innvestigate.backend.graph import ReverseMappingBase

from ... import analyzer as front
from ... import heads
from .backend import PrivateGraph

__all__ = ["Analyzer", "ReverseAnalyzer"]


class Analyzer(front.Analyzer):
    """An analyzer built into a private graph from a copy of the model."""

    #: innvestigate's graphs mix float16 layers and float32 heads badly: a mixed-precision
    #: model is analyzed through its float32 copy (same weights) by every method.
    runs_float16 = False

    def _build(self) -> None:
        self._graph = PrivateGraph()
        weights = self._spec.model.get_weights()
        with self._graph.building():
            clone = tf.keras.models.clone_model(self._spec.model, clone_function=self._copy_layer)
            self._logits = clone.outputs[0]
            self._model_inputs = list(clone.inputs)
            self._variables = clone.weights
            self._create(clone)
            self._graph.load(self._variables, weights)

    def _copy_layer(self, layer):
        """Copy a layer into the private graph; the final softmax becomes linear."""
        config = layer.get_config()
        if self._spec.ends_in_softmax and layer is self._spec.model.layers[-1]:
            if "activation" not in config:  # a Softmax layer
                return tf.keras.layers.Activation("linear", name=layer.name)
            config["activation"] = "linear"
        return layer.__class__.from_config(config)

    def _create(self, model) -> None:
        """Build the analysis into the current graph from ``model`` (which outputs logits)."""
        raise NotImplementedError

    def _reload(self, model) -> None:
        self._graph.load(self._variables, model.get_weights())

    def _logits_batch(self, x):
        return self._run(self._logits, x)

    def close(self) -> None:
        self._graph.close()

    def _run(self, fetches, feeds: list[np.ndarray], inputs=None):
        inputs = self._model_inputs if inputs is None else inputs
        return self._graph.run(fetches, dict(zip(inputs, feeds)))


class ReverseAnalyzer(Analyzer):
    """An innvestigate reverse analyzer whose initial relevance is given by ``heads``.

    Subclasses list an innvestigate analyzer after this class among their bases; it supplies
    the rule. ``heads`` holds one head, or a target head and a dual head (see
    ``sglrp.analyzer.Contrastive``); each head gets its backward pass, and the graph outputs
    their maps in that order.
    """

    heads: tuple = (heads.output,)

    def _create(self, model) -> None:
        for layer in self._spec.layers():
            if isinstance(layer, tf.keras.layers.Lambda):
                raise ValueError(
                    f"layer {layer.name!r} is a Lambda layer, which cannot be reversed; replace "
                    "it with a built-in Keras layer"
                )
        # The next class after the front's Analyzer in the MRO is the innvestigate analyzer.
        super(front.Analyzer, self).__init__(
            model, neuron_selection_mode="all", disable_model_checks=True, **self._rule_options()
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

    def _run_heads(self, x, selection, heads):
        n = self._spec.n_inputs
        fetches = [self._outputs[h * n : (h + 1) * n] for h in heads]
        return [list(m) for m in self._run(fetches, [*x, selection], self._inputs)]
