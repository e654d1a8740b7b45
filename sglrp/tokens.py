"""The two learned constants of a Vision Transformer, as small Keras layers.

A ViT adds two learned constants to its tokens: a class token put in front of the patch tokens,
and a position embedding added to every token (Dosovitskiy et al., *An Image is Worth 16x16
Words*, ICLR 2021, eq. 1). Neither depends on the image, so the relevance rules of the Keras 3
engine treat both as biases: the share of relevance they take is absorbed, and the rest flows to
the patch tokens (``sglrp/engines/keras3/attention.py``). Build a ViT with these layers, Keras'
own ``MultiHeadAttention``, ``LayerNormalization`` and a ``Cropping1D`` + ``Flatten`` class-token
slice, and the relevance methods explain it (see ``sglrp.demo.model``, architecture ``vit``).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["ClassToken", "PositionEmbedding", "to_grid"]

_register = tf.keras.utils.register_keras_serializable(package="sglrp")


@_register
class ClassToken(tf.keras.layers.Layer):
    """Put a learned token in front of the tokens: ``(N, T, D) -> (N, T + 1, D)``.

    The token is ``weights[0]``, shape ``(1, 1, D)``, initialised to zeros.
    """

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"layer {self.name!r} expects tokens (N, T, D); got shape {tuple(input_shape)}"
            )
        self.token = self.add_weight(
            name="token", shape=(1, 1, int(input_shape[-1])), initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs):
        n = tf.shape(inputs)[0]
        token = tf.broadcast_to(tf.cast(self.token, inputs.dtype), [n, 1, inputs.shape[-1]])
        return tf.concat([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        t = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], t, input_shape[2])


@_register
class PositionEmbedding(tf.keras.layers.Layer):
    """Add a learned embedding to every token: ``x + E``, ``E`` of shape ``(1, T, D)``.

    ``E`` is ``weights[0]``, initialised from a normal distribution of standard deviation 0.02.
    """

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(
                f"layer {self.name!r} expects tokens (N, T, D) with a known T; got shape "
                f"{tuple(input_shape)}"
            )
        self.embedding = self.add_weight(
            name="embedding",
            shape=(1, int(input_shape[1]), int(input_shape[2])),
            initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
        )
        super().build(input_shape)

    def call(self, inputs):
        return inputs + tf.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def to_grid(tokens, grid):
    """Tokens ``(N, T, D)`` as a feature map ``(N, h, w, D)``: ``grid = (h, w, skip)``, the first
    ``skip`` tokens (the class token) left out; ``grid=None`` returns ``tokens`` unchanged."""
    if grid is None:
        return tokens
    h, w, skip = grid
    return tf.reshape(tokens[:, skip:], [-1, h, w, tokens.shape[-1]])
