"""Run many methods on one model, one analyzer at a time, and score their class discrimination."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..metrics import localisation, summarize
from ..registry import create_analyzer

__all__ = ["COMPARISON", "run_methods", "discrimination", "format_table"]

#: Figure label -> registry name, in the order of the original notebook's figure (SG, IG last).
COMPARISON = {
    "Grad-CAM": "grad_cam",
    "Guided BP": "guided_backprop",
    "Guided Grad-CAM": "guided_grad_cam",
    "LRP": "lrp",
    "CLRP": "clrp",
    "SGLRP": "sglrp",
    "SGLRP-SeqA": "sglrp.sequential_preset_a",
    "SGLRP-SeqB": "sglrp.sequential_preset_b",
    "LRP-A": "lrp.sequential_preset_a_flat",
    "LRP-B": "lrp.sequential_preset_b_flat",
    "LRP-eps": "lrp.epsilon",
    "SmoothGrad": "smoothgrad",
    "IntGrad": "integrated_gradients",
}


def run_methods(
    model, x, targets, methods=COMPARISON, low=-1.0, high=1.0, batch_size=None, progress=None
) -> dict[str, np.ndarray]:
    """Maps of every method for ``x`` and per-sample ``targets``.

    Each analyzer is built once, used for the whole batch and closed before the next one is
    built, so memory does not grow with the number of methods.
    """
    maps = {}
    for label, name in methods.items():
        # every method takes the bounds; those without input bounds ignore them
        with create_analyzer(name, model, low=low, high=high) as analyzer:
            maps[label] = analyzer.analyze(x, target=targets, batch_size=batch_size)
        if progress is not None:
            progress(label)
    return maps


def discrimination(maps, target_boxes, distractor_boxes, seed=0) -> dict:
    """``{method: {metric: {"mean": .., "ci95": [lo, hi]}}}`` over the scenes."""
    out = {}
    for label, m in maps.items():
        per_scene = localisation.scores(m, target_boxes, distractor_boxes)
        out[label] = {k: summarize(v, seed=seed) for k, v in per_scene.items()}
    return out


def format_table(results: dict, n: int) -> str:
    """The discrimination results as a markdown table."""
    head = "| method | " + " | ".join(localisation.METRICS) + " |"
    lines = [
        f"Class discrimination on {n} explained objects (mean [95% CI])",
        "",
        head,
        "|---" * (len(localisation.METRICS) + 1) + "|",
    ]
    for label, metrics in results.items():
        cells = [
            "undefined" if m["mean"] is None
            else f"{m['mean']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
            for m in (metrics[k] for k in localisation.METRICS)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, results: dict) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")
