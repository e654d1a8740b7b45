"""The outputs of ``sglrp evaluate``: ``evaluation.json`` and ``evaluation.md``, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..metrics import METRICS

__all__ = ["write_json", "markdown", "model_table", "write_text", "LABELS", "COLUMNS"]

#: Short column titles of the metrics.
LABELS = {
    "relevance_mass": "mass",
    "contrast": "contrast",
    "pointing_game": "pointing",
    "deletion_auc": "deletion ↓",
    "insertion_auc": "insertion ↑",
    "randomization_similarity": "random model ↓",
    "random_logit_similarity": "random class ↓",
    "randomization_similarity_signed": "random model, signed",
    "random_logit_similarity_signed": "random class, signed",
}
#: The columns of the markdown tables: the metrics, then the signed sanity correlations.
COLUMNS = (*METRICS, "randomization_similarity_signed", "random_logit_similarity_signed")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder (atomic)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, results: dict) -> None:
    write_text(path, json.dumps(results, indent=2) + "\n")


def _cell(entry: dict, metric: str, intervals: bool) -> str:
    mean = entry[metric]
    if mean is None:
        return "null"
    text = f"{mean:.3f}"
    if intervals:
        lo, hi = entry[f"{metric}_ci95"]
        text += f" [{lo:.2f}, {hi:.2f}]"
    if entry.get(f"{metric}_n_undefined"):
        text += f" ({entry[f'{metric}_n_undefined']} null)"
    return text


def model_table(model: dict, intervals: bool = True, metrics=COLUMNS) -> str:
    """One model's methods × metrics as a markdown table."""
    lines = [
        "| method | " + " | ".join(LABELS[m] for m in metrics) + " |",
        "|---" * (len(metrics) + 1) + "|",
    ]
    for entry in model["methods"]:
        cells = [_cell(entry, m, intervals) for m in metrics]
        lines.append(f"| `{entry['method']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """Every model's table with intervals, and what was skipped."""
    s = results["settings"]
    out = [
        "# sglrp evaluate",
        "",
        f"{s['scenes']} held-out scenes per model (seed {s['seed']}), both digits explained; "
        f"mean [bootstrap 95% CI] over the maps, `null`: undefined (constant map or no "
        f"positive relevance), with the count of such maps. Deletion / insertion: {s['steps']} "
        "steps, baseline 0. ↓: lower is better.",
        "",
        "Columns: relevance mass, contrast and pointing game on the explained digit's box; "
        "deletion and insertion AUC of the target's probability; Spearman correlation of |map| "
        "with the map after re-initialising the logits layer (random model) and with the map "
        "of a random other class (random class); the same without the absolute value (signed).",
    ]
    for model in results["models"]:
        out += [
            "",
            f"## {model['name']} (scene top-2 accuracy {model['top2_accuracy']:.3f}, "
            f"{model['n_maps']} maps)",
            "",
            model_table(model),
        ]
        random = model.get("random_maps")
        if random:
            out.append(
                f"\nRandom maps (a random pixel order): deletion AUC "
                f"{random['deletion_auc']:.3f}, insertion AUC {random['insertion_auc']:.3f}."
            )
        for method, reason in model["skipped"].items():
            out.append(f"\n`{method}` does not run on this model: {reason}")
    out += ["", f"Total time: {results['seconds']:.0f} s.", ""]
    return "\n".join(out)
