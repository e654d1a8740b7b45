"""The figures of ``sglrp evaluate``, from the results dict (matplotlib imported here only).

* :func:`metrics_figure`: per model (stacked), methods × metrics, the value written in each
  cell and the cell coloured by its rank in the column (dark: best of the column, whatever the
  direction); the methods that refused the model as blank rows marked ``refused``, the
  random-map baseline as the last row;
* :func:`cascade_figure`: per model, the randomisation cascade (Adebayo et al. 2018): the rank
  correlation of |map| with the trained model's map as layers are re-initialised from the top.
"""

from __future__ import annotations

import numpy as np

from ..metrics import METRICS
from .report import LABELS

__all__ = ["metrics_figure", "cascade_figure", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = {"deletion_auc", "randomization_similarity", "random_logit_similarity"}


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _goodness(values: np.ndarray, metric: str) -> np.ndarray:
    """Per column, 0 (worst) .. 1 (best) by rank; NaN stays NaN."""
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return np.where(finite, 1.0, np.nan)
    v = values[finite] * (-1 if metric in LOWER_IS_BETTER else 1)
    ranks = np.argsort(np.argsort(v, kind="stable"), kind="stable")
    out[finite] = ranks / (finite.sum() - 1)
    return out


def metrics_figure(results: dict, metrics=METRICS):
    """A figure with one panel per model, stacked: methods (rows) × metrics (columns)."""
    plt = _pyplot()
    models = results["models"]
    rows = [_rows(m) for m in models]
    n_rows = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(models), 1, figsize=(0.95 * len(metrics) + 2.4, (0.24 * n_rows + 1.0) * len(models)),
        squeeze=False,
    )
    for ax, model, entries in zip(axes[:, 0], models, rows):
        names = [name for name, _ in entries]
        refused = [e is None for _, e in entries]
        values = np.array(
            [[np.nan if e is None or e[m] is None else e[m] for m in metrics]
             for _, e in entries]
        ).reshape(len(entries), len(metrics))
        colour = np.column_stack([_goodness(values[:, j], m) for j, m in enumerate(metrics)])
        ax.imshow(np.ma.masked_invalid(colour), cmap="Greens", vmin=-0.3, vmax=1.2,
                  aspect="auto")
        for i in range(len(names)):
            for j in range(len(metrics)):
                text = "null" if not np.isfinite(values[i, j]) else f"{values[i, j]:.2f}"
                text = "refused" if refused[i] else text
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if np.nan_to_num(colour[i, j]) > 0.75 else "black")
        ax.set_xticks(range(len(metrics)))
        ax.set_xticklabels([LABELS[m] for m in metrics], fontsize=8)
        ax.xaxis.tick_top()
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=8)
        ax.set_ylabel(f"{model['name']}\n(top-2 {model['top2_accuracy']:.2f})", fontsize=9)
        ax.tick_params(length=0)
    fig.tight_layout()
    return fig


def _rows(model: dict) -> list[tuple[str, dict | None]]:
    """(label, entry) per row: the methods that ran, those refused (entry None), chance."""
    rows = [(e["method"], e) for e in model["methods"]]
    rows += [(method, None) for method in model.get("refused", {})]
    if model.get("random") is not None:
        rows.append(("random (chance)", model["random"]))
    return rows


def cascade_figure(results: dict):
    """A figure with one panel per model: similarity to the trained map per cascade stage."""
    plt = _pyplot()
    models = results["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False,
                             sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, model in zip(axes[0], models):
        layers = model["cascade_layers"]
        x = np.arange(len(layers))
        for i, entry in enumerate(model["methods"]):
            y = [np.nan if v is None else v for v in entry["randomization_cascade"]]
            style = "-" if "lrp" in entry["method"] else "--"
            ax.plot(x, y, style, marker=".", color=cmap(i % 20), label=entry["method"], lw=1.2)
        ax.set_xticks(x)
        ax.set_xticklabels(layers, rotation=45, ha="right", fontsize=7)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_title(model["name"], fontsize=9)
        ax.set_xlabel("re-initialised down to", fontsize=8)
    axes[0][0].set_ylabel("Spearman |map| vs trained", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    return fig
