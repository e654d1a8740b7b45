"""The native Keras 3 engine: LRP rules and gradients as compiled TensorFlow functions.

``graph.py`` walks the model, ``kernels.py`` runs a kernel layer with any weights and its
transpose, ``rules.py`` holds one class per rule and ``propagate.py`` compiles the backward
passes of one model under one rule set (:class:`~.propagate.Propagation`).
"""
