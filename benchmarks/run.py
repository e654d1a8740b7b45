"""Time per image, graph-build time and memory of every sglrp method, against innvestigate.

Usage::

    python -m benchmarks.run [--quick] [--json PATH] [--models vgg16,demo]
                             [--batch-sizes 1,8,32] [--repeats 5] [--heavy-repeats 1]
                             [--heavy-all] [--vgg16-samples 8]

For each model (VGG16 with random weights at 224x224, the demo CNN at 32x32x1) and batch size,
in this one process: the forward pass (``model.predict_on_batch``, eager) and every registered
sglrp method; in a child process with eager execution off (``benchmarks.baselines``):
innvestigate's BoundedDeepTaylor, LRPEpsilon, LRPSequentialPresetAFlat / BFlat and Gradient on
the same weights. Reported: the median seconds per image over the timed runs, its ratio to the
forward pass and to innvestigate's BoundedDeepTaylor, the build time (analyzer construction),
the RSS after each build and the process's peak RSS.

Each analyzer gets one untimed warm-up run (at its first batch size: a session pays its
one-time costs at its first run, whatever the batch size); the forward pass one per batch size.

``--quick`` measures only the demo CNN. VGG16 is slow on a CPU, so by default it runs batch
sizes 1 and 8 and, at batch 8, ``--heavy-repeats`` timed runs of only the methods the
headline ratios need (``--heavy-all``: every method); SmoothGrad and Integrated Gradients run
with ``--vgg16-samples`` noisy copies / path steps instead of the default 64. The tables say so.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from .baselines import parse_ints
from .common import (
    HEAVY_BATCH,
    MODELS,
    build_model,
    gpu_peak_mb,
    load_average,
    machine_info,
    make_inputs,
    peak_rss_mb,
    rss_mb,
    setup_tensorflow,
    time_batches,
    time_runs,
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "BoundedDeepTaylor"

#: sglrp method, the innvestigate analyzer it is compared with, and the goal for the ratio.
HEADLINE = [
    ("sglrp", "BoundedDeepTaylor", 1.3),
    ("clrp", "BoundedDeepTaylor", 1.3),
    ("lrp", "BoundedDeepTaylor", None),
    ("sglrp.sequential_preset_a", "LRPSequentialPresetAFlat", 1.05),
    ("sglrp.sequential_preset_b", "LRPSequentialPresetBFlat", 1.05),
    ("lrp.sequential_preset_a_flat", "LRPSequentialPresetAFlat", None),
    ("lrp.sequential_preset_b_flat", "LRPSequentialPresetBFlat", None),
    ("lrp.epsilon", "LRPEpsilon", None),
]
#: What VGG16 times at batch sizes >= HEAVY_BATCH unless --heavy-all: the ratios with a goal.
HEAVY_METHODS = [name for name, _, goal in HEADLINE if goal] + ["lrp"]
HEAVY_BASELINES = sorted({other for name, other, _ in HEADLINE if name in HEAVY_METHODS})


def sglrp_methods(model_name: str, vgg16_samples: int) -> list[tuple[str, str, dict]]:
    """(label, registry name, constructor arguments) of every single-input sglrp method."""
    import sglrp
    from sglrp.registry import METHODS

    spec = MODELS[model_name]
    out = []
    for name in sglrp.available_methods():
        if name == "grad_cam.multi_input":  # the same graph as grad_cam, for several inputs
            continue
        kwargs, label = {"low": spec.low, "high": spec.high}, METHODS[name].__name__
        if model_name == "vgg16" and name in ("smoothgrad", "integrated_gradients"):
            key = "augment_by_n" if name == "smoothgrad" else "steps"
            kwargs[key] = vgg16_samples
            label += f" ({key}={vgg16_samples})"
        out.append((label, name, kwargs))
    return out


def run_baselines_child(model_name, weights, batch_sizes, repeats, heavy_repeats, heavy_only):
    """innvestigate's analyzers, timed by ``benchmarks.baselines`` in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baselines.json"
        command = [
            sys.executable, "-m", "benchmarks.baselines", "--model", model_name,
            "--batch-sizes", ",".join(map(str, batch_sizes)), "--repeats", str(repeats),
            "--heavy-repeats", str(heavy_repeats), "--json", str(out),
        ]  # fmt: skip
        if weights:
            command += ["--weights", str(weights)]
        if heavy_only is not None:
            command += ["--heavy-only", ",".join(heavy_only)]
        subprocess.run(command, cwd=ROOT, check=True)
        result = json.loads(out.read_text())
    # JSON keys are strings: batch sizes back to int.
    result["forward"] = {int(b): v for b, v in result["forward"].items()}
    for entry in result["methods"].values():
        entry["batches"] = {int(b): v for b, v in entry["batches"].items()}
    return result


def bench_model(model_name, batch_sizes, repeats, heavy_repeats, heavy_all, vgg16_samples):
    """Every measurement of one model; see the module docstring.

    ``heavy_repeats`` and (unless ``heavy_all``) the reduced method set apply to VGG16 at batch
    sizes >= ``HEAVY_BATCH`` only.
    """
    import numpy as np

    import sglrp
    from sglrp.validation import weights_fingerprint

    spec = MODELS[model_name]
    heavy = model_name == "vgg16"
    repeats_for = lambda b: heavy_repeats if heavy and b >= HEAVY_BATCH else repeats
    reduced = heavy and not heavy_all and max(batch_sizes) >= HEAVY_BATCH

    print(f"[{model_name}] building the model", file=sys.stderr, flush=True)
    model = build_model(model_name)
    x = make_inputs(model_name, max(batch_sizes))
    forward = time_batches(
        model.predict_on_batch, x, batch_sizes, repeats_for, warmup_each_batch=True
    )
    result = {
        "model": model_name,
        "input_shape": list(spec.input_shape),
        "parameters": int(model.count_params()),
        "target": spec.target,
        "batch_sizes": list(batch_sizes),
        "runs": {b: repeats_for(b) for b in batch_sizes},
        "heavy_methods": [*HEAVY_METHODS, *HEAVY_BASELINES] if reduced else None,
        "rss_model_mb": rss_mb(),
        "forward": forward,
        "weights_check_s": float(np.median(time_runs(lambda: weights_fingerprint(model), 5))),
        "methods": {},
    }

    result["engine"] = sglrp.engine
    result["baselines"] = None
    if sglrp.engine == "innvestigate":
        add_baselines(result, model, model_name, x, batch_sizes, repeats, repeats_for, reduced)
    bench_methods(result, model, model_name, x, batch_sizes, repeats_for, reduced, vgg16_samples)
    return result


def add_baselines(result, model, model_name, x, batch_sizes, repeats, repeats_for, reduced):
    """innvestigate's own analyzers on the same weights, in a child process."""
    import numpy as np

    print(f"[{model_name}] innvestigate baselines (child process)", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        weights = None
        if model_name == "vgg16":
            weights = Path(tmp) / "vgg16.weights.h5"
            model.save_weights(str(weights))
        child = run_baselines_child(
            model_name,
            weights,
            batch_sizes,
            repeats,
            repeats_for(max(batch_sizes)),
            HEAVY_BASELINES if reduced else None,
        )
    own = model.predict_on_batch(x[:1])[0]
    result["baselines"] = child
    result["baseline_model_max_abs_diff"] = float(np.max(np.abs(own - child.pop("probabilities"))))


def bench_methods(result, model, model_name, x, batch_sizes, repeats_for, reduced, vgg16_samples):
    """Every sglrp method: build time, time per image, memory."""
    import sglrp

    spec = MODELS[model_name]
    light_sizes = [b for b in batch_sizes if b < HEAVY_BATCH]
    for label, name, kwargs in sglrp_methods(model_name, vgg16_samples):
        print(f"[{model_name}] sglrp {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        analyzer = sglrp.create_analyzer(name, model, **kwargs)
        entry = {
            "label": label,
            "kwargs": kwargs,
            "build_s": time.perf_counter() - t0,
            "rss_after_build_mb": rss_mb(),
        }
        sizes = light_sizes if reduced and name not in HEAVY_METHODS else batch_sizes
        analyze = partial(analyzer.analyze, target=spec.target)
        entry["batches"] = time_batches(analyze, x, sizes, repeats_for)
        analyzer.close()
        del analyzer, analyze
        gc.collect()
        entry["rss_after_close_mb"] = rss_mb()
        result["methods"][name] = entry
    result["peak_rss_mb"] = peak_rss_mb()
    result["gpu_peak_mb"] = gpu_peak_mb()
    add_ratios(result)


def add_ratios(result: dict) -> None:
    """Ratios to the forward pass and to innvestigate's BoundedDeepTaylor, and the headline."""
    base = result["baselines"]["methods"] if result["baselines"] else {}
    reference = base[REFERENCE]["batches"] if base else {}
    for entry in [*result["methods"].values(), *base.values()]:
        for b, t in entry["batches"].items():
            t["x_forward"] = t["median_s_per_image"] / result["forward"][b]["median_s_per_image"]
            if b in reference:
                t["x_bounded_deep_taylor"] = (
                    t["median_s_per_image"] / reference[b]["median_s_per_image"]
                )
    headline = []
    for name, other, goal in HEADLINE if base else []:
        mine, theirs = result["methods"][name], base[other]
        both = [b for b in result["batch_sizes"] if b in mine["batches"] and b in theirs["batches"]]
        headline.append(
            {
                "method": mine["label"],
                "name": name,
                "innvestigate": other,
                "goal": goal,
                "time_ratio": {
                    b: mine["batches"][b]["median_s_per_image"]
                    / theirs["batches"][b]["median_s_per_image"]
                    for b in both
                },
                "build_ratio": mine["build_s"] / theirs["build_s"],
                "build_ratio_to_bounded_deep_taylor": mine["build_s"] / base[REFERENCE]["build_s"],
            }
        )
    result["headline"] = headline


# -- report -------------------------------------------------------------------------------------
def machine_markdown(info: dict) -> str:
    gpus = ", ".join(info["gpus"]) or "none"
    t = info["threads"]
    return "\n".join(
        [
            f"- date: {info['date']}",
            f"- CPU: {info['cpu']}, {info['usable_cpus']} usable of {info['logical_cpus']} "
            f"logical CPUs, RAM {info['ram_gb']} GiB; GPU: {gpus}",
            f"- threads: intra-op {t['intra_op']}, inter-op {t['inter_op']}, "
            f"OMP_NUM_THREADS={t['OMP_NUM_THREADS']} (sglrp's own sessions use TF's default: "
            "one thread per usable CPU)",
            f"- load average (1, 5, 15 min) at the start: {info['load_average']}, "
            f"at the end: {info.get('load_average_end')}",
            f"- Python {info['python']}, TensorFlow {info['tensorflow']}, Keras {info['keras']}, "
            f"innvestigate {info['innvestigate']}, NumPy {info['numpy']}, sglrp {info['sglrp']} "
            f"(engine {info['engine']})",
            f"- sglrp source: {info['sglrp_source']}",
        ]
    )


def _cells(entry: dict, batch_sizes) -> str:
    out = []
    for b in batch_sizes:
        t = entry["batches"].get(b)
        if t is None:
            out.append("- | - | -")
            continue
        bdt = t.get("x_bounded_deep_taylor")
        bdt = "-" if bdt is None else f"{bdt:.2f}"
        out.append(f"{t['median_s_per_image']:.4f} | {t['x_forward']:.1f} | {bdt}")
    return " | ".join(out)


def _gpu_note(result: dict) -> str:
    mine, theirs = result["gpu_peak_mb"], (result["baselines"] or {}).get("gpu_peak_mb")
    if mine is None and theirs is None:
        return ""
    mib = lambda v: "n/a" if v is None else f"{v:.0f} MiB"
    return f" Peak GPU memory: {mib(mine)} (this process), {mib(theirs)} (innvestigate process)."


def _weights_check_note(result: dict) -> str:
    """The cost of following the model's weights: the fingerprint every analyze computes."""
    check = result.get("weights_check_s")
    if check is None:
        return ""
    text = (
        "Weights check (the fingerprint each `analyze` computes to follow the model): "
        f"{check:.3f} s per call"
    )
    sglrp_batches = result["methods"].get("sglrp", {}).get("batches", {})
    if sglrp_batches:
        b = max(sglrp_batches)
        call = sglrp_batches[b]["median_s_per_image"] * b
        text += f", {100 * check / call:.1f} % of one SGLRP call at batch {b} ({call:.2f} s)"
    return text + "."


def model_markdown(result: dict) -> str:
    bs = result["batch_sizes"]
    base = result["baselines"]
    runs = ", ".join(f"batch {b}: {n}" for b, n in result["runs"].items())
    shape = "x".join(map(str, result["input_shape"]))
    note = ""
    if result["heavy_methods"]:
        note = (
            f" At batch >= {HEAVY_BATCH} only the forward pass and "
            f"{', '.join(result['heavy_methods'])} are timed (the rest: '-')."
        )
    head = "| method | build s | RSS after build MiB | " + " | ".join(
        f"b={b} s/img | b={b} x fwd | b={b} x BDT" for b in bs
    )
    lines = [
        f"### {result['model']} (input {shape}, {result['parameters']:,} parameters, "
        f"target {result['target']}; engine {result['engine']})",
        "",
        f"Median seconds per image; timed runs after the warm-up: {runs}.{note} "
        "x fwd: ratio to the forward pass (eager `predict_on_batch`); x BDT: ratio to "
        "innvestigate's BoundedDeepTaylor. RSS after build: the whole process (model included).",
        "",
        head + " |",
        "|---|---:|---:|" + "---:|---:|---:|" * len(bs),
    ]
    fwd = " | ".join(f"{result['forward'][b]['median_s_per_image']:.4f} | 1.0 | " for b in bs)
    lines.append(f"| forward, eager | | {result['rss_model_mb']:.0f} | {fwd} |")
    if base:
        graph = {b: base["forward"][b]["median_s_per_image"] for b in bs}
        fwd_graph = " | ".join(
            f"{graph[b]:.4f} | {graph[b] / result['forward'][b]['median_s_per_image']:.1f} | "
            for b in bs
        )
        lines.append(f"| forward, graph mode (innvestigate process) | | | {fwd_graph} |")
        for label, entry in base["methods"].items():
            lines.append(
                f"| innvestigate {label} | {entry['build_s']:.2f} "
                f"| {entry['rss_after_build_mb']:.0f} | {_cells(entry, bs)} |"
            )
    for name, entry in result["methods"].items():
        lines.append(
            f"| {entry['label']} (`{name}`) | {entry['build_s']:.2f} "
            f"| {entry['rss_after_build_mb']:.0f} | {_cells(entry, bs)} |"
        )
    peak = f"Peak RSS: {result['peak_rss_mb']:.0f} MiB (this process, all models so far)"
    if base:
        peak += (
            f"; {base['peak_rss_mb']:.0f} MiB (innvestigate process). The innvestigate process "
            f"rebuilt the model from the same weights: max |difference| of the probabilities "
            f"{result['baseline_model_max_abs_diff']:.1e}"
        )
    lines += ["", peak + "." + _gpu_note(result), "", _weights_check_note(result)]
    if not result["headline"]:
        return "\n".join(lines)
    lines += [
        "",
        "| sglrp | innvestigate | goal | "
        + " | ".join(f"time ratio b={b}" for b in bs)
        + " | build ratio | build ratio to BDT |",
        "|---|---|---:|" + "---:|" * (len(bs) + 2),
    ]
    for h in result["headline"]:
        goal = f"<= {h['goal']}" if h["goal"] else ""
        ratios = " | ".join(
            f"{h['time_ratio'][b]:.2f}" if b in h["time_ratio"] else "-" for b in bs
        )
        lines.append(
            f"| {h['method']} | {h['innvestigate']} | {goal} | {ratios} "
            f"| {h['build_ratio']:.2f} | {h['build_ratio_to_bounded_deep_taylor']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="the demo CNN only")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--models", default="vgg16,demo", help="comma-separated: vgg16,demo")
    parser.add_argument(
        "--batch-sizes", type=parse_ints, default=None, help="default: vgg16 1,8; demo 1,8,32"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument(
        "--heavy-repeats",
        type=int,
        default=1,
        help=f"timed runs for VGG16 at batch >= {HEAVY_BATCH} (default 1)",
    )
    parser.add_argument(
        "--heavy-all",
        action="store_true",
        help=f"time every method for VGG16 at batch >= {HEAVY_BATCH}, not only the headline",
    )
    parser.add_argument(
        "--vgg16-samples", type=int, default=8, help="SmoothGrad / IG samples on VGG16 (8)"
    )
    args = parser.parse_args(argv)
    models = ["demo"] if args.quick else [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            parser.error(f"unknown model {m!r}; choose from {sorted(MODELS)}")

    threads = setup_tensorflow()
    started = time.perf_counter()
    info = machine_info(threads)
    results = []
    for m in models:
        batch_sizes = args.batch_sizes or list(MODELS[m].batch_sizes)
        results.append(
            bench_model(
                m, batch_sizes, args.repeats, args.heavy_repeats, args.heavy_all, args.vgg16_samples
            )
        )
    elapsed = time.perf_counter() - started
    info["load_average_end"] = load_average()
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"## Benchmark\n\n`{command.strip()}` ({elapsed / 60:.1f} min)\n")
    print(machine_markdown(info) + "\n")
    for result in results:
        print(model_markdown(result) + "\n")
    if args.json:
        report = {"command": command.strip(), "elapsed_s": elapsed, "machine": info}
        report["models"] = results
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
