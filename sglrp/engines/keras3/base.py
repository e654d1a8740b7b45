"""The Keras 3 engine's analyzers: the rules run over the model's own layers, compiled once.

* :class:`Analyzer` makes the model output logits (a final softmax becomes a linear copy of the
  last layer) and follows its weights: the compiled functions read the layers' variables, so
  only that copy needs reloading.
* :class:`ReverseAnalyzer` runs the heads (``sglrp/heads.py``) through the rule set named by the
  rule base among a method's bases (``rules.py``), in one :class:`~.propagate.Propagation`.
"""

from __future__ import annotations

import keras

from ... import analyzer as front
from ... import heads
from .propagate import Propagation

__all__ = [
    "Analyzer",
    "ReverseAnalyzer",
    "BoundedDeepTaylor",
    "PresetAFlat",
    "PresetBFlat",
    "Epsilon",
    "EpsilonPlusBox",
    "ZPlus",
    "GuidedBackprop",
    "Gradient",
]


def logits_model(model, ends_in_softmax: bool):
    """``model`` with logits out, and the linear copy of its last layer (or ``None``)."""
    if not ends_in_softmax:
        return model, None
    last = model.layers[-1]
    x = last.input
    if isinstance(last, keras.layers.Softmax) or getattr(last, "activation", None) is None:
        copy, out = None, x
    else:
        copy = last.__class__.from_config({**last.get_config(), "activation": "linear"})
        out = copy(x)
        copy.set_weights(last.get_weights())
    return keras.Model(model.inputs, out, name=model.name), copy


class Analyzer(front.Analyzer):
    """An analyzer over the (canonized) model's own layers."""

    def _build(self) -> None:
        self._logits_model, self._linear_top = logits_model(
            self._spec.model, self._spec.ends_in_softmax
        )
        self._create(self._logits_model)

    def _create(self, model) -> None:
        """Compile the analysis of ``model`` (which outputs logits)."""
        raise NotImplementedError

    def _reload(self, model) -> None:
        if model is not self._spec.model:
            raise RuntimeError(
                f"the structure of model {self._spec.name!r} changed since this analyzer was "
                "built; build a new analyzer"
            )
        if self._linear_top is not None:
            self._linear_top.set_weights(model.layers[-1].get_weights())

    def close(self) -> None:
        self._logits_model = self._linear_top = None


class ReverseAnalyzer(Analyzer):
    """Heads (``heads``) through the rule set ``rule`` of the rule base (``rules.py``)."""

    heads: tuple = (heads.output,)

    def _create(self, model) -> None:
        rule = getattr(self, "rule", None)
        if rule is None:
            raise TypeError(
                f"{type(self).__name__} names no rule: list one of sglrp.rules among its bases"
            )
        self._propagation = Propagation(model, rule, self.heads, **self._rule_options())

    def _run_heads(self, x, selection, heads):
        self._require_open()
        maps = self._propagation(x, selection)
        return [maps[h] for h in heads]

    def _logits_batch(self, x):
        self._require_open()
        return self._propagation.logits(x)

    def _require_open(self) -> None:
        if self._logits_model is None:
            raise RuntimeError("this analyzer was closed; create a new one")

    def close(self) -> None:
        super().close()
        self._propagation = None


# -- the rule bases: which rule set of ``propagate.RULE_SETS`` a method's backward pass uses -----
class BoundedDeepTaylor:
    """Bounded Deep Taylor (z^B at the input, fast z+ on ReLU inputs, z rule at Add/pooling)."""

    rule = "bounded_deep_taylor"


class PresetAFlat:
    """innvestigate's LRPSequentialPresetAFlat: epsilon dense, alpha1-beta0 conv, flat input."""

    rule = "preset_a_flat"


class PresetBFlat:
    """innvestigate's LRPSequentialPresetBFlat: epsilon dense, alpha2-beta1 conv, flat input."""

    rule = "preset_b_flat"


class Epsilon:
    """LRP-epsilon (``epsilon`` from ``_rule_options``)."""

    rule = "epsilon"


class EpsilonPlusBox:
    """Epsilon on dense layers, z+ on convolutions, z^B at the input layer."""

    rule = "epsilon_plus_box"


class ZPlus:
    """LRP-z+ (bias ignored) with the w+ rule at the input layer."""

    rule = "z_plus"


class GuidedBackprop:
    """Guided backpropagation: the gradient with the ReLUs' backward pass guided."""

    rule = "guided_backprop"


class Gradient:
    """The plain gradient."""

    rule = "gradient"
