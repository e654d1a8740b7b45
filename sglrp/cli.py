"""The ``sglrp`` command: ``demo``, ``methods``, ``explain``, ``spray``, ``evaluate``,
``bench-discrimination``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _methods(args) -> int:
    from . import registry

    width = max(len(name) for name in registry.METHODS)
    for name in registry.available_methods():
        cls = registry.METHODS[name]
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<{width}}  {cls.__name__:<14} {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sglrp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("methods", help="list the available methods")
    p.set_defaults(run=_methods)

    from .demo import cli as demo_cli

    demo_cli.add_parsers(sub)
    from . import explain

    explain.add_parser(sub)
    from .spray import cli as spray_cli

    spray_cli.add_parser(sub)
    from .evaluation import cli as evaluation_cli

    evaluation_cli.add_parser(sub)
    return parser


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--preprocess -1-1`` -> ``--preprocess=-1-1``: argparse takes a value that starts with
    ``-`` (and is not a plain number) for an option."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] == "--preprocess" and arg == "-1-1" and out[-1] == "--preprocess":
            out[-1] = f"--preprocess={arg}"
        else:
            out.append(arg)
    return out


def main(argv=None) -> int:
    parser = build_parser()
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
