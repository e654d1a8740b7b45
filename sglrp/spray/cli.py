"""``sglrp spray OUT``: the command-line parser on top of :func:`sglrp.spray.run.spray_folder`.

Exit codes: 0 when every map was analysed, 1 when some maps could not be read (they are named
on stderr and in ``clusters.json``; the others are analysed), 2 for a bad command line or a
folder that cannot be analysed (no manifest, no ``.npy`` maps, nothing selected).
"""

from __future__ import annotations

import argparse
import sys

from ..arguments import positive_int

__all__ = ["add_parser", "main"]


def _ids(text: str) -> list[int]:
    try:
        ids = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        ids = []
    if not ids or min(ids) < 0:
        raise argparse.ArgumentTypeError(f"must be class ids >= 0, comma-separated, got {text!r}")
    return ids


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name methods, comma-separated, got {text!r}")
    return names


def add_parser(sub) -> None:
    from .analysis import MAX_CLUSTERS, N_NEIGHBORS, SIZE

    p = sub.add_parser(
        "spray", help="spectral relevance analysis of an explain output folder",
        description="Cluster the relevance maps of an `sglrp explain` output folder per model, "
        "method and class (spectral clustering of a nearest-neighbour graph, K from the "
        "eigengap) to find the strategies a model uses (Lapuschkin et al. 2019). Writes "
        "OUT/spray/clusters.json, figures and report.html.")
    p.add_argument("out", metavar="OUT", help="the folder `sglrp explain --out` wrote")
    p.add_argument("--method", type=_names, default=None,
                   help="methods to analyse, comma-separated (default: all in the folder)")
    p.add_argument("--target", type=_ids, default=None,
                   help="explained classes (ids) to analyse (default: all in the folder)")
    p.add_argument("--clusters", type=positive_int, default=None, metavar="K",
                   help="number of clusters (default: chosen by the eigengap)")
    p.add_argument("--max-clusters", type=positive_int, default=MAX_CLUSTERS,
                   help=f"largest K the eigengap may choose (default {MAX_CLUSTERS})")
    p.add_argument("--neighbors", type=positive_int, default=N_NEIGHBORS,
                   help=f"neighbours per map in the affinity graph (default {N_NEIGHBORS})")
    p.add_argument("--size", type=positive_int, default=SIZE,
                   help=f"longest side of the downsized maps (default {SIZE})")
    p.add_argument("--embedding", choices=["auto", "umap", "tsne", "spectral"], default="auto",
                   help="2-D embedding of the picture (default auto: UMAP if installed, else "
                   "t-SNE; spectral above 10,000 maps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar (shown on a terminal)")
    p.set_defaults(run=main)


def main(args) -> int:
    from .inputs import SprayError
    from .run import spray_folder

    try:
        document = spray_folder(
            args.out, methods=args.method, targets=args.target, clusters=args.clusters,
            max_clusters=args.max_clusters, n_neighbors=args.neighbors, size=args.size,
            embedding=args.embedding, seed=args.seed, quiet=args.quiet)
    except SprayError as err:
        print(f"sglrp spray: error: {err}", file=sys.stderr)
        return 2
    n_errors = sum(g["n_errors"] for g in document["groups"]) + sum(
        len(s["errors"]) for s in document["skipped"])
    for g in document["groups"]:
        sizes = ", ".join(str(c["size"]) for c in g["clusters"])
        print(f"{g['name']}: {g['n_maps']} maps, K = {g['k']} ({g['k_from']}): {sizes}")
    print(f"wrote {args.out}/spray/clusters.json and report.html"
          + (f"; {n_errors} maps could not be read" if n_errors else ""), file=sys.stderr)
    return 1 if n_errors else 0
