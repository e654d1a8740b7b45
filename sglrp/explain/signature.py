"""The run signature: what a map is computed from, and which earlier outputs a run may reuse.

A map's **signature** is a JSON object of everything that changes its numbers:

* ``sglrp``, ``engine``: the library version and its engine;
* ``model``: ``"demo"``, ``"vgg16"``, or ``"sha256:<hex>"`` of a model file's content;
* ``weights``: ``"imagenet"`` (VGG16's published weights), ``"sha256:<hex>"`` of a weights file
  (the demo model's shipped file by default), or ``None`` (a model file's own weights);
* ``preprocess``: the resolved ``--preprocess`` choice, present only when it is not what the
  model was fed before the option existed (``caffe`` for ``vgg16``, ``0-1`` otherwise: those
  maps are unchanged and keep their names);
* ``method`` and ``options``: the method name and the exact keyword arguments its analyzer is
  built with (``relu``; ``low``, ``high`` for the methods that take bounds);
* ``rules``: :data:`RULES_SEPARABLE`, only for the relevance (LRP) methods on a model with a
  ``SeparableConv2D`` layer, whose propagation through it changed (it is propagated as the
  depthwise and the 1x1 convolution it is);
* ``target``: ``"auto"`` or the class id;
* ``input``: ``"sha256:<hex>"`` of the image file's content;
* ``decoder``: :data:`sglrp.explain.inputs.DECODER_16BIT`, only for 16-bit images, whose
  decoding changed (scaled by the format's range, not by the image's maximum).

The optional fields appear only where a map's numbers changed between versions, so that every
other map keeps its signature, its name and its place in an earlier run's folder.

Output formats, batch size, ``--top-k`` and ``--max-megapixels`` change what is written, not the
numbers, and are not part of it. The first 12 hex digits of the SHA-256 of the signature end
every output name (:func:`sglrp.explain.outputs.output_key`), and each manifest record stores
the signature in full. An earlier output is reused only when a record with the same name and an
equal signature says it was finished and its files are all there, unchanged: their sizes and
SHA-256 equal the record's (``verify="size"``: their sizes only), or, for records of versions
that did not store them, the ``.npy`` file's header says it is complete and of the model's
input shape. Anything else is computed again (a changed or truncated output: under its name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from .outputs import npy_intact, output_files

__all__ = ["file_sha256", "model_identity", "method_signature", "rules_version",
           "map_signature", "digest", "Resume", "RULES_SEPARABLE", "VERIFY"]

#: How a resumed run checks the outputs it reuses (``--verify``).
VERIFY = ("sha256", "size")

#: The signature's ``rules`` of relevance maps of models with ``SeparableConv2D`` layers.
RULES_SEPARABLE = "separable_conv2d=depthwise+pointwise"

_CHUNK = 1 << 20


def file_sha256(path) -> str:
    """``"sha256:<hex>"`` of a file's content, read in chunks.

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def model_identity(model: str, weights: str | None = None,
                   preprocess: str | None = None) -> dict:
    """``{"model": ..., "weights": ...}`` for ``--model`` and ``--weights`` (see the module doc),
    with ``"preprocess"`` when the resolved ``preprocess`` is not the model's earlier implicit one.

    Model and weights files are named by their content, so a moved or copied file is the same
    model, and a file saved again under the same name after training is not.
    """
    from .preprocess import LEGACY

    if model == "demo":
        from ..demo import WEIGHTS_PATH

        identity = {"model": "demo", "weights": file_sha256(WEIGHTS_PATH if weights is None
                                                             else weights)}
    elif model == "vgg16":
        named = weights is None or weights == "imagenet"
        identity = {"model": "vgg16", "weights": "imagenet" if named else file_sha256(weights)}
    else:
        identity = {"model": file_sha256(model),
                    "weights": None if weights is None else file_sha256(weights)}
    kind = model if model in ("demo", "vgg16") else "file"
    if preprocess is not None and preprocess != LEGACY[kind]:
        identity["preprocess"] = preprocess
    return identity


def rules_version(method: str, separable: bool) -> str | None:
    """The signature's ``rules`` of ``method`` on a model with (``separable``) or without
    ``SeparableConv2D`` layers: :data:`RULES_SEPARABLE` for the relevance methods
    (:mod:`sglrp.relevance`) on such a model, else ``None`` (no field)."""
    from ..registry import METHODS

    cls = METHODS.get(method)
    if not separable or cls is None or cls.__module__ != "sglrp.relevance":
        return None
    return RULES_SEPARABLE


def method_signature(identity: dict, method: str, options: dict,
                     rules: str | None = None) -> dict:
    """The signature shared by every map of one method in a run (no target, no input yet);
    ``rules``: :func:`rules_version`."""
    import sglrp

    signature = {
        "sglrp": sglrp.__version__,
        "engine": getattr(sglrp, "engine", "innvestigate"),
        **identity,
        "method": method,
        "options": dict(sorted(options.items())),
    }
    if rules is not None:
        signature["rules"] = rules
    return signature


def map_signature(method_sig: dict, target, input_sha256: str | None,
                  decoder: str | None = None) -> dict:
    """The full signature of one map: ``method_sig`` with its target and input content, and
    the image's ``decoder`` where it has one (16-bit images)."""
    signature = {**method_sig, "target": target, "input": input_sha256}
    if decoder is not None:
        signature["decoder"] = decoder
    return signature


def digest(signature: dict) -> str:
    """12 hex digits of the SHA-256 of ``signature`` as canonical JSON."""
    text = json.dumps(signature, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf8")).hexdigest()[:12]


class Resume:
    """What earlier runs finished in one ``--out``: the latest finished record per output key.

    Parameters
    ----------
    records : iterable of dict
        The manifest's records in file order (later ones win).
    out : path
        The output folder.
    formats : sequence of str
        The formats this run writes; a reused map must have all of them.
    top_k : int
        How many top classes this run records; a reused record must have at least as many.
    verify : {"sha256", "size"}
        How the files of a reused record are compared with the sizes and SHA-256 it recorded:
        both (every reused file is read once), or the sizes only (for very large folders).
    shape : tuple, optional
        The maps' shape, checked in the ``.npy`` header of records without sizes and hashes.
    """

    def __init__(self, records: Iterable[dict], out, formats, top_k: int,
                 verify: str = "sha256", shape: tuple | None = None) -> None:
        if verify not in VERIFY:
            raise ValueError(f"verify must be one of {', '.join(VERIFY)}, got {verify!r}")
        self.out, self.formats, self.top_k = Path(out), tuple(formats), int(top_k)
        self.verify, self.shape = verify, shape
        self.finished: dict[str, dict] = {}
        for record in records:
            key = record.get("key")
            if isinstance(key, str) and record.get("status") in ("ok", "skipped") \
                    and isinstance(record.get("signature"), dict):
                self.finished[key] = record
        self._prefixes = {key.rsplit("__", 1)[0] for key in self.finished}

    def __len__(self) -> int:
        return len(self.finished)

    def may_have(self, stem: str, method: str, target) -> bool:
        """Whether any finished map has this stem, method and target (cheap: no hashing)."""
        return f"{stem}__{method}__{target}" in self._prefixes

    def find(self, key: str, signature: dict) -> dict | None:
        """The finished record of ``key`` if its signature equals ``signature``, its output
        files (in this run's formats) are all there unchanged and it has enough top classes;
        else ``None``."""
        record = self.finished.get(key)
        if record is None or record["signature"] != signature:
            return None
        ids = record.get("top_k_ids")
        if not isinstance(ids, list) or len(ids) < self.top_k or record.get("target_id") is None:
            return None
        sizes, shas = record.get("output_bytes"), record.get("output_sha256")
        sizes = sizes if isinstance(sizes, dict) else {}
        shas = shas if isinstance(shas, dict) else {}
        for kind, name in output_files(key, self.formats).items():
            if not self._unchanged(kind, self.out / name, sizes, shas):
                return None
        return record

    def _unchanged(self, kind: str, path: Path, sizes: dict, shas: dict) -> bool:
        try:
            if not path.is_file():
                return False
            if kind in sizes and kind in shas:
                return path.stat().st_size == sizes[kind] and (
                    self.verify == "size" or file_sha256(path) == shas[kind])
        except OSError:
            return False
        # An earlier version's record: a map by its header and size, a picture by being there.
        return kind != "npy" or npy_intact(path, self.shape)
