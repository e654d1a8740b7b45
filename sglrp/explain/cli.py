"""``sglrp explain`` on the command line: the parser, the checks, the summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UsageError
from .inputs import expand_inputs
from .loop import Run
from .manifest import MANIFEST
from .model import AUTO, load_model_info, parse_targets, split_commas
from .outputs import FORMATS, output_names

__all__ = ["parse_methods", "parse_formats", "run", "add_parser"]


def parse_methods(text: str) -> list[str]:
    """Comma-separated method names, checked against the registry (duplicates dropped)."""
    from ..registry import available_methods

    names = list(dict.fromkeys(split_commas(text)))
    valid = available_methods()
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise UsageError(
            f"unknown method {', '.join(map(repr, bad)) or repr(text)}; valid methods: "
            f"{', '.join(valid)}"
        )
    return names


def parse_formats(text: str) -> list[str]:
    """Comma-separated output formats out of ``npy``, ``png``."""
    names = list(dict.fromkeys(split_commas(text)))
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise UsageError(f"unknown format {', '.join(map(repr, bad)) or repr(text)}; valid "
                         f"formats: {', '.join(FORMATS)}")
    return names



def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"



def run(args) -> int:
    """Run ``sglrp explain`` with parsed arguments; returns the exit code (0, 1 or 2)."""
    from ..models import WeightsUnavailableError

    def usage(message) -> int:
        print(f"sglrp explain: error: {message}", file=sys.stderr)
        return 2

    try:
        if args.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
        if args.top_k < 1:
            raise UsageError(f"--top-k must be >= 1, got {args.top_k}")
        methods = parse_methods(args.method)
        formats = parse_formats(args.format)
        paths = expand_inputs(args.images)
        if not paths:
            raise UsageError(f"no images found in {' '.join(args.images)}")
        info = load_model_info(args.model, args.weights, args.low, args.high)
        targets = parse_targets(args.target, info)
        if not info.low < info.high:
            raise UsageError(f"--low must be below --high, got {info.low} and {info.high}")
    except (UsageError, WeightsUnavailableError) as err:
        return usage(err)

    from tqdm import tqdm

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        state = Run(args, info, paths, output_names(paths), targets, formats)
    except OSError as err:
        return usage(f"cannot write to --out {str(out)!r}: {err}")
    if not args.quiet:
        state.say(f"explain: {_count(len(paths), 'image')} x {_count(len(methods), 'method')} "
                  f"({', '.join(methods)}) x {_count(len(targets), 'target')}, model "
                  f"{info.name} -> {out}")
    complete = False
    try:
        with tqdm(total=len(paths) * len(methods), disable=True if args.quiet else None,
                  file=sys.stderr, unit="img", dynamic_ncols=True) as state.bar:
            for method in methods:
                state.method(method)
        complete = True
    finally:
        state.bar = None
        state.close(complete)
    peak = _peak_rss_mb()
    counts = state.counts
    print(f"done: {counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} failed"
          f"{'' if peak is None else f', peak RSS {peak:.0f} MB'} (manifest: {out / MANIFEST})",
          file=sys.stderr)
    return 1 if counts["error"] else 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to the ``sglrp`` command's subparsers."""
    p = sub.add_parser(
        "explain",
        help="relevance maps of image files, saved with a manifest",
        description="Explain images with one or more methods; save the maps (.npy), heatmaps "
        "and overlays (.png) and a manifest.jsonl in --out. Exit code 0: all done, 1: some "
        "images failed, 2: bad arguments.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files, or directories (their image files, not recursive)")
    p.add_argument("--model", default="vgg16",
                   help="vgg16 (default), demo (the embedded digit CNN) or a .keras/.h5 file")
    p.add_argument("--weights", default=None,
                   help="weights file (vgg16: default 'imagenet', from the Keras cache)")
    p.add_argument("--method", default="sglrp",
                   help="comma-separated methods (default sglrp; see `sglrp methods`)")
    p.add_argument("--target", default=AUTO,
                   help="comma-separated targets: auto (the predicted class, default), class "
                   "ids, or class names; one map per target")
    p.add_argument("--out", default="results", help="output directory (default results)")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    p.add_argument("--low", type=float, default=None,
                   help="lowest model input value, for lrp/clrp/sglrp (default: per model)")
    p.add_argument("--high", type=float, default=None,
                   help="highest model input value, for lrp/clrp/sglrp (default: per model)")
    p.add_argument("--relu", action="store_true", help="keep only positive relevance")
    p.add_argument("--format", default="png,npy",
                   help="comma-separated outputs: npy (raw maps), png (heatmap and overlay)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo images whose outputs exist (default: skip them)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on a terminal) and no start message")
    p.add_argument("--top-k", type=int, default=5,
                   help="predicted classes kept in the manifest (default 5)")
    p.add_argument("--max-megapixels", type=float, default=50.0,
                   help="larger images are reported and skipped (default 50)")
    p.set_defaults(run=run)
    return p
