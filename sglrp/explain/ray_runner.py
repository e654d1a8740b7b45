"""``sglrp explain --ray``: the jobs of a run computed by Ray Data actors, on one machine or a
cluster.

The driver (the process that runs the command) does what it does in a single-process run:
checks, resume decisions, cutting the work into :class:`~sglrp.explain.loop.Job` s, and every
append to the manifest (:class:`~sglrp.explain.loop.Run`). :class:`RayExecutor` puts the jobs
into a Ray Dataset (plain data: paths, method, signature, targets) and maps them through a pool
of ``workers`` actors (:class:`ExplainWorker`). Each actor builds the model from its
:class:`ModelSpec` (``demo``, ``vgg16``, a model file and weights: never a model pickled by the
driver) once, keeps the analyzer of the method it is working on, and runs
:func:`~sglrp.explain.loop.explain_batch` on each job: it reads, hashes and decodes the images
itself and writes the outputs into ``--out``; the manifest records come back to the driver as
JSON. The inputs, the model file and ``--out`` must therefore be on a file system that every
node sees (on one machine they are).

Resources: with GPUs in the cluster each actor takes one GPU (``num_gpus=1``; TensorFlow's
memory growth on, so that it takes what it needs). Without, each takes an equal share of the
CPUs (at most one node's) and gives TensorFlow as many threads (intra- and inter-op).

Faults: actors are restarted when their process dies (``max_restarts=-1``) and the jobs they
had are run again (``max_task_retries``): outputs are written again under the same names, and a
job's records are appended once, when it comes back (the driver keeps one result per job). A
job whose worker dies :data:`TASK_RETRIES` + 1 times is recorded as failed (``"error"`` records
naming the cause; the next run does it again) and the run goes on.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .errors import RunError, UsageError
from .loop import BatchResult, Job, create_method_analyzer, explain_batch, failed_batch
from .model import ModelInfo, load_model_info

__all__ = ["ModelSpec", "connect", "shutdown", "default_workers", "worker_resources",
           "sglrp_version", "map_actors", "Worker", "ExplainWorker", "RayExecutor",
           "DatasetWorker", "ROW_COLUMNS", "TASK_RETRIES", "WORKER_ENV"]

#: Times a job is run again after its worker process died, before it is recorded as failed.
TASK_RETRIES = 3
#: The runtime environment of sglrp's actors: TensorFlow's C++ notices filtered out.
WORKER_ENV = {"env_vars": {"SGLRP_FILTER_TF_NOTICES": "1"}}
#: Most blocks of jobs in one dataset (a block is the unit that a worker receives and that is
#: run again after a fault); fewer jobs: one job per block.
MAX_BLOCKS = 10_000


@dataclass(frozen=True)
class ModelSpec:
    """How a worker builds the run's model: the command's ``--model``, ``--weights``, ``--low``,
    ``--high`` and ``--preprocess``, given to :func:`~sglrp.explain.model.load_model_info` in
    the worker."""

    model: str
    weights: str | None = None
    low: float | None = None
    high: float | None = None
    preprocess: str = "auto"

    def load(self) -> ModelInfo:
        return load_model_info(self.model, self.weights, self.low, self.high, self.preprocess)


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join a Ray cluster or start a local Ray instance; return whether it was started here.

    ``address`` ``None``: join the cluster named by ``RAY_ADDRESS`` if set, else start a local
    instance with ``num_cpus`` CPUs (default: all) and no dashboard. ``"local"``: start one
    whatever ``RAY_ADDRESS`` says. Anything else (``host:port``, ``ray://host:port``,
    ``auto``): join that cluster. Nothing happens if Ray is already initialized in this
    process. Ray's own messages go to its log files, not to the terminal.

    Raises
    ------
    UsageError
        If the cluster cannot be joined or the instance cannot start.
    """
    import logging

    import ray

    if ray.is_initialized():
        return False
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    local = address == "local"
    # Workers' output stays in Ray's log files; Ray's notices (instance started, token
    # authentication) are not shown, its errors are.
    kwargs = {"log_to_driver": False, "logging_level": logging.ERROR}
    if local:
        kwargs.update(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    if not local:
        _check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except Exception as err:  # ConnectionError, ValueError, RuntimeError ... from Ray
        if local:
            raise UsageError(f"cannot start a local Ray instance: {err}") from None
        raise UsageError(f"cannot connect to Ray at {address!r}: {err} (a cluster with token "
                         "authentication needs RAY_AUTH_MODE=token and its token here, in "
                         "~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
    _quiet_ray_data()
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at ``host:port`` (Ray itself retries for minutes)."""
    import socket

    match = re.fullmatch(r"(?:ray://)?([^\s:/]+):(\d+)", address)
    if match is None:  # "auto": Ray finds the cluster of this machine
        return
    try:
        socket.create_connection((match[1], int(match[2])), timeout=timeout).close()
    except OSError as err:
        raise UsageError(f"cannot connect to Ray at {address!r}: nothing answers there "
                         f"({err})") from None


def shutdown() -> None:
    """Disconnect from Ray (a local instance started by :func:`connect` stops)."""
    import ray

    ray.shutdown()


def _quiet_ray_data() -> None:
    """Ray Data's messages below errors go to its log file only, not to the terminal."""
    import logging

    import ray.data  # noqa: F401  (sets up its loggers)

    try:
        from ray.data._internal.logging import SessionFileHandler
    except ImportError:  # another Ray: its messages stay as they are
        return
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, SessionFileHandler):
            handler.setLevel(logging.ERROR)


def _configure(context, quiet: bool) -> None:
    """Settings of one run's dataset: a block whose worker died too often does not end the run
    (its jobs are recorded as failed); ``quiet``: no progress bars of Ray Data's own (the
    command has its own)."""
    context.max_errored_blocks = -1
    if quiet:
        context.enable_progress_bars = False
        context.print_on_execution_start = False


def default_workers() -> int:
    """Workers when none are asked for: one per GPU of the connected cluster, else 1."""
    import ray

    return max(1, int(ray.cluster_resources().get("GPU", 0)))


def worker_resources(workers: int, gpus: bool | None = None, reserve: bool = False) -> dict:
    """``num_cpus`` / ``num_gpus`` of each of ``workers`` actors in the connected cluster.

    With GPUs (``gpus=None``: if the cluster has any) one GPU each; the CPUs are shared out
    equally either way, at most one node's CPUs per actor (an actor runs on one node).
    ``reserve``: keep one CPU (half of a one-CPU cluster) for the tasks before the actors in
    the pipeline (e.g. ``read_binary_files``), which could not run if the actors held all.

    Raises
    ------
    UsageError
        If the cluster has fewer GPUs than ``workers`` (with GPUs), or no CPU.
    """
    import ray

    total = ray.cluster_resources()
    n_gpus = int(total.get("GPU", 0))
    use_gpus = n_gpus > 0 if gpus is None else gpus
    if use_gpus and workers > n_gpus:
        raise UsageError(f"--workers {workers}: the Ray cluster has {n_gpus} GPU(s), one per "
                         "worker")
    cpus = float(total.get("CPU", 0))
    if cpus <= 0:
        raise UsageError("the Ray cluster has no CPU")
    if reserve:
        cpus -= min(1.0, cpus / 2)
    node_cpus = max((float(node.get("Resources", {}).get("CPU", 0)) for node in ray.nodes()
                     if node.get("Alive")), default=cpus)
    share = min(cpus / workers, node_cpus)
    # Whole CPUs where they go evenly, else a share of one (several actors on one CPU).
    share = math.floor(share) if share >= 1 else round(share, 3)
    return {"num_cpus": share, "num_gpus": 1 if use_gpus else 0}


def _setup_tensorflow(threads: int) -> None:
    """Threads and GPU memory of TensorFlow in a worker (before it builds anything)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        if not gpus:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already runs in this process: it keeps its settings
        pass


def _assigned_cpus() -> int:
    """CPUs Ray reserved for this actor (whole ones, at least 1)."""
    import ray

    if not ray.is_initialized():  # not in a Ray worker (asking would start Ray here)
        return os.cpu_count() or 1
    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))


class Worker:
    """What every sglrp Ray actor has: the model, built once in the actor, and analyzers.

    Parameters
    ----------
    spec : ModelSpec
        The model to build.
    version : tuple of str
        ``(sglrp.__version__, sglrp.engine)`` of the driver; a worker with another version or
        engine refuses to start (its maps would not be what the run's signatures say).
    keep : int
        Analyzers kept alive (one per method, the least recently used closed first).
    cwd : str, optional
        The driver's working directory: the worker works there where it exists, so that
        relative paths (images, ``--out``, the model) name the same files.
    """

    def __init__(self, spec: ModelSpec, version: Sequence[str], keep: int = 1,
                 cwd: str | None = None) -> None:
        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths mean what they mean to the driver
        _setup_tensorflow(_assigned_cpus())
        import sglrp

        mine = (sglrp.__version__, sglrp.engine)
        if tuple(version) != mine:
            raise RuntimeError(f"this worker has sglrp {mine[0]} (engine {mine[1]}), the driver "
                               f"{version[0]} (engine {version[1]}): install the same on every "
                               "node")
        self.info = spec.load()
        self.keep = max(1, int(keep))
        self._analyzers: dict = {}  # (method, options) -> analyzer or the error message

    def analyzer(self, method: str, options: dict):
        """The analyzer of ``method`` with ``options`` (built at its first use), or the message
        saying why it cannot be created (a ``str``)."""
        key = (method, json.dumps(options, sort_keys=True))
        if key in self._analyzers:
            self._analyzers[key] = self._analyzers.pop(key)  # most recently used last
            return self._analyzers[key]
        live = [k for k, a in self._analyzers.items() if not isinstance(a, str)]
        for old in live[:max(0, len(live) - self.keep + 1)]:
            self._analyzers.pop(old).close()
        try:
            analyzer = create_method_analyzer(method, self.info, options)
        except Exception as err:  # a method that does not fit this model
            analyzer = f"cannot create {method}: {err}"
        self._analyzers[key] = analyzer
        return analyzer

    def close(self) -> None:
        """Close every analyzer (called when Ray Data ends the actor, through ``__del__``)."""
        analyzers, self._analyzers = getattr(self, "_analyzers", {}), {}
        for analyzer in analyzers.values():
            if not isinstance(analyzer, str):
                analyzer.close()

    def __del__(self) -> None:
        self.close()


def job_to_json(job: Job) -> str:
    return json.dumps(asdict(job))


def job_from_json(text: str) -> Job:
    fields = json.loads(text)
    for name in ("targets", "images", "formats"):
        fields[name] = tuple(fields[name])
    return Job(**fields)


def result_to_json(result: BatchResult) -> str:
    return json.dumps({"records": result.records, "stop": result.stop, "error": result.error},
                      allow_nan=False)


def result_from_json(text: str) -> BatchResult:
    fields = json.loads(text)
    stop = fields["stop"]
    return BatchResult(fields["records"], None if stop is None else tuple(stop),
                       fields["error"])


class ExplainWorker(Worker):
    """The actor of ``sglrp explain --ray``: a batch of jobs (JSON) -> their results (JSON).

    The analyzer of the job's method is built at the method's first job and kept while the jobs
    are of that method (the driver lists them method by method): one analyzer alive at a time,
    as in a single-process run.
    """

    def __call__(self, batch: dict) -> dict:
        results = []
        for text in batch["job"]:
            job = job_from_json(str(text))
            analyzer = self.analyzer(job.method, job.signature["options"])
            if isinstance(analyzer, str):
                result = failed_batch(job, self.info, analyzer)
            else:
                try:
                    result = explain_batch(job, analyzer, self.info)
                except Exception as err:  # a bug or a fault of this batch: say so, go on
                    result = failed_batch(job, self.info,
                                          f"{job.method} failed: {type(err).__name__}: {err}")
            results.append(result_to_json(result))
        return {"index": np.asarray(batch["index"], np.int64),
                "result": np.asarray(results, dtype=object)}


def map_actors(ds, worker: type, workers: int, resources: dict, kwargs: dict, batch_size: int):
    """``ds.map_batches`` through a pool of ``workers`` actors of class ``worker``.

    A dead actor is restarted (``max_restarts=-1``) and its tasks run again up to
    :data:`TASK_RETRIES` times (``max_task_retries``), passed as ``ray_remote_args``. Ray 2.60
    marks these deprecated without a replacement; where a later Ray no longer takes them, its
    defaults for actor pools apply (restart and run again without end). The actors' processes
    start with ``SGLRP_FILTER_TF_NOTICES=1`` (:data:`WORKER_ENV`): TensorFlow's C++ info notices
    are filtered out of their stderr (:mod:`sglrp._stderr`).
    """
    import ray.data

    options = dict(fn_constructor_kwargs=kwargs, batch_size=batch_size, batch_format="numpy",
                   compute=ray.data.ActorPoolStrategy(size=workers,
                                                      max_tasks_in_flight_per_actor=2),
                   runtime_env=WORKER_ENV, **resources)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            return ds.map_batches(worker, max_restarts=-1, max_task_retries=TASK_RETRIES,
                                  **options)
    except TypeError:  # a Ray without ray_remote_args
        return ds.map_batches(worker, **options)


def sglrp_version() -> tuple[str, str]:
    """``(sglrp.__version__, sglrp.engine)``: what every worker must have too."""
    import sglrp

    return sglrp.__version__, sglrp.engine


class RayExecutor:
    """Computes the jobs of a :class:`~sglrp.explain.loop.Run` on Ray (its ``executor``).

    Parameters
    ----------
    spec : ModelSpec
        The model, as the workers build it.
    info : ModelInfo
        The same model on the driver (names the model in the records of failed jobs).
    workers : int
        Actors in the pool.
    resources : dict, optional
        ``num_cpus``, ``num_gpus`` per actor (default: :func:`worker_resources`).
    quiet : bool
        No progress output of Ray Data's own.

    Calling it with the jobs yields ``(job, BatchResult)`` as the jobs finish, each job once.

    Raises
    ------
    RunError
        If the workers cannot start (every attempt to build the model failed) or Ray fails.
    """

    def __init__(self, spec: ModelSpec, info: ModelInfo, workers: int = 1,
                 resources: dict | None = None, quiet: bool = True) -> None:
        self.spec, self.info, self.workers = spec, info, int(workers)
        self.resources, self.quiet = resources, quiet

    def dataset(self, jobs: Sequence[Job]):
        """The lazy Ray Dataset of the jobs' results: rows ``{"index", "result"}``."""
        import ray.data

        resources = self.resources or worker_resources(self.workers)
        items = [{"index": i, "job": job_to_json(job)} for i, job in enumerate(jobs)]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_BLOCKS))
        ds = map_actors(ds, ExplainWorker, min(self.workers, len(items)), resources,
                        {"spec": self.spec, "version": sglrp_version(), "keep": 1,
                         "cwd": os.getcwd()}, batch_size=1)
        _configure(ds.context, self.quiet)
        return ds

    def __call__(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, BatchResult]]:
        jobs = list(jobs)
        done: set[int] = set()
        try:
            for batch in self.dataset(jobs).iter_batches(batch_size=None,
                                                         batch_format="numpy"):
                for index, text in zip(batch["index"], batch["result"]):
                    index = int(index)
                    if index in done:  # a job run again after a fault, already recorded
                        continue
                    done.add(index)
                    yield jobs[index], result_from_json(str(text))
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except Exception as err:  # Ray's errors: workers that cannot start, a lost cluster
            raise RunError(f"the Ray workers failed: {_last_line(err)}") from err
        for index, job in enumerate(jobs):
            if index not in done:
                yield job, failed_batch(
                    job, self.info,
                    f"a worker died {TASK_RETRIES + 1} times on the batch of {job.images[0]}"
                    f"{f' (and {len(job.images) - 1} more)' if len(job.images) > 1 else ''}"
                    f", {job.method}; see Ray's logs")


def _last_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


# -- rows for the Python API (sglrp.distributed) ------------------------------------------------
#: Columns of the rows :class:`DatasetWorker` returns, one row per image x method x target.
ROW_COLUMNS = ("image", "method", "target", "target_id", "target_name", "relevance",
               "top_k_ids", "top_k_probs", "status", "error", "key", "signature")


class DatasetWorker(Worker):
    """The actor of :func:`sglrp.distributed.explain`: a batch of images -> rows of maps.

    The input batch has a column ``path`` (files read by the worker) and/or ``bytes`` (the
    files' content, e.g. from ``ray.data.read_binary_files``); each image is decoded and
    preprocessed as ``sglrp explain`` does (:func:`~sglrp.explain.inputs.read_batch`), then
    explained with every method (one analyzer per method kept alive) and target.

    Parameters
    ----------
    signatures : dict
        Method name -> :func:`~sglrp.explain.signature.method_signature` (its analyzer options
        included).
    targets : sequence
        ``"auto"`` or class ids.
    top_k, max_megapixels
        As in ``sglrp explain``.
    spec, version, cwd
        As for :class:`Worker`.
    """

    def __init__(self, spec: ModelSpec, version: Sequence[str], signatures: dict,
                 targets: Sequence, top_k: int = 5, max_megapixels: float = 50.0,
                 cwd: str | None = None) -> None:
        super().__init__(spec, version, keep=len(signatures), cwd=cwd)
        self.signatures, self.targets = dict(signatures), list(targets)
        self.top_k, self.max_megapixels = min(int(top_k), self.info.n_classes), max_megapixels

    def __call__(self, batch: dict) -> dict:
        import io

        from .inputs import read_batch
        from .loop import predict
        from .manifest import make_record
        from .model import AUTO
        from .outputs import output_key, output_stem
        from .signature import digest, map_signature

        n = len(next(iter(batch.values())))
        names = [str(p) for p in batch["path"]] if "path" in batch else [""] * n
        sources = ([io.BytesIO(bytes(b)) for b in batch["bytes"]] if "bytes" in batch
                   else names)
        images = read_batch(sources, range(n), self.info, self.max_megapixels)
        shape = (*self.info.size, self.info.channels)
        rows: list[tuple[dict, np.ndarray | None]] = []

        decoders = dict(zip(images.indices, images.decoders))

        def add(i, method, target, sha, relevance=None, **fields) -> None:
            signature = map_signature(self.signatures[method], target, sha, decoders.get(i))
            key = None if sha is None else output_key(output_stem(names[i] or "image"),
                                                      method, target, digest(signature))
            rows.append((make_record(key=key, image=names[i], model=self.info.name,
                                     method=method, target=target, signature=signature,
                                     class_name=self.info.class_name,
                                     preprocess=self.info.preprocessing, **fields), relevance))

        for method, signature in self.signatures.items():
            for i, message, sha in images.errors:
                for target in self.targets:
                    add(i, method, target, sha, status="error", error=message)
            if not images.indices:
                continue
            analyzer = self.analyzer(method, signature["options"])
            good = list(zip(images.indices, images.input_sha256))
            if isinstance(analyzer, str):
                for (i, sha) in good:
                    for target in self.targets:
                        add(i, method, target, sha, status="error", error=analyzer)
                continue
            probs, top_ids = predict(analyzer, images.x, self.top_k)
            predicted = probs.argmax(axis=1)
            for target in self.targets:
                ids = predicted if target == AUTO else np.full(len(good), target)
                try:
                    maps = analyzer.analyze(images.x, target=ids)
                except Exception as err:  # this batch and target only
                    for (i, sha) in good:
                        add(i, method, target, sha, status="error",
                            error=f"{method} failed: {err}")
                    continue
                for j, (i, sha) in enumerate(good):
                    add(i, method, target, sha, maps[j], status="ok", target_id=int(ids[j]),
                        top=(top_ids[j], probs[j, top_ids[j]]))
        return _columns(rows, shape, self.top_k)


def _columns(rows: list, shape: tuple, k: int) -> dict:
    """Rows ``(record, relevance or None)`` -> a batch of numpy columns (:data:`ROW_COLUMNS`);
    a failed row has a NaN map, ids -1 and NaN probabilities (``target_id`` -1 if unknown)."""

    def column(name: str, convert=lambda v: "" if v is None else str(v)) -> np.ndarray:
        array = np.empty(len(records), object)  # strings (an empty batch stays 1-D)
        array[:] = [convert(r[name]) for r in records]
        return array

    records = [r for r, _ in rows]
    relevance = np.full((len(rows), *shape), np.nan, np.float32)
    top_ids = np.full((len(rows), k), -1, np.int64)
    top_probs = np.full((len(rows), k), np.nan, np.float64)
    for n, (record, h) in enumerate(rows):
        if h is not None:
            relevance[n] = h
        if record["top_k_ids"] is not None:
            top_ids[n] = record["top_k_ids"]
            top_probs[n] = [np.nan if p is None else p for p in record["top_k_probs"]]
    return {
        "image": column("image"),
        "method": column("method"),
        "target": column("target"),
        "target_id": np.asarray([-1 if r["target_id"] is None else r["target_id"]
                                 for r in records], np.int64),
        "target_name": column("target_name"),
        "relevance": relevance,
        "top_k_ids": top_ids,
        "top_k_probs": top_probs,
        "status": column("status"),
        "error": column("error"),
        "key": column("key"),
        "signature": column("signature", json.dumps),
    }
