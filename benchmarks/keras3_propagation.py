"""Time of the Keras 3 engine's compiled analysis against the model's own forward pass.

Usage (Keras 3 environment, repository root)::

    python -m benchmarks.keras3_propagation [--batch 8] [--repeats 7] [--jit] [--rule ...]

VGG16 (``weights=None``, 224x224, logits), one batch: ``model.predict_on_batch`` and one
:class:`~sglrp.engines.keras3.propagate.Propagation` call (by default SGLRP: bounded Deep Taylor
with the two softmax-gradient heads), timed alternately in this process after one warm-up each.
Prints the median of each and the ratio of the medians, in wall-clock time and in this process's
CPU time (steadier than wall-clock time on a machine shared with other work).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

HEADS = {
    "sglrp": ("softmax_gradient_target", "softmax_gradient_dual"),
    "clrp": ("output", "contrastive_dual"),
    "lrp": ("output",),
    "sglrp_seq": ("softmax_gradient",),
    "gradient": ("gradient",),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--jit", action="store_true", help="compile the analysis with XLA")
    parser.add_argument("--rule", default="bounded_deep_taylor")
    parser.add_argument("--heads", default="sglrp", choices=sorted(HEADS))
    args = parser.parse_args(argv)

    import keras

    from sglrp import heads
    from sglrp.engines.keras3.propagate import Propagation

    model = keras.applications.VGG16(
        weights=None, input_shape=(args.size, args.size, 3), classifier_activation=None
    )
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, args.size, args.size, 3))
    x = x.astype(np.float32)
    selection = np.eye(1000, dtype=np.float32)[np.arange(args.batch) * 7]
    options = {"low": -1.0, "high": 1.0} if args.rule == "bounded_deep_taylor" else {}
    start = time.perf_counter()
    analysis = Propagation(
        model,
        args.rule,
        [getattr(heads, h) for h in HEADS[args.heads]],
        jit_compile=args.jit,
        **options,
    )
    analysis([x], selection)
    build = time.perf_counter() - start
    model.predict_on_batch(x)
    runs = {"forward": ([], []), "analysis": ([], [])}

    def timed(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs[name][0].append(time.perf_counter() - wall)
        runs[name][1].append(time.process_time() - cpu)

    for _ in range(args.repeats):
        timed("forward", lambda: model.predict_on_batch(x))
        timed("analysis", lambda: analysis([x], selection))
    print(
        f"VGG16 {args.size}x{args.size} batch {args.batch}, {args.rule} x {args.heads}"
        f"{' (XLA)' if args.jit else ''}; build + first call {build:.1f} s; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for k, clock in enumerate(("wall", "cpu")):
        f = statistics.median(runs["forward"][k])
        m = statistics.median(runs["analysis"][k])
        print(f"  {clock}: forward {f:.3f} s, analysis {m:.3f} s, ratio {m / f:.2f}")
        for name, times in runs.items():
            print(f"    {name} runs:", " ".join(f"{t:.2f}" for t in times[k]))


if __name__ == "__main__":
    main()
