"""The affine map of a kernel layer with any weights, and its transpose.

Every LRP rule on a kernel layer is the layer's own map run with transformed weights (``w+``,
``w-``, ones, ``w**2``) and its transpose (the gradient with respect to the input), as
innvestigate builds it from copies of the layer (``backend/graph.py``,
``copy_layer_wo_activation``). :class:`KernelMap` does the same from the layer's configuration,
reading the weights inside the compiled function (so the analysis follows the model's current
weights).

The transpose takes relevance for several heads stacked on the batch axis, ``(H*N, ...)``, while
the forward ran on ``(N, ...)``: one transposed convolution serves every head. Dense, Conv1D,
Conv2D, DepthwiseConv2D and SeparableConv2D in ``channels_last`` without dilation have an
explicit transpose (the op TensorFlow's own gradient uses); any other configuration falls back to
``tf.gradients`` once per head.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

__all__ = ["KernelMap", "is_kernel_layer"]

layers = keras.layers

#: The kernel layers this engine knows (innvestigate's ``contains_kernel``, restricted).
KERNEL_LAYERS = (
    layers.Dense,
    layers.Conv1D,
    layers.Conv2D,
    layers.DepthwiseConv2D,
    layers.SeparableConv2D,
)
_TRANSPOSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)


def is_kernel_layer(layer) -> bool:
    """innvestigate's ``contains_kernel``: the layer has a kernel."""
    return (
        hasattr(layer, "kernel")
        or hasattr(layer, "depthwise_kernel")
        or hasattr(layer, "pointwise_kernel")
    )


def _is_grouped_depthwise(layer) -> bool:
    """A channels-last Conv2D whose every group reads one input channel."""
    return (
        type(layer) is layers.Conv2D
        and getattr(layer, "groups", 1) > 1
        and layer.data_format == "channels_last"
        and layer.kernel.shape[2] == 1
    )


def _tuple(value, n):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


class KernelMap:
    """``z = x * kernels + bias`` of one kernel layer, without its activation.

    Parameters
    ----------
    layer : keras layer
        A Dense, Conv1D, Conv2D, DepthwiseConv2D or SeparableConv2D layer.

    Raises
    ------
    ValueError
        For any other layer with a kernel, or a grouped convolution.
    """

    def __init__(self, layer) -> None:
        if not isinstance(layer, KERNEL_LAYERS) or isinstance(layer, _TRANSPOSED):
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) has a kernel this engine cannot "
                "propagate through; supported: Dense, Conv1D, Conv2D, DepthwiseConv2D, "
                "SeparableConv2D"
            )
        #: A Conv2D with one input channel per group (ConvNeXt's 7x7) is a depthwise convolution.
        self.grouped_depthwise = _is_grouped_depthwise(layer)
        if getattr(layer, "groups", 1) != 1 and not self.grouped_depthwise:
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) is a grouped convolution "
                f"(groups={layer.groups}) with several input channels per group, which this "
                "engine does not propagate through"
            )
        if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) uses LoRA or quantized weights, "
                "which this engine does not propagate through"
            )
        self.layer = layer
        self.kind = {
            layers.Dense: "dense",
            layers.Conv1D: "conv",
            layers.Conv2D: "conv",
            layers.DepthwiseConv2D: "depthwise",
            layers.SeparableConv2D: "separable",
        }[next(c for c in KERNEL_LAYERS if isinstance(layer, c))]
        if self.grouped_depthwise:
            self.kind = "depthwise"
        self.use_bias = bool(getattr(layer, "use_bias", False))
        if self.kind != "dense":
            rank = layer.rank
            self.rank = rank
            self.strides = _tuple(layer.strides, rank)
            self.dilation = _tuple(layer.dilation_rate, rank)
            self.padding = layer.padding
            self.channels_last = layer.data_format == "channels_last"
        self.explicit = self.kind == "dense" or (
            self.channels_last and all(d == 1 for d in self.dilation) and self.rank in (1, 2)
        )

    # -- weights -----------------------------------------------------------------------------
    def kernels(self) -> list:
        """The layer's kernels, read now (inside the compiled function)."""
        layer = self.layer
        if self.kind == "separable":
            return [layer.depthwise_kernel, layer.pointwise_kernel]
        if self.grouped_depthwise:  # (kh, kw, 1, C m) -> (kh, kw, C, m): the same channel order
            kh, kw, _, filters = layer.kernel.shape
            return [tf.reshape(layer.kernel, (kh, kw, layer.groups, filters // layer.groups))]
        return [layer.kernel]

    def bias(self):
        return self.layer.bias if self.use_bias else None

    # -- the map -----------------------------------------------------------------------------
    def apply(self, x, kernels, bias=None):
        """``x`` through the layer with ``kernels`` (and ``bias``), no activation."""
        layer = self.layer
        if self.kind == "dense":
            z = ops.matmul(x, kernels[0])
        elif self.kind == "conv":
            if self.padding == "causal":
                x = ops.pad(x, layer._compute_causal_padding())
            z = ops.conv(
                x,
                kernels[0],
                strides=list(self.strides),
                padding="valid" if self.padding == "causal" else self.padding,
                dilation_rate=self.dilation,
                data_format=layer.data_format,
            )
        elif self.kind == "depthwise":
            z = ops.depthwise_conv(
                x,
                kernels[0],
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation,
                data_format=layer.data_format,
            )
        else:
            z = ops.separable_conv(
                x,
                kernels[0],
                kernels[1],
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation,
                data_format=layer.data_format,
            )
        if bias is not None:
            if self.kind == "dense" or self.channels_last:
                z = z + bias
            else:
                z = z + ops.reshape(bias, (1, -1) + (1,) * self.rank)
        return z

    def transpose(self, s, kernels, x, stacks: int):
        """The transpose of the linear map at ``kernels`` applied to ``s``.

        ``s`` holds ``stacks`` tensors of the output's shape on the batch axis, ``(k*N, ...)``
        for an input ``x`` of ``(N, ...)``; the result is ``(k*N, ...)`` shaped like ``x``.
        """
        if self.explicit:
            return self._explicit_transpose(s, kernels, x)
        z = self.apply(x, kernels)  # only its gradient is used: the forward is pruned
        parts = tf.split(s, stacks, axis=0) if stacks > 1 else [s]
        grads = [tf.gradients(z, x, part, stop_gradients=[x])[0] for part in parts]
        return tf.concat(grads, 0) if stacks > 1 else grads[0]

    def transpose_many(self, s, kernel_sets: list, x, stacks: int) -> list:
        """:meth:`transpose` for several kernel sets: one transposed product where the kernels
        stack along their input axis (Dense, Conv1D, Conv2D)."""
        if not (self.explicit and self.kind in ("dense", "conv")) or len(kernel_sets) == 1:
            return [self.transpose(s, k, x, stacks) for k in kernel_sets]
        stacked = [tf.concat([k[0] for k in kernel_sets], axis=-2)]
        out = self._explicit_transpose(s, stacked, x, channels=len(kernel_sets))
        return tf.split(out, len(kernel_sets), axis=-1)

    def _explicit_transpose(self, s, kernels, x, channels: int = 1):
        """The transpose by the op TensorFlow's gradient uses; ``channels`` kernels stacked
        along the input axis give ``channels`` results side by side on the last axis."""
        batch = tf.shape(s)[:1]
        if self.kind == "dense":
            if len(s.shape) == 2:  # (W s^T)^T: oneDNN's s W^T is several times slower
                return tf.transpose(tf.linalg.matmul(kernels[0], s, transpose_b=True))
            return tf.linalg.matmul(s, kernels[0], transpose_b=True)
        if self.rank == 1:  # as a 2-D map on (N, 1, L, C)
            x2 = tf.expand_dims(x, 1)
            s2 = tf.expand_dims(s, 1)
            kernels = [tf.expand_dims(k, 0) for k in kernels]
            strides, padding = (1, *self.strides), self.padding
            if padding == "causal":
                left = self.layer._compute_causal_padding()[1][0]
                x2 = tf.pad(x2, [[0, 0], [0, 0], [left, 0], [0, 0]])
                padding = "valid"
            out = self._transpose_2d(s2, kernels, x2, strides, padding, batch, channels)
            if self.padding == "causal":
                out = out[:, :, left:, :]
            return tf.squeeze(out, 1)
        return self._transpose_2d(s, kernels, x, self.strides, self.padding, batch, channels)

    def _transpose_2d(self, s, kernels, x, strides, padding, batch, channels=1):
        shape = tf.shape(x)
        in_shape = tf.concat([batch, shape[1:-1], shape[-1:] * channels], 0)
        strides4 = [1, *strides, 1]
        padding = padding.upper()
        if self.kind == "conv":
            return tf.nn.conv2d_transpose(s, kernels[0], in_shape, strides4, padding)
        if self.kind == "depthwise":
            return tf.nn.depthwise_conv2d_backprop_input(in_shape, kernels[0], s, strides4, padding)
        # separable: depthwise (strided) then a 1x1 pointwise convolution
        depthwise, pointwise = kernels
        mid = tf.linalg.matmul(s, pointwise[0, 0], transpose_b=True)
        return tf.nn.depthwise_conv2d_backprop_input(in_shape, depthwise, mid, strides4, padding)
