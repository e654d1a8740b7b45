"""The run loop: method by method, batch by batch, one analyzer alive at a time.

Two parts, so that the work can be spread over processes later:

* :func:`explain_batch` is the unit of work: a :class:`Job` (plain data: image paths, method,
  signature, targets, output folder, formats) is read, hashed and decoded, analyzed, and its
  outputs written; it returns the manifest records as plain dicts and writes no manifest. A
  worker only needs the model (:class:`~sglrp.explain.model.ModelInfo`) and an analyzer of the
  job's method.
* :class:`Run` is the driver: it decides per method which images an earlier run already
  finished (:class:`~sglrp.explain.signature.Resume`), builds the analyzer, cuts the rest into
  jobs, and appends every record to the manifest, whose only writer it is. Given an
  ``executor`` (e.g. :class:`sglrp.explain.ray_runner.RayExecutor`), it hands all jobs of the
  run to it instead and appends the records that come back.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .inputs import image_decoder, read_batch
from .manifest import MANIFEST, ManifestWriter, make_record, read_manifest
from .model import AUTO, ModelInfo
from .outputs import (
    DiskFullError,
    output_files,
    output_key,
    output_stem,
    sync_dir,
    write_outputs,
)
from .signature import (
    Resume,
    digest,
    file_sha256,
    map_signature,
    method_signature,
    rules_version,
)

__all__ = ["Job", "BatchResult", "analyzer_options", "create_method_analyzer", "predict",
           "explain_batch", "failed_batch", "Run"]


@dataclass(frozen=True)
class Job:
    """One batch of work, as plain data (a worker builds its analyzer from ``method`` and
    ``signature["options"]`` with :func:`create_method_analyzer`).

    Attributes
    ----------
    method : str
        The method name (the analyzer given to :func:`explain_batch` must be of this method).
    signature : dict
        :func:`~sglrp.explain.signature.method_signature` of the method in this run.
    targets : tuple
        ``"auto"`` or class ids; one map per image and target.
    images : tuple of str
        Image paths as given on the command line.
    out : str
        The output folder.
    formats : tuple of str
        ``"npy"``, ``"png"``.
    top_k : int
        Most probable classes to record.
    max_megapixels : float
        Larger images are reported and skipped.
    """

    method: str
    signature: dict
    targets: tuple
    images: tuple
    out: str
    formats: tuple = ("npy", "png")
    top_k: int = 5
    max_megapixels: float = 50.0


@dataclass
class BatchResult:
    """What :func:`explain_batch` did: one record per image and target that it got to, and
    ``stop = (errno, strerror, filename)`` if a full disk (a size limit, a quota) ended it.
    ``error`` is set when the whole batch failed with one message (:func:`failed_batch`)."""

    records: list = field(default_factory=list)
    stop: tuple | None = None
    error: str | None = None


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def analyzer_options(method: str, info: ModelInfo, relu: bool = False) -> dict:
    """The keyword arguments of ``method``'s analyzer in a run (part of its signature)."""
    from ..registry import METHODS, keywords

    options = {"relu": bool(relu)}
    if "low" in keywords(METHODS[method]):  # the other methods do not use the bounds
        options.update(low=float(info.low), high=float(info.high))
    return options


def create_method_analyzer(method: str, info: ModelInfo, options: dict):
    """The analyzer of ``method`` for the run's model (its softmax warning silenced)."""
    from ..registry import create_analyzer

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="model .* ends in a softmax")
        return create_analyzer(method, info.model, **options)


def predict(analyzer, x: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities of ``x`` (float64, from the analyzer's logits) and the ``top_k``
    most probable class ids of each image, by decreasing probability."""
    probs = _softmax(analyzer.predict_logits(x))
    return probs, np.argsort(-probs, axis=1, kind="stable")[:, :top_k]


def failed_batch(job: Job, info: ModelInfo, message: str) -> BatchResult:
    """An ``"error"`` record with ``message`` for every image and target of ``job``, for a batch
    that failed as a whole (its method's analyzer cannot be created, its worker died)."""
    records = [make_record(key=None, image=image, model=info.name, method=job.method,
                           target=target, status="error", error=message,
                           signature=map_signature(job.signature, target, None),
                           preprocess=info.preprocessing)
               for image in job.images for target in job.targets]
    return BatchResult(records, error=message)


def explain_batch(job: Job, analyzer, info: ModelInfo) -> BatchResult:
    """Read, analyze and write one batch; return its manifest records (nothing is appended).

    Every image gets one record per target: ``"ok"`` with its outputs, or ``"error"`` (image
    unreadable, analysis or write failed). Outputs are written atomically and the folder is
    synced before returning, so a record never names a file that is not on disk. A full disk
    (``ENOSPC``, ``EFBIG``, ``EDQUOT``) ends the batch: the records so far come back with
    ``stop`` set.
    """
    out = Path(job.out)
    batch = read_batch(job.images, range(len(job.images)), info, job.max_megapixels)
    result = BatchResult()

    def record(image, target, sha, status, decoder=None, **fields) -> None:
        signature = map_signature(job.signature, target, sha, decoder)
        key = None if sha is None else output_key(output_stem(image), job.method, target,
                                                  digest(signature))
        outputs = output_files(key, job.formats) if status == "ok" else {}
        result.records.append(make_record(
            key=key, image=image, model=info.name, method=job.method, target=target,
            status=status, signature=signature, outputs=outputs, class_name=info.class_name,
            preprocess=info.preprocessing, **fields))

    for i, message, sha in batch.errors:
        for target in job.targets:
            record(job.images[i], target, sha, "error", error=message)
    if not batch.indices:
        return result
    probs, top_ids = predict(analyzer, batch.x, min(job.top_k, info.n_classes))
    predicted = probs.argmax(axis=1)
    try:
        for target in job.targets:
            ids = predicted if target == AUTO else np.full(len(batch.indices), target)
            try:
                maps = analyzer.analyze(batch.x, target=ids)
            except Exception as err:  # e.g. a numerical failure: this batch and target only
                for j, i in enumerate(batch.indices):
                    record(job.images[i], target, batch.input_sha256[j], "error",
                           batch.decoders[j], error=f"{job.method} failed: {err}")
                continue
            for j, i in enumerate(batch.indices):
                image, sha, decoder = job.images[i], batch.input_sha256[j], batch.decoders[j]
                key = output_key(output_stem(image), job.method, target,
                                 digest(map_signature(job.signature, target, sha, decoder)))
                try:
                    written = write_outputs(out, output_files(key, job.formats),
                                            batch.pixels[j], maps[j])
                except DiskFullError as err:
                    result.stop = (err.errno, err.strerror, err.filename)
                    return result
                except OSError as err:
                    record(image, target, sha, "error", decoder,
                           error=f"cannot write outputs: {err}")
                    continue
                record(image, target, sha, "ok", decoder, target_id=int(ids[j]),
                       top=(top_ids[j], probs[j, top_ids[j]]), written=written)
    finally:
        sync_dir(out)
    return result


class Run:
    """One ``explain`` run on the driver: resume decisions, analyzers, jobs, the manifest.

    Parameters
    ----------
    info : ModelInfo
        The model.
    identity : dict
        :func:`~sglrp.explain.signature.model_identity` of the model and weights.
    images : sequence of str
        Image paths as given.
    methods, targets, formats : sequence
        What to compute and write.
    out : path
        The output folder (it must exist); ``manifest.jsonl`` is appended there.
    relu, batch_size, top_k, max_megapixels, overwrite
        The command's options.
    verify : {"sha256", "size"}
        How the outputs an earlier run finished are checked before they are reused
        (:class:`~sglrp.explain.signature.Resume`).
    say : callable
        Prints one message line.
    progress : callable
        Called with the number of images done (per method) after each step.
    interrupted : callable
        Whether a stop was asked for (a signal); checked after each batch.
    hold : callable
        Returns a context manager that holds a stop (a signal) back while it is active: each
        record is appended and counted inside one.
    executor : callable, optional
        ``executor(jobs)`` computes the jobs of the whole run elsewhere (each with an analyzer
        of its method) and yields ``(job, BatchResult)`` as they finish, each job once, in any
        order. ``None``: method by method in this process, one analyzer alive at a time.
    """

    def __init__(self, *, info: ModelInfo, identity: dict, images: Sequence[str],
                 methods: Sequence[str], targets: Sequence, formats: Sequence[str], out,
                 relu: bool = False, batch_size: int = 8, top_k: int = 5,
                 max_megapixels: float = 50.0, overwrite: bool = False,
                 verify: str = "sha256", say: Callable[[str], None] = print,
                 progress: Callable[[int], None] = lambda n: None,
                 interrupted: Callable[[], bool] = lambda: False,
                 hold: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 executor: Callable[[list], Iterable[tuple]] | None = None,
                 ) -> None:
        self.info, self.identity, self.images = info, identity, list(images)
        self.methods, self.targets, self.formats = list(methods), list(targets), tuple(formats)
        self.out = Path(out)
        self.relu, self.batch_size, self.top_k = relu, batch_size, top_k
        self.max_megapixels, self.overwrite = max_megapixels, overwrite
        self.say, self.progress, self.interrupted, self.hold = say, progress, interrupted, hold
        self.executor = executor
        self.counts = {"ok": 0, "skipped": 0, "error": 0}
        #: Records this run will write when it completes.
        self.total = len(self.images) * len(self.methods) * len(self.targets)
        self._reported: set[tuple] = set()
        self._reported_batches: set[str] = set()
        self._input_sha: dict[int, tuple] = {}
        self.resume = Resume([] if overwrite else read_manifest(self.out / MANIFEST), self.out,
                             self.formats, min(top_k, info.n_classes), verify=verify,
                             shape=(*info.size, info.channels))
        self.manifest = ManifestWriter(self.out / MANIFEST)

    # -- the records ----------------------------------------------------------------------------
    def add(self, record: dict, report: bool = True) -> None:
        """Append ``record`` to the manifest, count it, and report its error once per image."""
        with self.hold():  # appended if and only if counted
            self.manifest.append(record)
            self.counts[record["status"]] += 1
        message = record.get("error")
        if report and message and (record["image"], message) not in self._reported:
            self._reported.add((record["image"], message))
            self.say(f"error: {record['image']}: {message}")

    def _input(self, i: int) -> tuple:
        """``(content hash or None, decoder)`` of image ``i`` (header only, no decoding)."""
        if i not in self._input_sha:
            try:
                sha = file_sha256(self.images[i])
            except OSError:
                sha = None
            self._input_sha[i] = (sha, None if sha is None else image_decoder(self.images[i]))
        return self._input_sha[i]

    def _reusable(self, i: int, method: str, signature: dict) -> list | None:
        """``skipped`` records for every target of image ``i``, or ``None`` to compute it."""
        image, stem = self.images[i], output_stem(self.images[i])
        if not all(self.resume.may_have(stem, method, t) for t in self.targets):
            return None  # nothing of this name was finished: no need to hash the file
        sha, decoder = self._input(i)
        if sha is None:
            return None
        records = []
        k = min(self.top_k, self.info.n_classes)
        for target in self.targets:
            full = map_signature(signature, target, sha, decoder)
            key = output_key(stem, method, target, digest(full))
            old = self.resume.find(key, full)
            if old is None:
                return None
            probs = [float("nan") if p is None else p for p in old["top_k_probs"][:k]]
            files = output_files(key, self.formats)
            sizes, shas = old.get("output_bytes") or {}, old.get("output_sha256") or {}
            written = {kind: (sizes[kind], shas[kind]) for kind in files
                       if kind in sizes and kind in shas}
            records.append(make_record(
                key=key, image=image, model=self.info.name, method=method, target=target,
                status="skipped", signature=full, outputs=files,
                target_id=old["target_id"], class_name=self.info.class_name,
                top=(old["top_k_ids"][:k], probs), preprocess=self.info.preprocessing,
                written=written))
        return records

    # -- the loop -------------------------------------------------------------------------------
    def execute(self) -> None:
        """Every method in turn, or every job through the executor.

        Raises
        ------
        DiskFullError
            When nothing more can be written (what was finished is recorded).
        """
        if self.executor is None:
            for method in self.methods:
                self.run_method(method)
            return
        jobs = [job for method in self.methods for job in self.plan(method)]
        if not jobs:
            return
        results = self.executor(jobs)
        try:
            for job, result in results:
                self.take(job, result)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def plan(self, method: str) -> list[Job]:
        """Record the images of ``method`` that an earlier run finished (``"skipped"``); return
        the others as jobs of ``batch_size`` images."""
        options = analyzer_options(method, self.info, self.relu)
        signature = method_signature(self.identity, method, options,
                                     rules_version(method, self.info.separable))
        pending = []
        for i in range(len(self.images)):
            reused = None if self.overwrite else self._reusable(i, method, signature)
            if reused is None:
                pending.append(i)
                continue
            for record in reused:
                self.add(record)
            self.progress(1)
        return [Job(method, signature, tuple(self.targets),
                    tuple(self.images[i] for i in pending[start:start + self.batch_size]),
                    str(self.out), self.formats, self.top_k, self.max_megapixels)
                for start in range(0, len(pending), self.batch_size)]

    def run_method(self, method: str) -> None:
        jobs = self.plan(method)
        if not jobs:
            return
        try:
            analyzer = create_method_analyzer(method, self.info, jobs[0].signature["options"])
        except Exception as err:  # a method that does not fit this model: report, go on
            for job in jobs:
                self.take(job, failed_batch(job, self.info, f"cannot create {method}: {err}"))
            return
        try:
            for job in jobs:
                self.take(job, explain_batch(job, analyzer, self.info))
        finally:
            analyzer.close()

    def take(self, job: Job, result: BatchResult) -> None:
        """Append the records of a finished job; stop if a signal came or the disk is full."""
        stopping = self.interrupted()
        if result.error is not None and result.error not in self._reported_batches:
            self._reported_batches.add(result.error)  # said once, not once per image
            self.say(f"error: {result.error}")
        for record in result.records:  # an interrupt may surface as an error inside
            if not (stopping and record["status"] == "error"):  # TF: not recorded
                self.add(record, report=result.error is None)
        if stopping:
            raise KeyboardInterrupt
        if result.stop is not None:
            raise DiskFullError(*result.stop)
        self.progress(len(job.images))

    def close(self) -> None:
        self.manifest.close()
