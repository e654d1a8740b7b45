"""Grad-CAM in the innvestigate engine: the CAMs as tensors of the analyzer's private graph."""

from __future__ import annotations

import tensorflow as tf

from ...tokens import to_grid
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
        self._maps = []
        for name, x, grid in zip(names, model.inputs, self.token_grids):
            features = model.get_layer(name).output
            grads = to_grid(tf.gradients(score, features)[0], grid)
            features = to_grid(features, grid)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cam = tf.reduce_sum(features * weights, axis=-1, keepdims=True)
            cam = tf.image.resize(cam, tuple(x.shape[1:3]), method="bilinear")
            self._maps.append(tf.tile(cam, [1, 1, 1, int(x.shape[-1])]))

    def _analyze_batch(self, x, selection):
        feed = dict(zip(self._model_inputs, x))
        feed[self._selection] = selection
        return list(self._graph.run(self._maps, feed))
