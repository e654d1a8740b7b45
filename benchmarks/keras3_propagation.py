"""Time of the Keras 3 engine's compiled analysis against the model's own forward pass.

Usage (Keras 3 environment, repository root)::

    python -m benchmarks.keras3_propagation [--models vgg16,efficientnetb0,convnexttiny]
                                            [--batch 8] [--repeats 7] [--jit] [--rule ...]

Per model (``keras.applications``, ``weights=None``, 224x224, logits), one batch:
``model.predict_on_batch`` and one :class:`~sglrp.engines.keras3.propagate.Propagation` call
(by default SGLRP: bounded Deep Taylor with the two softmax-gradient heads, on the canonized
model, as ``sglrp.SGLRP`` runs it), timed alternately in this process after one warm-up each.
Prints the median of each and the ratio of the medians, in wall-clock time and in this
process's CPU time (steadier than wall-clock time on a machine shared with other work), and
the FLOP floor of the rules the analysis uses (:func:`flop_floor`). Several models in one call
are measured one after the other in this one process, so their ratios share the machine's
state.

The inputs are uniform in the model's input range: [-1, 1] for VGG16 (no preprocessing inside),
[0, 255] for EfficientNetB0 and ConvNeXtTiny (their ``Rescaling`` / ``Normalization`` inside).
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
#: name -> (keras.applications constructor, low, high of its raw input)
MODELS = {
    "vgg16": ("VGG16", -1.0, 1.0),
    "efficientnetb0": ("EfficientNetB0", 0.0, 255.0),
    "convnexttiny": ("ConvNeXtTiny", 0.0, 255.0),
}

#: Multiply-accumulates per output element of a kernel layer, in units of its forward pass, that
#: each kernel rule spends (beyond the forward pass every analysis makes once), with ``h`` heads
#: stacked in one backward pass: the rule's own forward products once, one transpose per head
#: and kernel it needs.
def _rule_units(rule, heads: int) -> float:
    name = type(rule).__name__
    if name == "ZPlusFast":  # z+ = x w+, then (w+)^T s per head
        return 1 + heads
    if name == "AlphaBeta":
        # alpha1-beta0: z+ = x+ w+ (+ x- w-), then one transpose per product and head
        products = 1 if rule.non_negative else 2
        return (products + products * heads) * (2 if rule.beta else 1)
    if name == "Bounded":  # x w, low w+, high w- (the latter two on one image), 3 transposes
        return 1 + 3 * heads
    if name in ("Epsilon", "ZRule", "Flat", "WSquare", "WPlus"):
        return 1 + heads
    return 0.0  # NoRelevance (gate-only calls) and the rules of element-wise layers


def layer_macs(call) -> int:
    """Multiply-accumulates of one kernel layer's forward pass for one sample (0 otherwise)."""
    import keras

    layer = call.layer
    out = int(np.prod(call.outputs[0].shape[1:]))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return out * int(np.prod(layer.kernel_size))
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Dense)):
        return out * int(np.prod(layer.kernel.shape[:-1]))
    return 0


def flop_floor(analysis) -> dict:
    """The FLOP floor of an analysis, in units of the model's forward pass.

    Only the kernel layers' multiply-accumulates count (the element-wise work of activations,
    normalisations and the rules' divisions is left out): the forward pass the analysis makes
    once (1 per layer) plus what each layer's rule needs (:func:`_rule_units`).

    Returns
    -------
    dict
        ``forward_macs`` (per sample), ``analysis_macs`` and ``floor`` (their ratio), and
        ``rules``: per rule class, the share of the forward multiply-accumulates it covers.
    """
    heads = len(analysis.heads)
    forward = analysis_macs = 0.0
    shares: dict[str, float] = {}
    for call in analysis.graph.calls:
        macs = layer_macs(call)
        if not macs:
            continue
        rule = analysis.rules[call.key]
        name = type(rule).__name__
        if name == "AlphaBeta" and not rule.non_negative:
            name = "AlphaBeta (signed inputs)"
        forward += macs
        analysis_macs += macs * (1 + _rule_units(rule, heads))
        shares[name] = shares.get(name, 0.0) + macs
    return {
        "forward_macs": forward,
        "analysis_macs": analysis_macs,
        "floor": analysis_macs / forward,
        "rules": {k: v / forward for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
    }


def measure(name: str, args) -> dict:
    """Forward and analysis times of one model; prints them with the FLOP floor."""
    import keras

    from sglrp import heads
    from sglrp.canonize import canonize
    from sglrp.engines.keras3.propagate import Propagation

    constructor, low, high = MODELS[name]
    model = getattr(keras.applications, constructor)(
        weights=None, input_shape=(args.size, args.size, 3), classifier_activation=None
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(low, high, (args.batch, args.size, args.size, 3)).astype(np.float32)
    selection = np.eye(1000, dtype=np.float32)[np.arange(args.batch) * 7]
    options = {"low": low, "high": high} if args.rule == "bounded_deep_taylor" else {}
    start = time.perf_counter()
    analysis = Propagation(
        canonize(model),
        args.rule,
        [getattr(heads, h) for h in HEADS[args.heads]],
        jit_compile=args.jit,
        **options,
    )
    analysis([x], selection)
    build = time.perf_counter() - start
    model.predict_on_batch(x)
    runs = {"forward": ([], []), "analysis": ([], [])}

    def timed(key, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs[key][0].append(time.perf_counter() - wall)
        runs[key][1].append(time.process_time() - cpu)

    for _ in range(args.repeats):
        timed("forward", lambda: model.predict_on_batch(x))
        timed("analysis", lambda: analysis([x], selection))
    floor = flop_floor(analysis)
    print(
        f"{constructor} {args.size}x{args.size} batch {args.batch}, {args.rule} x {args.heads}"
        f"{' (XLA)' if args.jit else ''}; build + first call {build:.1f} s; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  FLOP floor {floor['floor']:.2f} x forward ({floor['forward_macs'] / 1e6:.0f} M "
        "multiply-accumulates per image in kernel layers; share of them per rule: "
        + ", ".join(f"{k} {v:.3f}" for k, v in floor["rules"].items())
        + ")"
    )
    out = {"model": constructor, "floor": floor["floor"], "rules": floor["rules"],
           "forward_macs": floor["forward_macs"]}
    for k, clock in enumerate(("wall", "cpu")):
        f = statistics.median(runs["forward"][k])
        m = statistics.median(runs["analysis"][k])
        print(
            f"  {clock}: forward {f:.3f} s, analysis {m:.3f} s, ratio {m / f:.2f} "
            f"({m / f / floor['floor']:.2f} x the floor)"
        )
        for key, times in runs.items():
            print(f"    {key} runs:", " ".join(f"{t:.2f}" for t in times[k]))
        out[clock] = {"forward": f, "analysis": m, "ratio": m / f}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg16",
                        help=f"comma-separated, from {', '.join(MODELS)} (default: vgg16)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--jit", action="store_true", help="compile the analysis with XLA")
    parser.add_argument("--rule", default="bounded_deep_taylor")
    parser.add_argument("--heads", default="sglrp", choices=sorted(HEADS))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        parser.error(f"unknown models {unknown or args.models!r}; valid: {', '.join(MODELS)}")
    for name in names:
        measure(name, args)


if __name__ == "__main__":
    main()
