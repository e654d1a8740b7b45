"""The manifest: ``manifest.jsonl`` in ``--out``, one JSON record per line, appended by every run.

A record describes one image x method x target of one run:

``key``
    The outputs' base name, ``<stem>__<method>__<target>__<digest>`` (``None`` when the image
    could not be read).
``image``
    The image path as given on the command line (or found in a folder given there).
``model``, ``method``, ``target``
    ``--model`` as given; the method; ``"auto"`` or the class id asked for.
``target_id``, ``target_name``
    The class explained (for ``auto``: the predicted one) and its name.
``top_k_ids``, ``top_k_names``, ``top_k_probs``
    The ``--top-k`` most probable classes, by decreasing softmax probability.
``outputs``
    The files written, by kind: ``npy``, ``heatmap``, ``overlay`` (names inside ``--out``).
``status``, ``error``
    ``"ok"`` (computed by this run), ``"skipped"`` (the outputs of an earlier run with an equal
    signature were reused) or ``"error"``, with the message.
``signature``
    What the map is computed from (:mod:`sglrp.explain.signature`).
``output_bytes``, ``output_sha256``
    Each output's size in bytes and ``"sha256:<hex>"`` of its content, by kind as ``outputs``
    (records of earlier versions lack them; a ``skipped`` record carries over what the record
    it reuses had).
``preprocess``
    How pixels became the model's input: the resolved ``--preprocess`` choice
    (:mod:`sglrp.explain.preprocess`; records of earlier versions lack it: theirs was ``caffe``
    for ``vgg16``, ``0-1`` otherwise).

Writing (:class:`ManifestWriter`): each record is one ``write`` of one complete line to the file
opened for appending, under an advisory exclusive lock (``fcntl.flock``) held for that append
only, then flushed to disk (``fsync``) before the run goes on. Two runs writing into one
``--out`` at the same time therefore both keep every record, lines never interleave, and a
record that was counted is on disk whatever happens to the run afterwards. Should a write stop
short (a full disk), the file is cut back to where the line started. Only processes that take the
lock are kept out (``sglrp explain`` does; a tool that appends without it is not); on network
file systems the lock is as good as the server's lock support.

Reading (:func:`read_manifest`, :func:`latest`): lines that are not complete JSON objects
(from older versions, or another program) are ignored; where one image x method x target has
several records (runs with other options, re-runs), the last one in the file wins.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: appends are not locked
    fcntl = None

__all__ = ["MANIFEST", "ManifestWriter", "make_record", "read_manifest", "latest"]

MANIFEST = "manifest.jsonl"


def make_record(*, key, image: str, model: str, method: str, target, status: str,
                signature: dict | None, outputs: dict | None = None, error: str | None = None,
                target_id=None, class_name=None, top=None, preprocess: str | None = None,
                written: dict | None = None) -> dict:
    """One manifest record, with every documented field in a fixed order.

    ``class_name`` maps a class id to its name (or ``None``); ``top`` is ``(ids, probs)`` of the
    most probable classes; ``preprocess`` the resolved ``--preprocess`` choice; ``written``
    ``(size, "sha256:<hex>")`` of each output by kind (``output_bytes``, ``output_sha256``).
    """
    name = (lambda i: None) if class_name is None else class_name
    if target_id is None and target != "auto" and target is not None:
        target_id = target
    record = {
        "key": key,
        "image": image,
        "model": model,
        "method": method,
        "target": target,
        "target_id": None if target_id is None else int(target_id),
        "target_name": None if target_id is None else name(int(target_id)),
        "top_k_ids": None,
        "top_k_names": None,
        "top_k_probs": None,
        "outputs": dict(outputs or {}),
        "status": status,
        "error": error,
        "signature": signature,
        "preprocess": preprocess,
        "output_bytes": {kind: int(size) for kind, (size, _) in (written or {}).items()},
        "output_sha256": {kind: sha for kind, (_, sha) in (written or {}).items()},
    }
    if top is not None:
        ids, probs = top
        record["top_k_ids"] = [int(c) for c in ids]
        record["top_k_names"] = [name(int(c)) for c in ids]
        record["top_k_probs"] = [round(float(p), 6) if math.isfinite(p) else None
                                 for p in probs]
    return record


class ManifestWriter:
    """Appends records to one manifest file: a locked, complete, fsynced line each.

    One writer per process (in a distributed run: on the driver, which receives the records
    of the workers). Usable as a context manager.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o666)  # the umask applies
        #: Records appended by this writer.
        self.n_written = 0

    def append(self, record: dict) -> None:
        """Append ``record`` as one line; it is on disk when this returns.

        Raises
        ------
        OSError
            If the line cannot be written completely (the file is then left as it was), e.g.
            ``ENOSPC``/``EFBIG``/``EDQUOT`` for a full disk, a size limit or a quota.
        """
        line = (json.dumps(record, allow_nan=False) + "\n").encode("utf8")
        with self._locked():
            start = os.fstat(self._fd).st_size
            if start and os.pread(self._fd, 1, start - 1) != b"\n":
                line = b"\n" + line  # an earlier writer stopped mid-line: start a new one
            try:
                rest = memoryview(line)
                while rest:  # a size limit or a full disk stops a write short, then fails
                    written = os.write(self._fd, rest)
                    if not written:
                        raise OSError(errno.EIO, "write returned 0", str(self.path))
                    rest = rest[written:]
                os.fsync(self._fd)
            except BaseException as err:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, start)
                if isinstance(err, OSError) and not err.filename:
                    raise OSError(err.errno, err.strerror, str(self.path)) from None
                raise
        self.n_written += 1

    @contextlib.contextmanager
    def _locked(self):
        if fcntl is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(path) -> list[dict]:
    """Every complete record of a manifest, in file order (``[]`` if there is none)."""
    records = []
    try:
        f = open(path, encoding="utf8", errors="replace")
    except FileNotFoundError:
        return records
    with f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "image" in record and "status" in record:
                records.append(record)
    return records


def latest(records: Iterable[dict]) -> dict[tuple, dict]:
    """The last record per ``(image, method, target)``, in order of first appearance."""
    out: dict[tuple, dict] = {}
    for record in records:
        out[record["image"], record.get("method"), record.get("target")] = record
    return out
