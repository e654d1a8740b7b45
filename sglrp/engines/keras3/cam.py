"""Grad-CAM in the Keras 3 engine: features and logits of one model, the CAMs in a tf.function."""

from __future__ import annotations

import keras
import tensorflow as tf

from ... import cam as front  # the shared CAM ops (front.cams)
from .base import Analyzer

__all__ = ["CAMAnalyzer"]


class CAMAnalyzer(Analyzer):
    """Grad-CAM of the selected logits at the layers the front chooses (``_cam_layers``)."""

    def _create(self, model) -> None:
        names = self._cam_layers(model)
        features = [model.get_layer(name).output for name in names]
        self._cam_model = keras.Model(model.inputs, [*features, model.outputs[0]])
        signature = [
            [tf.TensorSpec((None, *x.shape[1:]), x.dtype) for x in model.inputs],
            tf.TensorSpec((None, self.n_classes), model.outputs[0].dtype),
        ]
        self._cams = tf.function(self._compute, input_signature=signature)
        self._logits = tf.function(lambda xs: self._cam_model(xs)[-1],
                                   input_signature=signature[:1])

    def _compute(self, inputs, selection):
        with tf.GradientTape() as tape:
            *features, logits = self._cam_model(inputs)
            score = tf.reduce_sum(logits * selection, axis=1)
        grads = tape.gradient(score, features)
        return front.cams(features, grads, inputs, self.data_formats, self.token_grids)

    def _analyze_batch(self, x, selection):
        self._require_open()
        return [m.numpy() for m in self._cams(x, selection)]

    def _logits_batch(self, x):
        self._require_open()
        return self._logits(x).numpy()

    def _require_open(self) -> None:
        if self._logits_model is None:
            raise RuntimeError("this analyzer was closed; create a new one")

    def close(self) -> None:
        super().close()
        self._cam_model = self._cams = self._logits = None
