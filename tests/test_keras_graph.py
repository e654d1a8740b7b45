"""``sglrp/keras_graph.py``: the same reading of a model's graph on Keras 2.14 and Keras 3."""

from __future__ import annotations

import pytest
import tensorflow as tf
from engine_free import sglrp_module

keras_graph = sglrp_module("keras_graph")
layers = tf.keras.layers


def two_inputs():
    """a -> conv_a -> relu_a \\
                              concat -> gap -> logits;  b -> conv_b -/
    """
    a, b = tf.keras.Input((5, 5, 1), name="a"), tf.keras.Input((5, 5, 1), name="b")
    ha = layers.ReLU(name="relu_a")(layers.Conv2D(2, 3, name="conv_a")(a))
    hb = layers.Conv2D(2, 3, name="conv_b")(b)
    h = layers.GlobalAveragePooling2D(name="gap")(layers.Concatenate(name="concat")([ha, hb]))
    return tf.keras.Model([a, b], layers.Dense(3, name="logits")(h), name="two")


def test_calls_in_order_of_evaluation_with_their_tensors():
    model = two_inputs()
    calls = keras_graph.calls(model)
    names = [call.layer.name for call in calls]
    assert set(names) == {"conv_a", "relu_a", "conv_b", "concat", "gap", "logits"}
    assert names.index("relu_a") < names.index("concat") < names.index("gap")
    concat = calls[names.index("concat")]
    assert [keras_graph.layer_of(t).name for t in concat.inputs] == ["relu_a", "conv_b"]
    assert concat.outputs[0] is model.get_layer("concat").output
    assert len(concat.args) == 1 and len(concat.args[0]) == 2  # the list [ha, hb]
    assert keras_graph.layer_of(model.inputs[1]).name == "b"


def test_producers_and_feeds():
    model = two_inputs()
    layer = model.get_layer
    assert [p.name for p in keras_graph.producers(layer("concat"))] == ["relu_a", "conv_b"]
    assert keras_graph.producers(layer("a")) == []
    a, b = keras_graph.layer_of(model.inputs[0]), keras_graph.layer_of(model.inputs[1])
    assert keras_graph.feeds(a, layer("relu_a")) and not keras_graph.feeds(b, layer("relu_a"))
    assert keras_graph.feeds(a, layer("logits")) and keras_graph.feeds(b, layer("logits"))
    assert not keras_graph.feeds(layer("logits"), layer("gap"))


def test_a_nested_model_is_one_call():
    x = tf.keras.Input((4,))
    inner = tf.keras.Model(x, layers.Dense(3, name="hidden")(x), name="base")
    y = tf.keras.Input((4,))
    model = tf.keras.Model(y, layers.Dense(2, name="head")(inner(y)))
    assert [call.layer for call in keras_graph.calls(model)] == [inner, model.get_layer("head")]
    assert [call.layer.name for call in keras_graph.calls(inner)] == ["hidden"]


@pytest.mark.parametrize("kind", ["functional", "sequential", "sequential_built", "subclassed"])
def test_is_graph(kind):
    if kind == "functional":
        model, expected = two_inputs(), True
    elif kind == "sequential":
        model = tf.keras.Sequential([tf.keras.Input((3,)), layers.Dense(2)])
        expected = True
        assert [c.layer for c in keras_graph.calls(model)] == model.layers
    elif kind == "sequential_built":
        model, expected = tf.keras.Sequential([layers.Dense(2)]), True
        model.build((None, 3))
    else:

        class Net(tf.keras.Model):
            def call(self, x):
                return x

        model, expected = Net(), False
        model(tf.zeros((1, 3)))
    assert keras_graph.is_graph(model) is expected


def test_nested_name():
    name = keras_graph.nested_name("base", "dense")
    assert name == ("base/dense" if keras_graph.KERAS_MAJOR < 3 else "base.dense")
