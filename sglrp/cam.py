"""Class activation maps: Grad-CAM (Selvaraju et al. 2017), for one or several image inputs,
and guided Grad-CAM.

The feature layer defaults to the last layer with a 4-D output that depends on the input (the
original hard-coded VGG16's ``block5_pool``). On a Vision Transformer (a model with
``MultiHeadAttention``) it defaults to the tokens the last attention layer reads (the last
block's input tokens, as Grad-CAM for ViTs is usually computed: later tokens reach the class
token through no attention any more, so their gradients are zero at every patch), reshaped to
the patch grid with the class token left out; the patch embedding is never the default. The CAM
is resized bilinearly to the input size (read from the batch, so inputs of variable size work)
and repeated over the input channels, so the map has the input's shape. ``channels_last`` and
``channels_first`` models are both handled: the data format is the one the layers between the
input and the feature layer declare; a model that mixes formats or permutes axes there is
refused. Tokens are read channels-last on the grid of a channels-last patch embedding
(a channels-first one is refused).
"""

from __future__ import annotations

import tensorflow as tf

from .analyzer import Analyzer
from .engines.active import CAMAnalyzer
from .gradients import GBP
from .keras_graph import feeds, layer_of, producers
from .registry import register
from .tokens import to_grid

__all__ = [
    "GradCAM", "MultiGradCAM", "GuidedGradCAM", "default_layer", "data_format", "cams",
    "token_grid",
]


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


#: Layers that move axes: the data format before them says nothing about the axes after.
_AXES_MOVED = ("Permute", "Reshape")


def data_format(model, name: str) -> str:
    """``"channels_last"`` or ``"channels_first"``: the format of layer ``name`` and its input.

    The format declared by the layers that lead from the model's input to ``name`` (those with
    a ``data_format``); channels-last when none declares one. A ValueError if they disagree
    or a ``Permute``/``Reshape`` of a tensor with spatial axes lies between (the input's axes
    are then unknown).
    """
    layer = model.get_layer(name)
    seen, stack, formats = set(), [layer], {}
    while stack:
        current = stack.pop()
        kind = type(current).__name__
        # a Reshape of vectors (N, C), as a squeeze-and-excitation gate has, moves no input axes
        inputs = producers(current)
        vector_in = bool(inputs) and all(
            not isinstance(p.output, list) and len(p.output.shape) <= 2 for p in inputs
        )
        if kind in _AXES_MOVED and not vector_in:
            raise ValueError(
                f"Grad-CAM at layer {name!r}: layer {current.name!r} ({kind}) moves axes "
                "between the input and that layer, so the map's axes are unknown; choose a "
                "feature layer before it (layer_name=) or use another method"
            )
        fmt = getattr(current, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            formats.setdefault(fmt, current.name)
        for producer in producers(current):
            if id(producer) not in seen:
                seen.add(id(producer))
                stack.append(producer)
    if len(formats) > 1:
        raise ValueError(
            f"Grad-CAM at layer {name!r}: the layers before it mix data formats (layer "
            f"{formats['channels_first']!r} is channels_first, layer "
            f"{formats['channels_last']!r} channels_last); use one data format"
        )
    return next(iter(formats), "channels_last")


def cams(features, gradients, inputs, formats, grids=None) -> list:
    """Grad-CAM maps, TensorFlow ops: one per (feature, gradient, input, data format).

    ``sum_k alpha_k A^k`` with ``alpha_k`` the spatial mean of the gradient of feature map
    ``A^k`` (Selvaraju et al. 2017, Eq. 1-2, without the ReLU), resized bilinearly to the
    input's spatial size and repeated over its channels, in the input's layout. ``grids`` (one
    per feature, :func:`token_grid`) puts ViT tokens ``(N, T, D)`` on their patch grid first.
    """
    out = []
    grids = grids or [None] * len(features)
    for f, g, x, fmt, grid in zip(features, gradients, inputs, formats, grids):
        f, g = to_grid(f, grid), to_grid(g, grid)
        first = fmt == "channels_first"
        spatial, channel = ((2, 3), 1) if first else ((1, 2), -1)
        alpha = tf.reduce_mean(g, axis=spatial, keepdims=True)
        cam = tf.reduce_sum(f * alpha, axis=channel)[..., None]  # (N, h, w, 1)
        shape = tf.shape(x)
        size, n_channels = (shape[2:4], shape[1]) if first else (shape[1:3], shape[3])
        cam = tf.image.resize(cam, size, method="bilinear")
        if first:
            out.append(tf.tile(tf.transpose(cam, [0, 3, 1, 2]), [1, n_channels, 1, 1]))
        else:
            out.append(tf.tile(cam, [1, 1, 1, n_channels]))
    return out


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

    The grid ``h x w`` is that of the last 4-D layer before ``layer`` (the patch embedding,
    channels-last); ``T = h w + skip``, with ``skip = 1`` for a class token in front. ``None``
    for a 4-D layer.

    Raises
    ------
    ValueError
        If ``layer``'s output is neither 4-D nor tokens that match such a grid, or the patch
        embedding is channels-first.
    """
    shape = tuple(layer.output.shape)
    if len(shape) == 4:
        return None
    patches = _last_4d(model, layer_of(model.inputs[0]), before=layer) if len(shape) == 3 else None
    if patches is not None:
        fmt = data_format(model, patches.name)
        if fmt != "channels_last":
            raise ValueError(
                f"Grad-CAM at tokens {layer.name!r}: the patch embedding {patches.name!r} before "
                f"them is {fmt}, so the tokens' order on its grid is unknown; use a "
                "channels_last patch embedding or choose a 4-D feature layer (layer_name=)"
            )
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

    float32_copy = False

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
        #: The data format of each feature layer and its input.
        self.data_formats = [
            data_format(model, name) if grid is None else "channels_last"
            for name, grid in zip(names, grids)
        ]
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
