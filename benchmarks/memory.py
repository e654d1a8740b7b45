"""Memory of the eleven-method comparison on VGG16 in one process.

Usage::

    python -m benchmarks.memory [--model vgg16] [--batch 5] [--targets 340,386] [--json PATH]

The "zebra and elephant" comparison: GradCAM, GBP, GuidedGradCAM, LRP, CLRP, SGLRP, SGLRPSeqA,
SGLRPSeqB, LRPA, LRPB and LRPE, each built, run for two targets on one batch and closed in turn.
The resident set size (RSS) is read after loading the model, after each build, after each
analysis and after each ``close()``; the peak is the kernel's high-water mark, reset before each
method where Linux allows it, so each row shows that method's own peak.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np

from .common import (
    MODELS,
    build_model,
    gpu_peak_mb,
    machine_info,
    make_inputs,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    setup_tensorflow,
)

#: (label, registry name, whether it takes the input bounds ``low`` and ``high``).
COMPARISON = [
    ("GradCAM", "grad_cam", False),
    ("GBP", "guided_backprop", False),
    ("GuidedGradCAM", "guided_grad_cam", False),
    ("LRP", "lrp", True),
    ("CLRP", "clrp", True),
    ("SGLRP", "sglrp", True),
    ("SGLRPSeqA", "sglrp.sequential_preset_a", False),
    ("SGLRPSeqB", "sglrp.sequential_preset_b", False),
    ("LRPA", "lrp.sequential_preset_a_flat", False),
    ("LRPB", "lrp.sequential_preset_b_flat", False),
    ("LRPE", "lrp.epsilon", False),
]

#: The goal of the issue: the whole comparison within a laptop's memory.
GOAL_MB = 10 * 1024


def run_comparison(model_name: str, batch: int, targets: list[int]) -> dict:
    """Build, analyze and close every method of :data:`COMPARISON` in turn; RSS at each step.

    Returns
    -------
    dict
        ``rows`` (one per method: MiB after build, after analysis, after close, the method's
        peak; build and analysis seconds; sums of the maps as a check that outputs do not
        change) and the process's ``peak_mb``.
    """
    import sglrp

    spec = MODELS[model_name]
    start_mb = rss_mb()
    model = build_model(model_name)
    x = make_inputs(model_name, batch)
    model.predict_on_batch(x)
    model_mb, process_peak = rss_mb(), peak_rss_mb()
    can_reset = reset_peak_rss()
    rows = []
    for label, name, bounded in COMPARISON:
        kwargs = {"low": spec.low, "high": spec.high} if bounded else {}
        before = rss_mb()
        t0 = time.perf_counter()
        analyzer = sglrp.create_analyzer(name, model, **kwargs)
        build_s = time.perf_counter() - t0
        built = rss_mb()
        t0 = time.perf_counter()
        maps = [analyzer.analyze(x, target=t) for t in targets]
        analyze_s = time.perf_counter() - t0
        analyzed = rss_mb()
        analyzer.close()
        del analyzer
        gc.collect()
        closed = rss_mb()
        peak = peak_rss_mb()
        process_peak = max(process_peak, peak)
        rows.append(
            {
                "method": label,
                "name": name,
                "before_mb": before,
                "after_build_mb": built,
                "after_analyze_mb": analyzed,
                "after_close_mb": closed,
                "peak_mb": peak,
                "process_peak_mb": process_peak,
                "build_s": build_s,
                "analyze_s": analyze_s,
                "map_sums": [float(np.sum(m, dtype=np.float64)) for m in maps],
                "map_abs_sums": [float(np.abs(m).sum(dtype=np.float64)) for m in maps],
            }
        )
        print(
            f"  {label:14s} build {build_s:6.1f} s  analyze {analyze_s:6.1f} s  "
            f"RSS built {built:7.0f}  analyzed {analyzed:7.0f}  closed {closed:7.0f}  "
            f"peak {peak:7.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
        if can_reset:
            reset_peak_rss()
    closes = [r["after_close_mb"] for r in rows]
    return {
        "model": model_name,
        "batch": batch,
        "targets": targets,
        "start_mb": start_mb,
        "model_mb": model_mb,
        "peak_reset_per_method": can_reset,
        "rows": rows,
        "peak_mb": process_peak,
        "gpu_peak_mb": gpu_peak_mb(),
        "goal_mb": GOAL_MB,
        "within_goal": process_peak <= GOAL_MB,
        "close_growth_mb": [b - a for a, b in zip(closes, closes[1:])],
    }


def markdown(result: dict) -> str:
    """The memory table in markdown."""
    lines = [
        f"Model {result['model']}, batch {result['batch']}, targets {result['targets']}: "
        f"RSS {result['start_mb']:.0f} MiB after imports, {result['model_mb']:.0f} MiB with the "
        "model loaded and run once.",
        "",
        "| method | build s | analyze s (all targets) | RSS after build MiB "
        "| after analyze MiB | after close() MiB | peak of this step MiB | process peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['method']} | {r['build_s']:.1f} | {r['analyze_s']:.1f} "
            f"| {r['after_build_mb']:.0f} | {r['after_analyze_mb']:.0f} "
            f"| {r['after_close_mb']:.0f} | {r['peak_mb']:.0f} | {r['process_peak_mb']:.0f} |"
        )
    growth = result["close_growth_mb"]
    verdict = "within" if result["within_goal"] else "ABOVE"
    lines += [
        "",
        f"Peak RSS of the whole comparison: {result['peak_mb']:.0f} MiB "
        f"({result['peak_mb'] / 1024:.2f} GiB), {verdict} the goal of "
        f"{result['goal_mb'] / 1024:.0f} GiB.",
        f"RSS after close(), change from one method to the next (MiB): "
        f"{', '.join(f'{g:+.0f}' for g in growth)}.",
    ]
    if result["gpu_peak_mb"] is not None:
        lines.append(f"Peak GPU memory (TensorFlow's allocator): {result['gpu_peak_mb']:.0f} MiB.")
    if not result["peak_reset_per_method"]:
        lines.append("(The high-water mark could not be reset: 'peak of this step' is cumulative.)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--model", default="vgg16", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--targets", default=None, help="comma-separated (vgg16: 340,386)")
    parser.add_argument("--json", default=None, help="write the result to this JSON file")
    args = parser.parse_args(argv)
    threads = setup_tensorflow()
    targets = args.targets or ("340,386" if args.model == "vgg16" else "3,8")
    result = run_comparison(args.model, args.batch, [int(t) for t in targets.split(",")])
    result["machine"] = machine_info(threads)
    result["command"] = "python -m benchmarks.memory " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(markdown(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
