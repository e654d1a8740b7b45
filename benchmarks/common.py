"""Shared pieces of the benchmarks: threads, machine, memory, timing, models and inputs."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial

import numpy as np
import tensorflow as tf

from . import THREADS

# Both benchmarked models end in a softmax, which sglrp strips with a warning each time.
warnings.filterwarnings("ignore", message="model .* ends in a softmax")

__all__ = [
    "HEAVY_BATCH",
    "MODELS",
    "THREADS",
    "build_model",
    "gpu_peak_mb",
    "load_average",
    "machine_info",
    "make_inputs",
    "peak_rss_mb",
    "reset_peak_rss",
    "rss_mb",
    "setup_tensorflow",
    "time_batches",
    "time_runs",
]


#: From this batch size on, VGG16 is timed with fewer runs and, by default, fewer methods.
HEAVY_BATCH = 8


# -- threads and machine ---------------------------------------------------------------------
def setup_tensorflow(threads: int = THREADS) -> dict:
    """Pin TensorFlow's thread pools to ``threads`` and let GPU memory grow on demand.

    Call before TensorFlow runs any op. Memory growth matters with a GPU: TensorFlow would
    otherwise reserve the whole GPU for this process, and the child process that runs the
    innvestigate baselines would find none left.

    Returns
    -------
    dict
        The settings in effect, for the record.
    """
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _total_ram_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _gpus() -> list[str]:
    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


def _version_or_none(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _engine() -> str:
    import sglrp

    return sglrp.engine


def machine_info(threads: dict | None = None) -> dict:
    """The machine and the software versions, for the record."""

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "ram_gb": _total_ram_gb(),
        "gpus": _gpus(),
        "built_with_cuda": tf.test.is_built_with_cuda(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        # Installed distributions (innvestigate 2.1.2 still says 2.0.1 in ``__version__``).
        "tensorflow": _version_or_none("tensorflow"),
        "keras": _version_or_none("keras"),
        "innvestigate": _version_or_none("innvestigate"),
        "engine": _engine(),
        "numpy": _version_or_none("numpy"),
        "sglrp": _version_or_none("sglrp"),
        "threads": threads,
        "load_average": load_average(),
        "sglrp_source": _git_state(),
    }


def _git_state() -> str | None:
    """The commit of the measured sglrp source, and which files of ``sglrp/`` had local changes."""
    import subprocess
    from pathlib import Path

    def git(*args):
        root = Path(__file__).resolve().parents[1]
        run = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return run.stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain", "sglrp").splitlines()]
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + (f" with local changes in {', '.join(changed)}" if changed else "")


def load_average() -> list[float] | None:
    """1-, 5- and 15-minute load averages: other work on the machine slows the timings."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# -- memory ------------------------------------------------------------------------------------
def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    value = _status_mb("VmRSS")
    if value is None:
        import psutil

        value = psutil.Process().memory_info().rss / 2**20
    return value


def peak_rss_mb() -> float:
    """High-water mark of the resident set size, in MiB (since the last :func:`reset_peak_rss`).

    Without a reset this is the process's peak, the same as ``getrusage``'s ``ru_maxrss``.
    """
    value = _status_mb("VmHWM")
    if value is None:
        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return value


def gpu_peak_mb() -> float | None:
    """Peak memory TensorFlow allocated on the first GPU, in MiB; None without a GPU."""
    if not tf.config.list_physical_devices("GPU"):
        return None
    try:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except (ValueError, RuntimeError):  # not every TF build or mode reports it
        return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ``/proc/self/clear_refs``); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# -- timing ------------------------------------------------------------------------------------
def time_runs(fn, repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def per_image(times: list[float], batch_size: int) -> dict:
    """Median (and min, max) seconds per image of timed batch runs."""
    return {
        "median_s_per_image": statistics.median(times) / batch_size,
        "min_s_per_image": min(times) / batch_size,
        "max_s_per_image": max(times) / batch_size,
        "runs": len(times),
    }


def time_batches(fn, x, batch_sizes, repeats_for, warmup_each_batch=False) -> dict:
    """Per-image times of ``fn(x[:b])`` for each batch size ``b`` (see :func:`per_image`).

    Parameters
    ----------
    fn : callable
        Called with a batch.
    x : numpy.ndarray
        Inputs, at least ``max(batch_sizes)``.
    batch_sizes : list of int
    repeats_for : callable
        ``repeats_for(b)``: the number of timed runs at batch size ``b``.
    warmup_each_batch : bool
        One untimed run before each batch size; by default only before the first. A session
        pays its one-time costs (graph optimization, kernel choice) at its first run, whatever
        the batch size; an eager ``tf.function`` may retrace for each new batch size.
    """
    out = {}
    for i, b in enumerate(batch_sizes):
        warmup = 1 if (i == 0 or warmup_each_batch) else 0
        out[b] = per_image(time_runs(partial(fn, x[:b]), repeats_for(b), warmup), b)
    return out


# -- models and inputs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchModel:
    """A benchmarked classifier: its input shape, input range and a target class."""

    name: str
    input_shape: tuple
    low: float
    high: float
    target: int
    #: Batch sizes measured by default.
    batch_sizes: tuple


MODELS = {
    "vgg16": BenchModel("vgg16", (224, 224, 3), -123.68, 151.061, 340, (1, 8)),
    "demo": BenchModel("demo", (32, 32, 1), 0.0, 1.0, 3, (1, 8, 32)),
}


def build_model(name: str, weights: str | None = None) -> tf.keras.Model:
    """The benchmarked model, with its softmax.

    Parameters
    ----------
    name : {"vgg16", "demo"}
        VGG16 with random weights (seed 0, or ``weights`` from a file); the shipped demo CNN.
    weights : str, optional
        An HDF5 weights file for VGG16 (how a child process gets the parent's weights).
    """
    if name == "vgg16":
        from sglrp.models import load_vgg16

        tf.keras.utils.set_random_seed(0)
        return load_vgg16(weights=weights)
    if name == "demo":
        from sglrp.demo import load_demo_model

        return load_demo_model()
    raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")


def make_inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random inputs, uniform in the model's input range (float32)."""
    spec = MODELS[name]
    rng = np.random.default_rng(seed)
    return rng.uniform(spec.low, spec.high, size=(n, *spec.input_shape)).astype(np.float32)
