"""The run signature: what a map is computed from, and which earlier outputs a run may reuse.

A map's **signature** is a JSON object of everything that changes its numbers:

* ``sglrp``, ``engine``: the library version and its engine;
* ``model``: ``"demo"``, ``"vgg16"``, or ``"sha256:<hex>"`` of a model file's content;
* ``weights``: ``"imagenet"`` (VGG16's published weights), ``"sha256:<hex>"`` of a weights file
  (the demo model's shipped file by default), or ``None`` (a model file's own weights);
* ``method`` and ``options``: the method name and the exact keyword arguments its analyzer is
  built with (``relu``; ``low``, ``high`` for the methods that take bounds);
* ``target``: ``"auto"`` or the class id;
* ``input``: ``"sha256:<hex>"`` of the image file's content.

Output formats, batch size, ``--top-k`` and ``--max-megapixels`` change what is written, not the
numbers, and are not part of it. The first 12 hex digits of the SHA-256 of the signature end
every output name (:func:`sglrp.explain.outputs.output_key`), and each manifest record stores
the signature in full. An earlier output is reused only when a record with the same name and an
equal signature says it was finished and its files are all there; anything else is computed
again, under its own name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from .outputs import output_files

__all__ = ["file_sha256", "model_identity", "method_signature", "map_signature", "digest",
           "Resume"]

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


def model_identity(model: str, weights: str | None = None) -> dict:
    """``{"model": ..., "weights": ...}`` for ``--model`` and ``--weights`` (see the module doc).

    Model and weights files are named by their content, so a moved or copied file is the same
    model, and a file saved again under the same name after training is not.
    """
    if model == "demo":
        from ..demo import WEIGHTS_PATH

        return {"model": "demo", "weights": file_sha256(WEIGHTS_PATH if weights is None
                                                         else weights)}
    if model == "vgg16":
        named = weights is None or weights == "imagenet"
        return {"model": "vgg16", "weights": "imagenet" if named else file_sha256(weights)}
    return {"model": file_sha256(model),
            "weights": None if weights is None else file_sha256(weights)}


def method_signature(identity: dict, method: str, options: dict) -> dict:
    """The signature shared by every map of one method in a run (no target, no input yet)."""
    import sglrp

    return {
        "sglrp": sglrp.__version__,
        "engine": getattr(sglrp, "engine", "innvestigate"),
        **identity,
        "method": method,
        "options": dict(sorted(options.items())),
    }


def map_signature(method_sig: dict, target, input_sha256: str | None) -> dict:
    """The full signature of one map: ``method_sig`` with its target and input content."""
    return {**method_sig, "target": target, "input": input_sha256}


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
    """

    def __init__(self, records: Iterable[dict], out, formats, top_k: int) -> None:
        self.out, self.formats, self.top_k = Path(out), tuple(formats), int(top_k)
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
        files (in this run's formats) all exist and it has enough top classes; else ``None``."""
        record = self.finished.get(key)
        if record is None or record["signature"] != signature:
            return None
        files = output_files(key, self.formats).values()
        if not all((self.out / name).is_file() for name in files):
            return None
        ids = record.get("top_k_ids")
        if not isinstance(ids, list) or len(ids) < self.top_k or record.get("target_id") is None:
            return None
        return record
