"""The example notebooks, executed top to bottom in a real Jupyter kernel of this environment.

The kernel runs this interpreter (``sys.executable``) from a kernel spec written to a temporary
folder, so a ``python3`` kernel installed elsewhere on the machine is never picked up. No
network: the offline notebooks use the embedded demo model and data only.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
KERNEL = "sglrp-tests"
VGG16_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


def _build_script():
    path = EXAMPLES / "build_notebooks.py"
    spec = importlib.util.spec_from_file_location("build_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(folder / KERNEL)  # argv: this interpreter, -m ipykernel_launcher
    return folder


def execute(name: str, kernel_dir: Path, timeout: int = 600) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell of ``examples/name`` in a fresh kernel; raise on the first error."""
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    manager = AsyncKernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    )
    client = NotebookClient(
        nb, km=manager, timeout=timeout, resources={"metadata": {"path": str(EXAMPLES)}}
    )
    start = time.perf_counter()
    client.execute()  # CellExecutionError on an error cell
    return nb, time.perf_counter() - start


def text(nb) -> str:
    """Everything the code cells printed (stdout and stderr)."""
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream"
    )


def errors(nb) -> list[str]:
    return [
        f"{out.ename}: {out.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]


def images(nb) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


def number(pattern: str, output: str) -> float:
    """The last number ``pattern`` (one group) finds in ``output``."""
    found = re.findall(pattern, output, re.M)
    assert found, f"{pattern!r} not in the notebook's output"
    return float(found[-1])


# -- the committed notebooks --------------------------------------------------------------------


def test_notebooks_are_valid_and_built_from_the_script():
    build = _build_script()
    assert set(build.NOTEBOOKS) == {p.name for p in EXAMPLES.glob("*.ipynb")}
    for name in build.NOTEBOOKS:
        nbformat.validate(nbformat.read(EXAMPLES / name, as_version=4))
    assert build.differences() == []


def test_offline_notebooks_are_committed_with_outputs_and_zebra_elephant_without():
    offline = _build_script().OFFLINE
    assert "zebra_elephant.ipynb" not in offline
    printed = {"spray.ipynb": "homogeneity"}  # a word each notebook's results print
    for name in offline:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        assert errors(nb) == [], name
        word = printed.get(name, "contrast")
        assert images(nb) >= 3 and word in text(nb), f"{name}: run `make notebooks`"
    zebra = nbformat.read(EXAMPLES / "zebra_elephant.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in zebra.cells if c.cell_type == "code")


def test_zebra_elephant_says_first_how_to_get_the_weights():
    nb = nbformat.read(EXAMPLES / "zebra_elephant.ipynb", as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert VGG16_FILE in first.source and "~/.keras/models" in first.source
    assert "VGG16_WEIGHTS" in first.source


# -- executed in a kernel -----------------------------------------------------------------------


def test_quickstart_runs_and_sglrp_discriminates_better_than_lrp(kernel_dir):
    nb, seconds = execute("quickstart.ipynb", kernel_dir)
    print(f"quickstart.ipynb: {seconds:.0f} s")
    output = text(nb)
    assert errors(nb) == []
    assert "maps (50, 32, 32, 1) float32" in output
    assert "graph builds: 1" in output
    row = r"^\| {} \| [\d.]+ \| (-?[\d.]+) \| [\d.]+ \|$"  # method, mass, contrast, pointing
    contrast = {
        m: number(row.format(re.escape(m)), output) for m in ("LRP", "CLRP", "SGLRP")
    }
    assert contrast["SGLRP"] > contrast["LRP"] + 0.3, contrast
    assert contrast["CLRP"] > contrast["LRP"] + 0.3, contrast
    assert len(re.findall(r"^\| .+ \| [\d.]+ \| -?[\d.]+ \| [\d.]+ \|$", output, re.M)) == 13
    assert images(nb) >= 4


@pytest.mark.slow
def test_your_model_trains_explains_reloads_and_shows_the_errors(kernel_dir):
    nb, seconds = execute("your_model.ipynb", kernel_dir)
    print(f"your_model.ipynb: {seconds:.0f} s")
    output = text(nb)
    assert errors(nb) == []
    trained = output[output.index("after 12 epochs") :]
    sglrp_contrast = number(r"SGLRP contrast: (-?[\d.]+)", trained)
    lrp_contrast = number(r"^LRP contrast: (-?[\d.]+)", trained)
    assert sglrp_contrast > lrp_contrast + 0.3
    assert number(r"top-2: ([\d.]+)", trained) >= 0.6
    assert number(r"after reloading: ([\d.e+-]+)", output) < 1e-5
    share = r"LRP (low=.+?): share of \|relevance\| on black pixels ([\d.]+)"
    black = dict(re.findall(share, output))
    assert float(black["low=0, high=255"]) > float(black["low=0, high=1"])
    # every common error was raised and printed with its message
    assert len(re.findall(r"^  (\w+Error): ", output, re.M)) == 11  # UnknownMethodError too
    assert "eager: True" in output


@pytest.mark.slow
def test_spray_finds_the_planted_shortcut(kernel_dir):
    nb, seconds = execute("spray.ipynb", kernel_dir)
    print(f"spray.ipynb: {seconds:.0f} s")
    output = text(nb)
    assert errors(nb) == []
    accuracy = r"^{}: accuracy ([\d.]+) with the mark, ([\d.]+) with it removed$"
    drop = {}
    for kind in ("shortcut", "control"):
        ((with_mark, without),) = re.findall(accuracy.format(kind), output, re.M)
        drop[kind] = float(with_mark) - float(without)
    assert drop["shortcut"] >= 0.2 and abs(drop["control"]) <= 0.05, drop
    row = r"^\| {} \| {} \| \d+ \| (-?[\d.]+) \| ([\d.]+) \|$"  # method, model: ARI, hom.
    found = {(m, k): tuple(map(float, re.findall(row.format(m, k), output, re.M)[-1]))
             for m in ("SGLRP", "LRP", "guided backprop") for k in ("shortcut", "control")}
    assert found["guided backprop", "shortcut"][0] > 0.9  # finds the shortcut
    assert found["guided backprop", "control"][0] < 0.1
    assert found["LRP", "shortcut"][0] > 0.9 and found["LRP", "control"][0] > 0.9  # the mark
    assert found["SGLRP", "shortcut"][0] > 0.5
    assert found["SGLRP", "shortcut"][1] > found["SGLRP", "control"][1] + 0.2
    assert images(nb) >= 3


@pytest.mark.slow
def test_zebra_elephant_runs(kernel_dir, tmp_path, monkeypatch):
    """With the ImageNet weights if they are in the Keras cache, else with random weights
    saved to a file (the notebook's code paths, not its pictures)."""
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / VGG16_FILE
    if not cache.is_file():
        import tensorflow as tf

        tf.keras.utils.set_random_seed(0)
        weights = tmp_path / "vgg16_random.h5"
        tf.keras.applications.VGG16(weights=None).save_weights(str(weights))
        monkeypatch.setenv("VGG16_WEIGHTS", str(weights))
    nb, seconds = execute("zebra_elephant.ipynb", kernel_dir, timeout=1800)
    print(f"zebra_elephant.ipynb: {seconds:.0f} s")
    output = text(nb)
    assert errors(nb) == []
    assert output.count("zebra_elephant") == 5 and output.count(": done") == 11
    assert images(nb) == 2 + 5
    if cache.is_file():
        assert re.search(r"zebra_elephant3\.jpg: zebra 0\.9", output)
