"""Command-line parsers of ``sglrp demo`` and ``sglrp bench-discrimination``."""

from __future__ import annotations


def _demo(args) -> int:
    if args.spray:
        from ..spray import demo as spray_demo

        return spray_demo.main(args)
    from . import run

    return run.main(args)


def add_parsers(sub) -> None:
    from ..arguments import output_dir, positive_int
    from . import run

    p = sub.add_parser("demo", help="the embedded example: every method on two-digit scenes")
    p.add_argument("--out", default="results/demo", type=output_dir,
                   help="output folder (default results/demo)")
    p.add_argument(
        "--model",
        choices=["digits", "vgg16"],
        default="digits",
        help="digits: the embedded model (offline); vgg16: the zebra/elephant example",
    )
    p.add_argument(
        "--weights",
        default="imagenet",
        help="VGG16 weights: 'imagenet' (Keras cache or download) or a file path",
    )
    p.add_argument("--scenes", type=positive_int, default=200,
                   help="scenes for the table, >= 1 (default 200)")
    p.add_argument("--figures", type=int, default=3, help="scenes drawn as figures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spray", action="store_true",
                   help="spectral relevance analysis on the planted-shortcut set instead "
                   "(writes OUT/planted/)")
    p.set_defaults(run=_demo)

    q = sub.add_parser(
        "bench-discrimination", help="class-discrimination benchmark on held-out digit scenes"
    )
    q.add_argument("--scenes", type=positive_int, default=200, help="scenes, >= 1 (default 200)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default="results/discrimination", type=output_dir)
    q.set_defaults(run=run.bench_main)
