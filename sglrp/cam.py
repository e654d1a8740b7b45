"""Class activation maps: Grad-CAM (Selvaraju et al. 2017), for one or several image inputs,
and guided Grad-CAM.

The feature layer defaults to the last layer with a 4-D output that depends on the input (the
original hard-coded VGG16's ``block5_pool``). On a Vision Transformer (a model with
``MultiHeadAttention``) it defaults to the tokens the last attention layer reads (the last
block's input tokens, as Grad-CAM for ViTs is usually computed: later tokens reach the class
token through no attention any more, so their gradients are zero at every patch), reshaped to
the patch grid with the class token left out; the patch embedding is never the default. The CAM
is resized bilinearly to the input size and repeated over the input channels, so the map has
the input's shape.
"""

from __future__ import annotations

import tensorflow as tf

from .analyzer import Analyzer
from .engines.active import CAMAnalyzer
from .gradients import GBP
from .keras_graph import feeds, layer_of, producers
from .registry import register

__all__ = ["GradCAM", "MultiGradCAM", "GuidedGradCAM", "default_layer", "token_grid"]


def _last_4d(model, source, before=None):
    """The last layer with a 4-D output computed from ``source`` (up to ``before``)."""
    layers = model.layers if before is None else model.layers[: model.layers.index(before)]
    for layer in reversed(layers):
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        out = layer.output
        if not isinstance(out, list) and len(out.shape) == 4 and feeds(source, layer):
            return layer
    return None


def _last_attention(model, source):
    for layer in reversed(model.layers):
        if isinstance(layer, tf.keras.layers.MultiHeadAttention) and feeds(source, layer):
            return layer
    return None


def default_layer(model, index: int) -> str | None:
    """The feature layer of Grad-CAM for model input ``index``.

    The last layer with a 4-D output computed from the input; on a model with
    ``MultiHeadAttention``, the layer whose tokens the last attention layer reads as queries.
    """
    source = layer_of(model.inputs[index])
    attention = _last_attention(model, source)
    if attention is not None:
        return producers(attention)[0].name
    layer = _last_4d(model, source)
    return None if layer is None else layer.name


def token_grid(model, layer) -> tuple[int, int, int] | None:
    """How the tokens ``(N, T, D)`` of ``layer`` lie on the patch grid: ``(h, w, skip)``.

    The grid ``h x w`` is that of the last 4-D layer before ``layer`` (the patch embedding);
    ``T = h w + skip``, with ``skip = 1`` for a class token in front. ``None`` for a 4-D layer.

    Raises
    ------
    ValueError
        If ``layer``'s output is neither 4-D nor tokens that match such a grid.
    """
    shape = tuple(layer.output.shape)
    if len(shape) == 4:
        return None
    patches = _last_4d(model, layer_of(model.inputs[0]), before=layer) if len(shape) == 3 else None
    if patches is not None:
        h, w = patches.output.shape[1:3]
        if h is not None and w is not None and shape[1] in (h * w, h * w + 1):
            return int(h), int(w), int(shape[1] - h * w)
    raise ValueError(
        f"layer {layer.name!r} of model {model.name!r} has output shape {shape}: neither a 4-D "
        "feature map (N, h, w, k) nor tokens (N, T, D) with T = h w (+ 1 class token in front) "
        "for the h x w grid of a patch embedding before it; Grad-CAM has no spatial map there"
    )


@register("grad_cam")
class GradCAM(CAMAnalyzer):
    """Grad-CAM of the target's logit.

    Parameters
    ----------
    model : keras.Model
        The classifier (a final softmax is stripped).
    target_id : int, optional
        Default target; ``None`` explains the predicted class.
    layer_name : str or list of str, optional
        The feature layer (one per image input); by default the last layer with a 4-D output.
    relu : bool
        Keep only the positive part (the Grad-CAM paper's ReLU); off by default as the original.
    """

    def __init__(self, model, target_id=None, layer_name=None, relu=False):
        names = [layer_name] if isinstance(layer_name, str) or layer_name is None else layer_name
        if not isinstance(names, (list, tuple)) or not all(
            n is None or isinstance(n, str) for n in names
        ):
            raise TypeError(
                f"layer_name must be a layer name (str) or a list of names, got {layer_name!r}"
            )
        self.layer_name = layer_name
        super().__init__(model, target_id, relu)

    def _cam_layers(self, model) -> list[str]:
        """The feature layer names, one per model input, checked against ``model``."""
        names = self.layer_name
        if names is None:
            names = []
            for i, x in enumerate(model.inputs):
                name = default_layer(model, i)
                if name is None:
                    raise ValueError(
                        f"model {model.name!r} has no layer with a 4-D output (N, h, w, k) after "
                        f"input {x.name!r}; Grad-CAM needs a convolutional feature layer"
                    )
                names.append(name)
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != len(model.inputs):
            raise ValueError(
                f"got {len(names)} layer names for a model with {len(model.inputs)} inputs"
            )
        valid = [layer.name for layer in model.layers if len(layer.output.shape) == 4]
        grids = []
        for name in names:
            layer = next((la for la in model.layers if la.name == name), None)
            if layer is None or (name not in valid and len(layer.output.shape) != 3):
                raise ValueError(
                    f"layer {name!r} is not a layer with a 4-D output (or ViT tokens) in model "
                    f"{self._spec.name!r}; choose one of {valid}"
                )
            grids.append(token_grid(model, layer))
        self.layer_names = names
        #: per layer: ``None`` (a 4-D feature map) or ``(h, w, skip)`` (tokens, :func:`token_grid`)
        self.token_grids = grids
        return names


@register("grad_cam.multi_input")
class MultiGradCAM(GradCAM):
    """Grad-CAM for a model with several image inputs: one map per input.

    ``analyze([x1, x2])`` returns ``[cam1, cam2]``; ``layer_name`` takes one name per input.
    """

    min_inputs = 2  # never suggested for a model with one input

    def __init__(self, model, target_id=None, layer_name=None, relu=False):
        if len(getattr(model, "inputs", None) or []) < 2:
            raise ValueError(
                f"MultiGradCAM is for models with several inputs; {model.name!r} has one "
                "(use GradCAM)"
            )
        super().__init__(model, target_id, layer_name, relu)


@register("guided_grad_cam")
class GuidedGradCAM(Analyzer):
    """Guided Grad-CAM: Grad-CAM times guided backprop, for the same target."""

    supports = GBP.supports

    def __init__(self, model, target_id=None, layer_name=None, relu=False):
        self._parts = None
        self.layer_name = layer_name
        super().__init__(model, target_id, relu)

    def _build(self) -> None:
        model = self._user_model
        self.grad_cam = GradCAM(model, self.target_id, self.layer_name)
        self.guided_backprop = GBP(model, self.target_id)
        self._parts = (self.grad_cam, self.guided_backprop)

    @property
    def n_builds(self) -> int:
        return sum(p.n_builds for p in self._parts) if self._parts else 0

    @n_builds.setter
    def n_builds(self, value) -> None:  # set by the front; the parts count their own builds
        pass

    def _follow_weights(self) -> None:
        for part in self._parts:
            part._follow_weights()

    def _logits_batch(self, x):
        return self.grad_cam._logits_batch(x)

    def _analyze_batch(self, x, selection):
        cams = self.grad_cam._analyze_batch(x, selection)
        guided = self.guided_backprop._analyze_batch(x, selection)
        return [c * g for c, g in zip(cams, guided)]

    def close(self) -> None:
        for part in self._parts or ():
            part.close()
