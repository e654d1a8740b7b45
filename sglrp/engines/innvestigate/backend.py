"""A private graph per analyzer, and the Keras 2 class swaps it must undo.

innvestigate 2.x builds its analyzers with the TF1 graph API and needs eager execution off.
Turning eager execution off for the whole process breaks every model a user built before
(and is easy to get wrong in a notebook), so sglrp never does it. Each analyzer builds a copy
of the model inside its own ``tf.Graph`` and runs it with its own session; the user's process
stays in eager mode.

Building Keras layers inside a graph swaps the base classes of the Keras layer classes to their
v1 versions for the whole process (``keras/src/utils/version_utils.py``), which would break the
user's eager models. :func:`keras_classes_preserved` restores the class hierarchy afterwards.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

__all__ = ["PrivateGraph", "quiet"]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the Python warnings TF, Keras and innvestigate emit while building graphs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _keras_layer_classes() -> list[type]:
    from keras.src.engine import base_layer, base_layer_v1

    seen: set[type] = set()
    stack = [base_layer.Layer, base_layer_v1.Layer]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return list(seen)


@contextlib.contextmanager
def keras_classes_preserved() -> Iterator[None]:
    """Undo the v1/v2 base-class swaps Keras makes while layers are built in a graph."""
    snapshot = [(cls, cls.__bases__) for cls in _keras_layer_classes()]
    try:
        yield
    finally:
        for cls, bases in snapshot:
            if cls.__bases__ != bases:
                cls.__bases__ = bases


@contextlib.contextmanager
def ops_wrapped_without_evaluation() -> Iterator[None]:
    """Let Keras wrap raw TF ops on its tensors without evaluating their other inputs.

    In graph mode Keras runs a session to turn every non-Keras input of a wrapped op (here:
    the rules' positive/negative weights) into a NumPy constant. That copies the weights once
    more per analyzer and runs the graph while it is still being built. Keras' own switch
    keeps the tensors instead.
    """
    from keras.src.engine import base_layer_utils

    before = base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION
    base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = True
    try:
        yield
    finally:
        base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = before


class PrivateGraph:
    """A ``tf.Graph`` with its own session, where one analyzer is built and run."""

    def __init__(self) -> None:
        self.graph = tf.Graph()
        config = tf.compat.v1.ConfigProto()
        config.gpu_options.allow_growth = True
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)
        self._assign = None

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Context in which Keras and innvestigate build into this graph."""
        if self.session is None:
            raise RuntimeError("this analyzer was closed; create a new one")
        with (
            quiet(),
            keras_classes_preserved(),
            ops_wrapped_without_evaluation(),
            self.graph.as_default(),
            self.session.as_default(),
        ):
            yield

    def load(self, variables, values) -> None:
        """Assign ``values`` to the model's ``variables``; no other variable is initialised.

        innvestigate's rules build copies of layers whose own (random) kernels are replaced by
        tensors derived from the model's weights; those kernels are never read, and leaving them
        uninitialised keeps them out of memory. The assignments are built into the graph at the
        first call (made when the graph is complete: TF warns, op by op, about graphs changed
        after a session has run them) and reused by later calls (new weights of the model).
        """
        if self._assign is None:
            with self.graph.as_default():
                placeholders = [
                    tf.compat.v1.placeholder(v.dtype.base_dtype, np.shape(x))
                    for v, x in zip(variables, values)
                ]
                assigns = [v.assign(p, read_value=False) for v, p in zip(variables, placeholders)]
                for v in tf.compat.v1.global_variables():
                    v._keras_initialized = True  # Keras would otherwise check them with a run
            self._assign = (placeholders, assigns)
        placeholders, assigns = self._assign
        self.run(assigns, dict(zip(placeholders, values)))

    def run(self, fetches, feed_dict: dict) -> np.ndarray:
        if self.session is None:
            raise RuntimeError("this analyzer was closed; create a new one")
        with quiet():
            return self.session.run(fetches, feed_dict=feed_dict)

    def close(self) -> None:
        """Release the session and the graph (and the memory they hold)."""
        if self.session is not None:
            self.session.close()
        self.session = None
        self.graph = None
