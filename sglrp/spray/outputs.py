"""Outputs of ``spray`` in ``OUT/spray/``: ``clusters.json``, figures, ``report.html``.

Per group (method x class, :class:`~sglrp.spray.inputs.Group`) a folder ``<name>/`` with

* ``eigengap.png``: the smallest eigenvalues of the Laplacian, K marked;
* ``embedding.png``: the 2-D embedding, coloured by cluster;
* ``clusters.png``: per cluster its mean (downsized) map and the maps nearest that mean, each
  beside its image where the image file can still be read.

``clusters.json`` holds, per group, the eigenvalues, K, and every image's cluster and 2-D
coordinates; ``report.html`` shows everything in one file (figures inline as base64 PNG, no
network). Files are written atomically (:func:`sglrp.explain.outputs.atomic_write`).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from ..explain.outputs import atomic_write

__all__ = ["SPRAY_DIR", "group_entry", "write_figures", "write_json", "write_report"]

SPRAY_DIR = "spray"


def _round(values, digits: int = 6) -> list:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


def group_entry(group, result, records: list, errors: list, extra: dict | None = None) -> dict:
    """The ``clusters.json`` entry of one analysed group."""
    sig = group.signature
    entry = {
        "name": group.name,
        "method": group.method,
        "target_id": group.target_id,
        "target_name": group.target_name,
        "model": sig.get("model"),
        "weights": sig.get("weights"),
        "engine": sig.get("engine"),
        "options": sig.get("options"),
        "signature": sig,
        "n_maps": len(records),
        "n_errors": len(errors),
        "k": result.k,
        "k_from": result.k_from,
        "eigenvalues": _round(result.eigenvalues),
        "embedding": result.embedding_method,
        "clusters": [{"cluster": c["cluster"], "size": c["size"],
                      "examples": [records[i].get("image") for i in c["examples"]]}
                     for c in result.clusters],
        "images": [{"image": r.get("image"), "npy": r["outputs"]["npy"],
                    "cluster": int(label), "xy": _round(xy, 4)}
                   for r, label, xy in zip(records, result.labels, result.embedding)],
        "errors": errors,
    }
    if result.scores is not None:
        entry["scores"] = result.scores
    if extra:
        entry.update(extra)
    return entry


def write_json(path, document: dict) -> None:
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf8")))


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _image(path, shape):
    """The image file as grey float (H, W) at ``shape``, or ``None`` if it cannot be read."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("L").resize((shape[1], shape[0]), Image.BILINEAR)
            return np.asarray(im, np.float32) / 255.0
    except Exception:  # a moved or unreadable image: the figure shows the map alone
        return None


def write_figures(folder: Path, group, result, records: list, load) -> dict:
    """Write the group's three figures into ``folder``; returns ``{kind: file name}``.

    ``load(record)`` returns a record's full map (for the examples).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import overlay_rgb, to_rgb

    folder.mkdir(parents=True, exist_ok=True)
    title = f"{group.method}, class {group.target_name or group.target_id}"
    values = np.asarray(result.eigenvalues)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ks = np.arange(1, values.size + 1)
    ax.plot(ks, values, "o-", color="k", ms=4)
    ax.axvspan(result.k + 0.1, result.k + 0.9, color="tab:red", alpha=0.2,
               label=f"K = {result.k} ({result.k_from})")
    ax.set_xlabel("k")
    ax.set_ylabel("eigenvalue $\\lambda_k$")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, folder / "eigengap.png")

    fig, ax = plt.subplots(figsize=(4.5, 4))
    cmap = plt.get_cmap("tab10")
    size = max(2.0, 30.0 / np.sqrt(max(1, len(records)) / 100))
    for c in result.clusters:
        xy = result.embedding[c["members"]]
        ax.scatter(xy[:, 0], xy[:, 1], s=size, color=cmap(c["cluster"] % 10), lw=0,
                   label=f"cluster {c['cluster']} ({c['size']})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}: {result.embedding_method}", fontsize=9)
    ax.legend(fontsize=7, markerscale=2, loc="best")
    _save(fig, folder / "embedding.png")

    n_cols = 1 + 2 * max(len(c["examples"]) for c in result.clusters)
    fig, axes = plt.subplots(result.k, n_cols, figsize=(1.3 * n_cols, 1.4 * result.k),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c in result.clusters:
        row = axes[c["cluster"]]
        row[0].imshow(to_rgb(c["mean"]))
        row[0].set_title(f"cluster {c['cluster']}\nmean of {c['size']}", fontsize=7)
        for j, i in enumerate(c["examples"]):
            record = records[i]
            try:
                m = np.asarray(load(record), np.float32)
            except (OSError, ValueError):
                continue
            image = _image(record.get("image", ""), m.shape[:2])
            if image is not None:
                row[1 + 2 * j].imshow(image, cmap="gray", vmin=0, vmax=1)
                row[2 + 2 * j].imshow(overlay_rgb(image, m))
            else:
                row[2 + 2 * j].imshow(to_rgb(m))
            name = Path(str(record.get("image", ""))).name
            row[1 + 2 * j].set_title(name[:14], fontsize=6)
    fig.suptitle(title, fontsize=9)
    _save(fig, folder / "clusters.png")
    return {"eigengap": "eigengap.png", "embedding": "embedding.png", "clusters": "clusters.png"}


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}
img{max-width:100%;vertical-align:top}section{border-top:2px solid #444;margin-top:2em}
details{margin:.3em 0}code{background:#eee}"""


def write_report(spray_dir: Path, document: dict) -> None:
    """``report.html``: one self-contained page of every group, its clusters and figures."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>sglrp spray</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>Spectral relevance analysis</h1><p>Source: <code>{e(document['source'])}"
             f"</code>; {len(document['groups'])} groups (method &times; class).</p>"]
    parts.append("<table><tr><th>group</th><th>maps</th><th>K</th><th>clusters (sizes)</th>"
                 "<th>agreement with the truth</th></tr>")
    for g in document["groups"]:
        sizes = ", ".join(str(c["size"]) for c in g["clusters"])
        s = g.get("scores")
        agree = (f"ARI {s['adjusted_rand_index']:.3f}, homogeneity {s['homogeneity']:.3f}"
                 if s else "")
        parts.append(f"<tr><td><a href='#{e(g['name'])}'>{e(g['name'])}</a></td>"
                     f"<td>{g['n_maps']}</td><td>{g['k']} ({g['k_from']})</td><td>{sizes}</td>"
                     f"<td>{agree}</td></tr>")
    parts.append("</table>")
    for g in document["groups"]:
        folder = spray_dir / g["name"]
        parts.append(f"<section id='{e(g['name'])}'><h2>{e(g['name'])}</h2><p>method "
                     f"<code>{e(g['method'])}</code>, class {e(str(g['target_name'] or ''))} "
                     f"(id {g['target_id']}), model <code>{e(str(g['model']))}</code>, weights "
                     f"<code>{e(str(g['weights']))}</code>, options "
                     f"<code>{e(json.dumps(g['options']))}</code>; {g['n_maps']} maps, "
                     f"K = {g['k']} ({g['k_from']}).</p>")
        for kind in ("eigengap", "embedding", "clusters"):
            path = folder / f"{kind}.png"
            if path.is_file():
                parts.append(_img_tag(path, f"{g['name']} {kind}"))
        by_cluster: dict[int, list] = {}
        for item in g["images"]:
            by_cluster.setdefault(item["cluster"], []).append(item["image"])
        for c in g["clusters"]:
            names = by_cluster.get(c["cluster"], [])
            shown = "".join(f"<li>{e(str(n))}</li>" for n in names[:200])
            more = f"<li>... and {len(names) - 200} more</li>" if len(names) > 200 else ""
            parts.append(f"<details><summary>cluster {c['cluster']}: {c['size']} images"
                         f"</summary><ul>{shown}{more}</ul></details>")
        if g["errors"]:
            parts.append(f"<p>{len(g['errors'])} maps could not be read:</p><ul>"
                         + "".join(f"<li>{e(str(x['npy']))}: {e(x['error'])}</li>"
                                   for x in g["errors"][:100]) + "</ul>")
        parts.append("</section>")
    parts.append("</body></html>\n")
    text = "\n".join(parts)
    atomic_write(spray_dir / "report.html", lambda f: f.write(text.encode("utf8")))
