"""Grad-CAM in the innvestigate engine: the CAMs as tensors of the analyzer's private graph."""

from __future__ import annotations

import tensorflow as tf

from ... import cam as front  # the shared CAM ops (front.cams)
from .base import Analyzer

__all__ = ["CAMAnalyzer"]


class CAMAnalyzer(Analyzer):
    """Grad-CAM of the selected logits at ``self.layer_name`` (one layer per image input).

    The front (``sglrp/cam.py``) checks the arguments and chooses the layers (``_cam_layers``).
    """

    def _create(self, model) -> None:
        names = self._cam_layers(model)
        self._selection = tf.compat.v1.placeholder(tf.float32, (None, self.n_classes))
        score = tf.reduce_sum(self._logits * self._selection, axis=1)
        features = [model.get_layer(name).output for name in names]
        grads = tf.gradients(score, features)
        self._maps = front.cams(features, grads, model.inputs, self.data_formats, self.token_grids)

    def _analyze_batch(self, x, selection):
        feed = dict(zip(self._model_inputs, x))
        feed[self._selection] = selection
        return list(self._graph.run(self._maps, feed))
