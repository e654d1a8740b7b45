"""innvestigate's own analyzers, timed in a process with eager execution off.

Usage (normally started by ``benchmarks.run`` as a child process)::

    python -m benchmarks.baselines --model vgg16 [--weights W.h5] --batch-sizes 1,8 \
        --repeats 5 --json OUT.json

innvestigate 2.x builds its analyzers with the TF1 graph API, so this process turns eager
execution off before anything else, rebuilds the model (VGG16 from the parent's weights file,
the demo CNN from its shipped weights), strips the softmax with ``innvestigate.model_wo_softmax``
and creates each analyzer with ``neuron_selection_mode="index"``. Build time is the analyzer's
construction plus ``create_analyzer_model()``; times are per image, median of the timed runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import warnings
from functools import partial

import numpy as np
import tensorflow as tf

from .common import (
    HEAVY_BATCH,
    MODELS,
    build_model,
    gpu_peak_mb,
    make_inputs,
    peak_rss_mb,
    rss_mb,
    setup_tensorflow,
    time_batches,
)

#: (label, innvestigate name, whether it takes the input bounds ``low`` and ``high``).
BASELINES = [
    ("BoundedDeepTaylor", "deep_taylor.bounded", True),
    ("LRPEpsilon", "lrp.epsilon", False),
    ("LRPSequentialPresetAFlat", "lrp.sequential_preset_a_flat", False),
    ("LRPSequentialPresetBFlat", "lrp.sequential_preset_b_flat", False),
    ("Gradient", "gradient", False),
]


def parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def run_baselines(model_name, weights, batch_sizes, repeats_for, heavy_only=None) -> dict:
    """Time the forward pass (graph mode) and every analyzer of :data:`BASELINES`.

    Parameters
    ----------
    model_name : str
        A key of :data:`benchmarks.common.MODELS`.
    weights : str or None
        VGG16 weights file written by the parent.
    batch_sizes : list of int
    repeats_for : callable
        ``repeats_for(batch_size)``: the number of timed runs.
    heavy_only : list of str, optional
        Time only these analyzers at batch sizes >= ``HEAVY_BATCH`` (default: all).

    Returns
    -------
    dict
        ``forward`` and ``methods`` (per method: ``build_s``, ``rss_after_build_mb`` and
        ``batches`` - per batch size the per-image times), ``probabilities`` of the first input
        (the parent checks the rebuilt model against its own), ``peak_rss_mb``.
    """
    import innvestigate

    spec = MODELS[model_name]
    model = build_model(model_name, weights)
    logits_model = innvestigate.model_wo_softmax(model)
    x = make_inputs(model_name, max(batch_sizes))
    result = {
        "probabilities": model.predict_on_batch(x[:1])[0].tolist(),
        "rss_model_mb": rss_mb(),
        "methods": {},
    }
    result["forward"] = time_batches(
        model.predict_on_batch, x, batch_sizes, repeats_for, warmup_each_batch=True
    )
    for label, name, bounded in BASELINES:
        kwargs = {"low": spec.low, "high": spec.high} if bounded else {}
        t0 = time.perf_counter()
        analyzer = innvestigate.create_analyzer(
            name, logits_model, neuron_selection_mode="index", **kwargs
        )
        analyzer.create_analyzer_model()
        entry = {"build_s": time.perf_counter() - t0, "rss_after_build_mb": rss_mb()}
        analyze = partial(analyzer.analyze, neuron_selection=spec.target)
        sizes = batch_sizes
        if heavy_only is not None and label not in heavy_only:
            sizes = [b for b in batch_sizes if b < HEAVY_BATCH]
        entry["batches"] = time_batches(analyze, x, sizes, repeats_for)
        result["methods"][label] = entry
        print(f"  innvestigate {label}: build {entry['build_s']:.1f} s", file=sys.stderr)
        del analyzer, analyze
        gc.collect()
    result["peak_rss_mb"] = peak_rss_mb()
    result["gpu_peak_mb"] = gpu_peak_mb()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines", description=__doc__)
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--batch-sizes", required=True, type=parse_ints)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--heavy-repeats", type=int, default=None, help="timed runs at batch >= 8 (default: same)"
    )
    parser.add_argument(
        "--heavy-only", default=None, help="comma-separated analyzers to time at batch >= 8"
    )
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    tf.compat.v1.disable_eager_execution()
    # Keras' graph-mode predict warns about its own use of a deprecated property.
    warnings.filterwarnings("ignore", message=".*state_updates")
    threads = setup_tensorflow()
    heavy = args.repeats if args.heavy_repeats is None else args.heavy_repeats
    heavy_only = args.heavy_only.split(",") if args.heavy_only else None
    result = run_baselines(
        args.model,
        args.weights,
        args.batch_sizes,
        lambda b: args.repeats if b < HEAVY_BATCH else heavy,
        heavy_only,
    )
    result["threads"] = threads
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2, default=_to_json)
    return 0


def _to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialize {type(value)}")


if __name__ == "__main__":
    sys.exit(main())
