"""Command-line parser of ``sglrp evaluate``: models and methods in, the outputs of ``report.py``
and ``figures.py`` out."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_parser", "main"]


def _names(text: str, valid: list[str], what: str) -> list[str]:
    if text == "all":
        return list(valid)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise ValueError(f"unknown {what} {unknown or text!r}; valid: all, {', '.join(valid)}")
    return names


def add_parser(sub) -> None:
    from .run import Settings

    default = Settings()
    p = sub.add_parser(
        "evaluate",
        help="every method on the shipped digit-scene models: localisation, faithfulness, sanity",
        description="Explain both digits of held-out two-digit scenes with every method on "
        "every shipped model and score the maps: relevance mass, contrast, pointing game, "
        "deletion and insertion AUC, similarity to the maps of a model with re-initialised "
        "logits and of a random other class. Writes evaluation.json, evaluation.md, "
        "metrics.png and cascade.png.",
    )
    p.add_argument("--models", default="all", help="all (default) or a comma-separated list")
    p.add_argument("--methods", default="all", help="all (default) or a comma-separated list")
    p.add_argument("--scenes", type=int, default=default.scenes,
                   help=f"held-out scenes per model, two maps each (default {default.scenes})")
    p.add_argument("--steps", type=int, default=default.steps,
                   help=f"deletion/insertion steps (default {default.steps})")
    p.add_argument("--cascade-maps", type=int, default=default.cascade_maps,
                   help=f"maps per randomisation-cascade stage (default {default.cascade_maps})")
    p.add_argument("--cascade-stages", type=int, default=None,
                   help="re-initialise at most this many layers in the cascade, from the top "
                   "(default: all)")
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--out", default="results/evaluation", help="output folder")
    p.set_defaults(run=main)


def main(args) -> int:
    from . import figures, report
    from .run import Settings, evaluate, method_names, model_names

    try:
        models = _names(args.models, model_names(), "model")
        methods = _names(args.methods, method_names(), "method")
        for name, value in (("--scenes", args.scenes), ("--steps", args.steps),
                            ("--cascade-maps", args.cascade_maps),
                            ("--cascade-stages", 1 if args.cascade_stages is None
                             else args.cascade_stages)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
    except ValueError as err:
        print(f"sglrp evaluate: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(scenes=args.scenes, seed=args.seed, steps=args.steps,
                        cascade_maps=args.cascade_maps, cascade_stages=args.cascade_stages)
    results = evaluate(models, methods, settings, log=lambda s: print(s, file=sys.stderr))
    report.write_json(out / "evaluation.json", results)
    text = report.markdown(results)
    report.write_text(out / "evaluation.md", text)
    plt = figures._pyplot()
    for name, make in (("metrics.png", figures.metrics_figure),
                       ("cascade.png", figures.cascade_figure)):
        fig = make(results)
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
    print(text)
    print(f"wrote evaluation.json, evaluation.md, metrics.png, cascade.png to {out} "
          f"in {results['seconds']:.0f} s", file=sys.stderr)
    return 0
