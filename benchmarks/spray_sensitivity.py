"""How much the planted-shortcut result of ``sglrp demo --spray`` depends on spray's settings.

Usage (after ``sglrp demo --spray --out results/demo``)::

    python -m benchmarks.spray_sensitivity results/demo/planted
    python -m benchmarks.spray_sensitivity results/demo/planted --json rows.json

For every method of the demo, on the shortcut model and the control, the maps of the marked
class are clustered again at every combination of the downsized size (8, 16, 32 pixels a side)
and the neighbours of the affinity graph (5, 10, 20); K from the eigengap as always. Prints
per method the range over the nine settings of K, the adjusted Rand index and the homogeneity
against the truth (marked or not), and in how many settings the method finds the shortcut by
the demo's own criterion (ARI >= 0.5 on the shortcut model, < 0.2 on the control).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SIZES = (8, 16, 32)
NEIGHBOURS = (5, 10, 20)


def sweep(planted: Path) -> dict:
    """``{method: {kind: [{size, n_neighbors, k, adjusted_rand_index, homogeneity}, ...]}}``."""
    from sglrp.spray.analysis import analyze_features
    from sglrp.spray.demo import METHODS
    from sglrp.spray.inputs import find_groups, load_features
    from sglrp.spray.train import KINDS

    truth = json.loads((planted / "truth.json").read_text())
    out: dict = {m: {} for m in METHODS}
    for kind in KINDS:
        folder = planted / kind
        for group in find_groups(folder, METHODS, None):
            rows = out[group.method].setdefault(kind, [])
            for size in SIZES:
                features, records, _, errors = load_features(folder, group, size, True,
                                                             lambda s: None)
                if errors:
                    raise SystemExit(f"{folder}: unreadable maps: {errors}")
                labels = [truth[Path(r["image"]).name] for r in records]
                for nn in NEIGHBOURS:
                    r = analyze_features(features, n_neighbors=nn, embedding="spectral",
                                         truth=labels)
                    rows.append({"size": size, "n_neighbors": nn, "k": r.k, **r.scores})
    return out


def table(results: dict) -> str:
    from sglrp.spray.demo import CONTROL_ARI, FOUND_ARI

    def span(rows, key, fmt="{:.2f}"):
        values = [row[key] for row in rows]
        lo, hi = fmt.format(min(values)), fmt.format(max(values))
        return lo if lo == hi else f"{lo}–{hi}"

    lines = ["| method | shortcut: K | ARI | homogeneity | control: K | ARI | finds the "
             "shortcut |", "|---|---|---|---|---|---|---|"]
    for method, kinds in results.items():
        s, c = kinds["shortcut"], kinds["control"]
        found = sum(a["adjusted_rand_index"] >= FOUND_ARI and b["adjusted_rand_index"] < CONTROL_ARI
                    for a, b in zip(s, c))
        lines.append(f"| `{method}` | {span(s, 'k', '{}')} | {span(s, 'adjusted_rand_index')} | "
                     f"{span(s, 'homogeneity')} | {span(c, 'k', '{}')} | "
                     f"{span(c, 'adjusted_rand_index')} | {found} of {len(s)} settings |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("planted", help="the planted/ folder of sglrp demo --spray")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    results = sweep(Path(args.planted))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    sys.stdout.write(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
