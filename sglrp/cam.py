"""Class activation maps: Grad-CAM (Selvaraju et al. 2017), for one or several image inputs,
and guided Grad-CAM.

The feature layer defaults to the last layer with a 4-D output that depends on the input (the
original hard-coded VGG16's ``block5_pool``). The CAM is resized to the input size by
:func:`upsample` and repeated over the input channels, so the map has the input's shape.
"""

from __future__ import annotations

import tensorflow as tf

from .base import Analyzer
from .gradients import GBP
from .registry import register

__all__ = ["GradCAM", "MultiGradCAM", "GuidedGradCAM", "upsample"]


def upsample(maps, size):
    """Bilinear resize of (N, h, w, 1) maps to (N, *size, 1) (in the graph)."""
    return tf.image.resize(maps, size, method="bilinear")


def _depends_on(tensor, placeholder) -> bool:
    seen, stack = set(), [tensor.op]
    while stack:
        op = stack.pop()
        if op is placeholder.op:
            return True
        for t in op.inputs:
            if t.op.name not in seen:
                seen.add(t.op.name)
                stack.append(t.op)
    return False


def default_layer(model, model_input) -> str:
    """The last layer with a 4-D output (N, h, w, k) computed from ``model_input``."""
    for layer in reversed(model.layers):
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        out = layer.output
        if not isinstance(out, list) and len(out.shape) == 4 and _depends_on(out, model_input):
            return layer.name
    raise ValueError(
        f"model {model.name!r} has no layer with a 4-D output (N, h, w, k) after input "
        f"{model_input.name!r}; Grad-CAM needs a convolutional feature layer"
    )


@register("grad_cam")
class GradCAM(Analyzer):
    """Grad-CAM of the target's logit.

    Parameters
    ----------
    model : tf.keras.Model
        The classifier (a final softmax is stripped).
    target_id : int, optional
        Default target; ``None`` explains the predicted class.
    layer_name : str or list of str, optional
        The feature layer (one per image input); by default the last layer with a 4-D output.
    relu : bool
        Keep only the positive part (the Grad-CAM paper's ReLU); off by default as the original.
    """

    def __init__(self, model, target_id=None, layer_name=None, relu=False):
        self.layer_name = layer_name
        super().__init__(model, target_id, relu)

    def _create(self, model) -> None:
        names = self.layer_name
        if names is None:
            names = [default_layer(model, x) for x in model.inputs]
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != len(model.inputs):
            raise ValueError(
                f"got {len(names)} layer names for a model with {len(model.inputs)} inputs"
            )
        valid = [layer.name for layer in model.layers if len(layer.output.shape) == 4]
        self._selection = tf.compat.v1.placeholder(tf.float32, (None, self.n_classes))
        score = tf.reduce_sum(self._logits * self._selection, axis=1)
        self._maps = []
        for name, x in zip(names, model.inputs):
            if name not in valid:
                raise ValueError(
                    f"layer {name!r} is not a layer with a 4-D output in model "
                    f"{self._spec.name!r}; choose one of {valid}"
                )
            features = model.get_layer(name).output
            grads = tf.gradients(score, features)[0]
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            cam = tf.reduce_sum(features * weights, axis=-1, keepdims=True)
            cam = upsample(cam, tuple(x.shape[1:3]))
            self._maps.append(tf.tile(cam, [1, 1, 1, int(x.shape[-1])]))
        self.layer_names = names

    def _analyze_batch(self, x, selection):
        feed = dict(zip(self._model_inputs, x))
        feed[self._selection] = selection
        return list(self._graph.run(self._maps, feed))


@register("grad_cam.multi_input")
class MultiGradCAM(GradCAM):
    """Grad-CAM for a model with several image inputs: one map per input.

    ``analyze([x1, x2])`` returns ``[cam1, cam2]``; ``layer_name`` takes one name per input.
    """

    def __init__(self, model, target_id=None, layer_name=None, relu=False):
        if len(model.inputs) < 2:
            raise ValueError(
                f"MultiGradCAM is for models with several inputs; {model.name!r} has one "
                "(use GradCAM)"
            )
        super().__init__(model, target_id, layer_name, relu)


@register("guided_grad_cam")
class GuidedGradCAM(Analyzer):
    """Guided Grad-CAM: Grad-CAM times guided backprop, for the same target."""

    def __init__(self, model, target_id=None, layer_name=None, relu=False):
        self.grad_cam = GradCAM(model, target_id, layer_name)
        self.guided_backprop = GBP(model, target_id)
        self._spec = self.grad_cam._spec
        self.target_id, self.relu = target_id, bool(relu)

    @property
    def n_builds(self) -> int:
        return self.grad_cam.n_builds + self.guided_backprop.n_builds

    def predict_logits(self, x, batch_size=None):
        return self.grad_cam.predict_logits(x, batch_size)

    def _analyze_batch(self, x, selection):
        cams = self.grad_cam._analyze_batch(x, selection)
        guided = self.guided_backprop._analyze_batch(x, selection)
        return [c * g for c, g in zip(cams, guided)]

    def close(self) -> None:
        self.grad_cam.close()
        self.guided_backprop.close()
