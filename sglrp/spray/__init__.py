"""Spectral relevance analysis (SpRAy): the strategies a model uses across a whole data set.

Lapuschkin, Wäldchen, Binder, Montavon, Samek, Müller, *Unmasking Clever Hans predictors and
assessing what machines really learn*, Nature Communications 10:1096 (2019): the relevance maps
of one class are clustered spectrally; a cluster of maps that all point at something other than
the object (a copyright tag, a mark) is a shortcut the model learned.

* :func:`analyze` on arrays (a notebook): :mod:`~sglrp.spray.analysis`;
* ``sglrp spray OUT`` on an ``sglrp explain`` output folder: :mod:`~sglrp.spray.inputs` (the
  manifest, groups, maps read as a stream) -> :mod:`~sglrp.spray.analysis` ->
  :mod:`~sglrp.spray.outputs` (``OUT/spray/``: ``clusters.json``, figures, ``report.html``);
  :mod:`~sglrp.spray.run` joins them, :mod:`~sglrp.spray.cli` is the parser;
* the planted-shortcut data set and its two shipped models: :mod:`~sglrp.spray.planted`,
  :mod:`~sglrp.spray.train`; ``sglrp demo --spray``: :mod:`~sglrp.spray.demo`.
"""

from .analysis import SprayResult, analyze, eigengap, prepare, scores
from .inputs import SprayError
from .run import spray_folder

__all__ = ["SprayResult", "SprayError", "analyze", "eigengap", "prepare", "scores",
           "spray_folder"]
