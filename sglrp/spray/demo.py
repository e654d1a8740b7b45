"""``sglrp demo --spray``: SpRAy on the planted-shortcut set, each method on both models.

The 264 test images of the marked class (:func:`sglrp.spray.planted.test_set`, half of them
marked) are written as PNG files, explained with ``sglrp explain`` (the demo architecture with
the shortcut's, then the control's shipped weights; target: the marked class; ``.npy`` maps),
and each folder is analysed with ``sglrp spray`` (K from the eigengap). The clusters are compared
with the truth (marked or not): adjusted Rand index and homogeneity per method and model, in
``planted.json``, ``planted.md``, the groups' ``scores`` in ``clusters.json``, and
``spray_planted.png``; ``truth.json`` says which image is marked.

A method **finds the shortcut** when its clusters agree with the mark on the shortcut model
(ARI >= :data:`FOUND_ARI`) and not on the control (ARI < :data:`CONTROL_ARI`): maps that show
the mark only because it is in the image agree on both. Both thresholds were fixed before the
first measurement.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .planted import MARKED_CLASS, test_set
from .train import KINDS, weights_path

__all__ = ["METHODS", "FOUND_ARI", "CONTROL_ARI", "write_images", "run_spray_demo", "main"]

METHODS = ("sglrp", "clrp", "lrp", "grad_cam", "guided_backprop")
FOUND_ARI = 0.5
CONTROL_ARI = 0.2


def write_images(folder: Path) -> dict:
    """Write the marked class's test images as 8-bit grey PNGs; returns name -> marked."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    data = test_set()
    truth = {}
    for i, (image, marked) in enumerate(zip(data.images, data.marked)):
        name = f"test_{i:03d}.png"
        pixels = np.round(np.clip(image[:, :, 0], 0, 1) * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / name)
        truth[name] = bool(marked)
    return truth


def _model_numbers(kind: str) -> dict:
    path = weights_path(kind).with_name(f"{kind}.json")
    keep = ("marked_class_marked", "marked_class_mark_removed", "marked_class_unmarked",
            "others_unmarked", "others_to_marked_class_with_mark")
    info = json.loads(path.read_text())
    return {k: info[k] for k in keep if k in info}


def _table(results: dict) -> str:
    lines = ["| method | shortcut: K | ARI | homogeneity | control: K | ARI | homogeneity "
             "| finds the shortcut |", "|---|---|---|---|---|---|---|---|"]
    for method, row in results.items():
        s, c = row["shortcut"], row["control"]
        lines.append(f"| `{method}` | {s['k']} | {s['adjusted_rand_index']:.3f} | "
                     f"{s['homogeneity']:.3f} | {c['k']} | {c['adjusted_rand_index']:.3f} | "
                     f"{c['homogeneity']:.3f} | {'yes' if row['finds_shortcut'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _figure(out: Path, documents: dict, truth: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(METHODS), figsize=(2.6 * len(METHODS), 5.4))
    cmap = plt.get_cmap("tab10")
    for row, kind in enumerate(KINDS):
        groups = {g["method"]: g for g in documents[kind]["groups"]}
        for col, method in enumerate(METHODS):
            ax = axes[row, col]
            g = groups[method]
            xy = np.array([item["xy"] for item in g["images"]])
            cluster = np.array([item["cluster"] for item in g["images"]])
            marked = np.array([truth[Path(item["image"]).name] for item in g["images"]])
            for flag, marker in ((False, "o"), (True, "x")):
                sel = marked == flag
                ax.scatter(xy[sel, 0], xy[sel, 1], s=9, marker=marker,
                           c=[cmap(k % 10) for k in cluster[sel]], lw=0.8 if flag else 0)
            s = g["scores"]
            ax.set_title(f"{method} ({kind})\nK={g['k']}  ARI {s['adjusted_rand_index']:.2f}  "
                         f"hom. {s['homogeneity']:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"SpRAy of class {MARKED_CLASS} (colour: cluster; x: marked image, o: "
                 "unmarked)", fontsize=9)
    fig.tight_layout()
    path = out / "spray_planted.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_spray_demo(out, seed: int = 0, log=print) -> dict:
    """Write, explain and analyse the planted set into ``out``; returns the summary."""
    from ..cli import main as sglrp_main
    from .run import spray_folder

    out = Path(out)
    start = time.perf_counter()
    images = out / "images"
    truth = write_images(images)
    (out / "truth.json").write_text(json.dumps(truth, indent=0) + "\n")
    log(f"planted set: {len(truth)} test images of class {MARKED_CLASS}, "
        f"{sum(truth.values())} marked, in {images}")
    documents = {}
    for kind in KINDS:
        folder = out / kind
        log(f"{kind} model: explain ({', '.join(METHODS)}) ...")
        code = sglrp_main(["explain", str(images), "--model", "demo", "--weights",
                           str(weights_path(kind)), "--method", ",".join(METHODS),
                           "--target", str(MARKED_CLASS), "--format", "npy", "--out",
                           str(folder), "--batch-size", "64", "--quiet"])
        if code != 0:
            raise RuntimeError(f"sglrp explain failed on the {kind} model (exit code {code})")
        log(f"{kind} model: spray ...")
        documents[kind] = spray_folder(folder, truth=lambda r: truth[Path(r["image"]).name],
                                       seed=seed, quiet=True)
    results = {}
    for method in METHODS:
        row = {}
        for kind in KINDS:
            g = next(g for g in documents[kind]["groups"] if g["method"] == method)
            row[kind] = {"k": g["k"], **g["scores"]}
        row["finds_shortcut"] = bool(row["shortcut"]["adjusted_rand_index"] >= FOUND_ARI
                                     and row["control"]["adjusted_rand_index"] < CONTROL_ARI)
        results[method] = row
    summary = {"marked_class": MARKED_CLASS, "n_images": len(truth),
               "n_marked": int(sum(truth.values())), "found_ari": FOUND_ARI,
               "control_ari": CONTROL_ARI,
               "models": {kind: _model_numbers(kind) for kind in KINDS},
               "methods": results, "seconds": round(time.perf_counter() - start, 1)}
    (out / "planted.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "planted.md").write_text(_table(results))
    _figure(out, documents, truth)
    return summary


def main(args) -> int:
    """``sglrp demo --spray`` (``args.out``, ``args.seed``)."""
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out) / "planted"
    summary = run_spray_demo(out, seed=args.seed, log=log)
    for kind, numbers in summary["models"].items():
        log(f"{kind} model: accuracy on marked class-{MARKED_CLASS} test images "
            f"{numbers['marked_class_marked']:.3f}, with the mark removed "
            f"{numbers['marked_class_mark_removed']:.3f}")
    print(_table(summary["methods"]), end="")
    log(f"wrote {out}/planted.json, planted.md, truth.json, spray_planted.png and "
        f"{out}/{{shortcut,control}}/spray/report.html ({summary['seconds']:.0f} s)")
    return 0
