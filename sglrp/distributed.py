"""Relevance maps of whole datasets on Ray, from Python (``pip install "sglrp[ray]"``).

:func:`explain` is ``sglrp explain --ray`` for notebooks and pipelines: the same model loading,
preprocessing, methods, targets, signatures and records, computed by a pool of Ray Data actors
that each build the model once (:mod:`sglrp.explain.ray_runner`). It either returns a lazy Ray
Dataset of maps, which a pipeline transforms further or writes anywhere Ray writes::

    import ray, sglrp.distributed

    files = ray.data.read_binary_files("s3://bucket/images/", include_paths=True)
    maps = sglrp.distributed.explain(files, model="vgg16", methods=["sglrp", "lrp"],
                                     targets=["auto", 340], workers=8)
    maps.write_parquet("s3://bucket/maps/")

or writes the standard output folder of ``sglrp explain`` (``out=``: maps, pictures, manifest,
resume) and returns the counts of its records.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .explain.errors import UsageError
from .explain.ray_runner import ROW_COLUMNS

__all__ = ["explain", "ROW_COLUMNS"]


def _as_list(value) -> list:
    if isinstance(value, (str, int, os.PathLike)):
        return [value]
    return list(value)


def explain(data, *, model: str = "vgg16", methods="sglrp", targets="auto",
            weights: str | None = None, low: float | None = None, high: float | None = None,
            preprocess: str = "auto", relu: bool = False, workers: int | None = None,
            batch_size: int = 8, top_k: int = 5, max_megapixels: float = 50.0, out=None,
            formats: Sequence[str] = ("npy", "png"), overwrite: bool = False,
            verify: str = "sha256"):
    """Explain images with one or more methods and targets on Ray.

    Parameters
    ----------
    data : path, sequence of paths, or ray.data.Dataset
        Image files or folders (their image files, as ``sglrp explain`` takes them), or a
        Dataset with a column ``bytes`` (each file's content, e.g.
        ``ray.data.read_binary_files(..., include_paths=True)``) and/or ``path`` (files the
        workers read). Decoded images (``ray.data.read_images``) are not taken: the maps must
        come from the same decoding and resizing as ``sglrp explain``'s. ``out=`` needs paths.
    model : str
        ``"demo"``, ``"vgg16"`` or a ``.keras``/``.h5`` file (that every node can read).
    methods, targets : str or sequence
        Method names (:func:`sglrp.available_methods`); targets ``"auto"`` (the predicted
        class), class ids or class names. One map per image, method and target.
    preprocess : str
        How pixels become the model's input, as ``sglrp explain --preprocess``: ``"auto"``
        (default), ``"0-1"``, ``"0-255"``, ``"-1-1"``, ``"caffe"`` or ``"torch"``
        (:mod:`sglrp.explain.preprocess`); ``low``/``high`` default to its range.
    weights, low, high, relu, batch_size, top_k, max_megapixels
        As the options of ``sglrp explain`` (``batch_size``: images per actor call).
    workers : int, optional
        Actors, each with its own model; default one per GPU of the cluster, else 1. With GPUs
        each takes one, else an equal share of the CPUs.
    out : path, optional
        Write the standard output folder instead (``sglrp explain --out``; its manifest
        records, resume, ``formats``, ``overwrite`` and ``verify``: ``"sha256"`` or ``"size"``,
        how reused outputs are checked, as ``--verify``).

    Returns
    -------
    ray.data.Dataset or dict
        Without ``out``: a lazy Dataset, one row per image x method x target, columns
        :data:`ROW_COLUMNS`: ``image`` (path, ``""`` for bytes without one), ``method``,
        ``target`` (``"auto"`` or the id, as text), ``target_id`` and ``target_name`` (the class
        explained), ``relevance`` (float32, shaped like the model input), ``top_k_ids`` and
        ``top_k_probs`` (the most probable classes), ``status`` (``"ok"`` or ``"error"``) and
        ``error``, ``key`` (the output name ``sglrp explain`` gives this map) and
        ``signature`` (JSON: what the map is computed from). A failed row has a NaN map, ids -1
        and NaN probabilities; ``target_id`` is -1 where unknown (``auto`` of a failed image).
        With ``out``: the record counts ``{"ok": ..., "skipped": ..., "error": ...}``; errors
        are also printed on stderr.

    Raises
    ------
    ValueError
        For a bad model, method, target or option (before any work); ``TypeError`` for
        ``data`` of another kind.
    """
    import math

    import ray
    import ray.data

    from .explain import ray_runner
    from .explain.cli import parse_methods
    from .explain.model import load_model_info, parse_targets
    from .explain.signature import model_identity

    is_dataset = isinstance(data, ray.data.Dataset)
    if not is_dataset and not isinstance(data, (str, os.PathLike, list, tuple)):
        raise TypeError(f"data must be a path, a sequence of paths or a ray.data.Dataset, "
                        f"got {type(data).__name__}")
    if out is not None and is_dataset:
        raise TypeError("out= writes the output folder of image files: give paths, not a "
                        "Dataset (or leave out= and write the returned Dataset)")
    if is_dataset:
        columns = set(data.schema().names)
        if not columns & {"bytes", "path"}:
            raise TypeError(f"the Dataset needs a column 'bytes' (file contents) or 'path'; it "
                            f"has {sorted(columns)}")
    for name, value in (("batch_size", batch_size), ("top_k", top_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if not (isinstance(max_megapixels, (int, float)) and math.isfinite(max_megapixels)
            and max_megapixels > 0):
        raise ValueError(f"max_megapixels must be a finite number > 0, got {max_megapixels!r}")
    if verify not in ("sha256", "size"):
        raise ValueError(f"verify must be 'sha256' or 'size', got {verify!r}")
    methods = parse_methods(",".join(map(str, _as_list(methods))))
    info = load_model_info(model, weights, low, high, preprocess)
    if not info.low < info.high:
        raise UsageError(f"low must be below high, got {info.low} and {info.high}")
    targets = parse_targets(",".join(map(str, _as_list(targets))), info)
    identity = model_identity(model, weights, info.preprocessing)
    info.model = None  # the workers build their own
    spec = ray_runner.ModelSpec(model, weights, low, high, info.preprocessing)
    if not ray.is_initialized():
        ray.init()
    workers = workers or ray_runner.default_workers()
    resources = ray_runner.worker_resources(workers, reserve=out is None)
    if out is not None:
        return _to_folder(_as_list(data), out, info, identity, spec, methods, targets, formats,
                          relu, batch_size, top_k, max_megapixels, overwrite, verify,
                          ray_runner.RayExecutor(spec, info, workers, resources, quiet=False))
    if not is_dataset:
        from .explain.inputs import expand_inputs

        paths = expand_inputs([str(p) for p in _as_list(data)])
        if not paths:
            raise ValueError(f"no images found in {data!r}")
        data = ray.data.from_items([{"path": p} for p in paths],  # a block per batch
                                   override_num_blocks=min(-(-len(paths) // batch_size),
                                                           ray_runner.MAX_BLOCKS))
    else:
        data = data.select_columns(sorted(columns & {"bytes", "path"}))
    from .explain.loop import analyzer_options
    from .explain.signature import method_signature, rules_version

    signatures = {m: method_signature(identity, m, analyzer_options(m, info, relu),
                                      rules_version(m, info.separable))
                  for m in methods}
    return ray_runner.map_actors(
        data, ray_runner.DatasetWorker, workers, resources,
        {"spec": spec, "version": ray_runner.sglrp_version(), "signatures": signatures,
         "targets": targets, "top_k": top_k, "max_megapixels": max_megapixels,
         "cwd": os.getcwd()}, batch_size=batch_size)


def _to_folder(paths, out, info, identity, spec, methods, targets, formats, relu, batch_size,
               top_k, max_megapixels, overwrite, verify, executor) -> dict:
    """``sglrp explain --ray`` without the command line: the run into ``out``."""
    from pathlib import Path

    from .explain.cli import parse_formats
    from .explain.inputs import expand_inputs
    from .explain.loop import Run

    formats = parse_formats(",".join(_as_list(formats)))
    images = expand_inputs([str(p) for p in paths])
    if not images:
        raise ValueError(f"no images found in {paths!r}")
    Path(out).mkdir(parents=True, exist_ok=True)
    run = Run(info=info, identity=identity, images=images, methods=methods, targets=targets,
              formats=formats, out=out, relu=relu, batch_size=batch_size, top_k=top_k,
              max_megapixels=max_megapixels, overwrite=overwrite, verify=verify,
              say=lambda message: print(message, file=sys.stderr, flush=True),
              executor=executor)
    try:
        run.execute()
    finally:
        run.close()
    return dict(run.counts)
