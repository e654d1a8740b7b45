"""Every method on every shipped digit-scene model: maps, then the metrics of ``sglrp.metrics``.

Per model, each explained digit of ``n_scenes`` held-out scenes (both digits of every scene, the
other one is the distractor) is explained by every registry method that is defined for the
model. One analyzer per model and method serves all of it: the maps for the targets, the maps
for a random other class, and the maps of the randomised models - the model's weights are
changed in place and the analyzer follows them (``sglrp.analyzer``), so nothing is rebuilt.

A method that refuses the model at construction (the ``ValueError`` every method raises for a
layer or activation it is not defined for) is a refused cell of the table, with its reason;
the run goes on. A map made of seeded uniform noise is scored with every metric as the chance
baseline (``random``), the reference for the deletion and insertion AUCs.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import metrics
from ..analyzer import ContrastLostWarning
from ..demo import ARCHITECTURES, DEMO_HIGH, DEMO_LOW, load_demo_model, make_scenes
from ..demo.run import _scene_targets
from ..demo.train import EVAL_SCENE_SEED, EVAL_SCENES, scene_top2
from ..metrics import faithfulness, localisation, sanity
from ..registry import available_methods, create_analyzer

__all__ = ["Settings", "evaluate_model", "evaluate", "method_names", "model_names"]


@dataclass
class Settings:
    """What ``sglrp evaluate`` computes; the defaults took 188 s on 2 shared CPU cores (README).

    Attributes
    ----------
    scenes : int
        Held-out scenes per model; both digits are explained, so ``2 * scenes`` maps.
    seed : int
        Seed of the scenes, the random other classes, the random weights and the bootstrap.
    steps : int
        Points of the deletion / insertion curves besides 0.
    cascade_maps : int
        Maps per stage of the randomisation cascade (the first ones), for the figure.
    cascade_stages : int or None
        Layers of the cascade re-initialised at most, from the top (``None``: all of them).
        Each stage reloads the weights into the analyzer, which costs most on the models with
        many layers.
    samples : dict
        Keyword arguments of the sampling methods (noisy copies, path points).
    """

    scenes: int = 100
    seed: int = 0
    steps: int = 16
    cascade_maps: int = 32
    cascade_stages: int | None = None
    samples: dict = field(
        default_factory=lambda: {
            "smoothgrad": {"augment_by_n": 32},
            "integrated_gradients": {"steps": 16},
        }
    )


def model_names() -> list[str]:
    """The shipped models, in the order of the tables."""
    return list(ARCHITECTURES)


def method_names() -> list[str]:
    """Every registered method, sorted (those a model refuses are skipped per model)."""
    return available_methods()


def _cascade_weights(model, seed: int) -> tuple[list[str], list[dict]]:
    """Layer names from the top and, per stage k, the weights with the top k layers re-drawn.

    The weights are ``{layer name: [arrays]}`` for :func:`_set_weights`; layer ``j`` from the
    top is re-drawn with seed ``seed + j``, so every method sees the same random models.
    """
    layers = sanity.kernel_layers(model)
    stages, current = [], _get_weights(model)
    for j, layer in enumerate(layers):
        current = {**current, layer.name: sanity.reinitialized_weights(layer, seed + j)}
        stages.append(current)
    return [layer.name for layer in layers], stages


def _get_weights(model) -> dict:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _set_weights(model, weights: dict) -> None:
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])


def _predict(model):
    def predict(batch):
        return model.predict(batch, batch_size=1024, verbose=0)

    return predict


def _values(maps, maps_other, maps_random, x, targets, target_boxes, distractor_boxes,
            predict, steps) -> dict[str, np.ndarray]:
    """Per-map values of every metric."""
    values = localisation.scores(maps, target_boxes, distractor_boxes)
    curves = faithfulness.perturbation_curves(predict, x, maps, targets, steps=steps)
    values["deletion_auc"] = faithfulness.auc(curves["deletion"], curves["fractions"])
    values["insertion_auc"] = faithfulness.auc(curves["insertion"], curves["fractions"])
    values["randomization_similarity"] = sanity.rank_similarity(maps, maps_random)
    values["random_logit_similarity"] = sanity.rank_similarity(maps, maps_other)
    for metric, other in (("randomization", maps_random), ("random_logit", maps_other)):
        values[f"{metric}_similarity_signed"] = sanity.rank_similarity(maps, other, False)
    return values


#: Extra per-map values in the JSON besides ``metrics.METRICS``: the sanity correlations
#: without the absolute value (Adebayo et al. report both).
EXTRA = ("randomization_similarity_signed", "random_logit_similarity_signed")


def evaluate_model(name: str, methods=None, settings: Settings | None = None, log=print) -> dict:
    """The evaluation of one shipped model: its accuracy and, per method, every metric.

    Returns
    -------
    dict
        ``name``, ``top2_accuracy`` (held-out scenes, as the training script measures it),
        ``n_maps``, ``cascade_layers`` (the layers with weights, from the top),
        ``methods`` (one dict per method that runs: each metric's mean, ``<metric>_ci95``,
        ``<metric>_n_undefined``, ``randomization_cascade``, ``contrast_lost`` (CLRP's and
        SGLRP's warning on the trained weights, else ``None``) and ``seconds``), ``refused``
        (method -> the reason it gave for refusing the model, in the order asked) and
        ``random`` (the same metrics for maps of seeded uniform noise: the chance level).
    """
    settings = settings or Settings()
    methods = method_names() if methods is None else list(methods)
    start = time.perf_counter()
    model = load_demo_model(name=name)
    held_out = make_scenes(EVAL_SCENES, seed=EVAL_SCENE_SEED, split="test")
    top2 = scene_top2(model.predict(held_out.images, batch_size=1024, verbose=0), held_out.labels)
    scenes = make_scenes(settings.scenes, seed=settings.seed, split="test")
    x, targets, target_boxes, distractor_boxes = _scene_targets(scenes)
    others = sanity.random_other_classes(targets, model.output_shape[-1], settings.seed)
    trained = _get_weights(model)
    layer_names, stages = _cascade_weights(model, settings.seed)
    if settings.cascade_stages is not None:
        keep = settings.cascade_stages
        layer_names, stages = layer_names[:keep], stages[:keep]
    predict = _predict(model)
    n_cascade = min(settings.cascade_maps, len(x))
    log(f"{name}: scene top-2 accuracy {top2:.3f}; {len(x)} maps per method")

    results, refused = [], {}
    for method in methods:
        t0 = time.perf_counter()
        try:
            analyzer = create_analyzer(
                method, model, low=DEMO_LOW, high=DEMO_HIGH, **settings.samples.get(method, {})
            )
        except ValueError as err:
            refused[method] = str(err)
            log(f"  {method}: refused ({err})")
            continue
        with analyzer, warnings.catch_warnings():
            # recorded below for the trained weights; expected once the cascade randomizes them
            warnings.simplefilter("ignore", ContrastLostWarning)
            maps = analyzer.analyze(x, target=targets)
            maps_other = analyzer.analyze(x, target=others)
            contrast_lost = getattr(analyzer, "contrast_lost", None)
            cascade = []
            try:
                for k, weights in enumerate(stages):
                    _set_weights(model, weights)
                    part = slice(None) if k == 0 else slice(0, n_cascade)
                    randomized = analyzer.analyze(x[part], target=targets[part])
                    if k == 0:
                        maps_random = randomized
                    cascade.append(sanity.rank_similarity(maps[:n_cascade], randomized[:n_cascade]))
            finally:
                _set_weights(model, trained)
        values = _values(maps, maps_other, maps_random, x, targets, target_boxes,
                         distractor_boxes, predict, settings.steps)
        entry = _summary(method, values, settings.seed)
        entry["randomization_cascade"] = [
            None if not np.isfinite(c).any() else float(np.nanmean(c)) for c in cascade
        ]
        entry["contrast_lost"] = contrast_lost
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        results.append(entry)
        if contrast_lost:
            log(f"  {method}: {contrast_lost}")
        log(
            f"  {method}: contrast {_fmt(entry['contrast'])}, deletion "
            f"{_fmt(entry['deletion_auc'])}, randomization "
            f"{_fmt(entry['randomization_similarity'])} ({entry['seconds']:.1f} s)"
        )
    noise = np.random.default_rng(settings.seed).uniform(size=(3, *x.shape)).astype(np.float32)
    baseline = _summary(
        "random",
        _values(noise[0], noise[1], noise[2], x, targets, target_boxes, distractor_boxes,
                predict, settings.steps),
        settings.seed,
    )
    return {
        "name": name,
        "top2_accuracy": top2,
        "n_maps": int(len(x)),
        "cascade_layers": layer_names,
        "methods": results,
        "refused": refused,
        "random": baseline,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _summary(method: str, values: dict, seed: int) -> dict:
    """``{"method": ..., metric: mean, <metric>_ci95, <metric>_n_undefined}``."""
    entry = {"method": method}
    for metric in (*metrics.METRICS, *EXTRA):
        summary = metrics.summarize(values[metric], seed=seed)
        entry[metric] = summary["mean"]
        entry[f"{metric}_ci95"] = summary["ci95"]
        entry[f"{metric}_n_undefined"] = summary["n_undefined"]
    return entry


def _fmt(value) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def evaluate(models=None, methods=None, settings: Settings | None = None, log=print) -> dict:
    """``{"settings": ..., "models": [evaluate_model(name) for each model], "seconds": ...}``."""
    settings = settings or Settings()
    models = model_names() if models is None else list(models)
    start = time.perf_counter()
    with warnings.catch_warnings():  # the shipped models end in a softmax: said once here
        warnings.filterwarnings("ignore", message=".*ends in a softmax", category=UserWarning)
        log("the models end in a softmax: every method explains their logits")
        out = [evaluate_model(name, methods, settings, log) for name in models]
    return {
        "settings": asdict(settings),
        "models": out,
        "seconds": round(time.perf_counter() - start, 1),
    }
