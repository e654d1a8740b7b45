"""``spray`` over an ``explain`` folder: groups -> streamed features -> analysis -> outputs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .analysis import MAX_CLUSTERS, N_NEIGHBORS, SIZE, analyze_features
from .inputs import SprayError, find_groups, load_features, load_map
from .outputs import SPRAY_DIR, group_entry, write_figures, write_json, write_report

__all__ = ["spray_folder"]


def spray_folder(folder, *, methods: Sequence[str] | None = None,
                 targets: Sequence[int] | None = None, clusters: int | None = None,
                 max_clusters: int = MAX_CLUSTERS, n_neighbors: int = N_NEIGHBORS,
                 size: int = SIZE, embedding: str = "auto", seed: int = 0,
                 truth: Callable[[dict], object] | None = None, quiet: bool = True,
                 say: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict:
    """Analyse every group of maps of an ``explain`` folder and write ``folder/spray/``.

    Parameters
    ----------
    folder : path
        The ``sglrp explain --out`` folder.
    methods, targets : sequence, optional
        Keep only these methods and explained classes.
    clusters, max_clusters, n_neighbors, size, embedding, seed
        As :func:`sglrp.spray.analyze`.
    truth : callable, optional
        ``truth(record)`` gives a map's known group; each group's entry then has ``scores``.
    quiet : bool
        No progress bar.
    say : callable
        Prints a message line (a map that cannot be read, a group too small).

    Returns
    -------
    dict
        The document written to ``clusters.json``.

    Raises
    ------
    SprayError
        No manifest, no ``.npy`` maps, nothing selected (before anything is written).
    """
    folder = Path(folder)
    groups = find_groups(folder, methods, targets)
    out = folder / SPRAY_DIR
    out.mkdir(exist_ok=True)
    document = {"source": str(folder), "settings": {
        "clusters": clusters, "max_clusters": max_clusters, "n_neighbors": n_neighbors,
        "size": size, "embedding": embedding, "seed": seed}, "groups": [], "skipped": []}
    for group in groups:
        features, records, shape, errors = load_features(folder, group, size, quiet, say)
        if len(records) < 2 or (clusters is not None and clusters > len(records)):
            reason = (f"{len(records)} readable maps; spectral clustering needs at least "
                      f"{max(2, clusters or 2)}")
            say(f"spray: {group.name}: skipped, {reason}")
            document["skipped"].append({"name": group.name, "reason": reason, "errors": errors})
            continue
        labels = None if truth is None else [truth(r) for r in records]
        result = analyze_features(features, clusters=clusters, max_clusters=max_clusters,
                                  n_neighbors=n_neighbors, embedding=embedding, seed=seed,
                                  truth=labels, shape=shape)
        figures = write_figures(out / group.name, group, result, records,
                                lambda r: load_map(folder, r))
        entry = group_entry(group, result, records, errors,
                            {"figures": {k: f"{group.name}/{v}" for k, v in figures.items()}})
        document["groups"].append(entry)
    if not document["groups"]:
        raise SprayError(f"{folder}: no group of maps could be analysed: "
                         + "; ".join(f"{s['name']}: {s['reason']}" for s in document["skipped"]))
    write_json(out / "clusters.json", document)
    write_report(out, document)
    return document
