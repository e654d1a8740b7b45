"""Benchmarks of sglrp: time per image, graph-build time and memory, against innvestigate.

* ``python -m benchmarks.run`` - the timing tables (``--quick``: the demo CNN only).
* ``python -m benchmarks.memory`` - peak memory of the eleven-method comparison on VGG16.
* ``python -m benchmarks.baselines`` - innvestigate's own analyzers; started by ``run`` in a
  child process, because innvestigate needs eager execution off for the whole process.

See ``benchmarks/RESULTS.md`` for the numbers measured on the development machine.
"""

import os

#: Threads for TensorFlow's intra- and inter-op pools and for OpenMP: the cores this process may
#: use (``BENCH_THREADS`` overrides). Set here, before any submodule imports NumPy or TensorFlow.
THREADS = int(
    os.environ.get("BENCH_THREADS")
    or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    or 1
)
os.environ["OMP_NUM_THREADS"] = str(THREADS)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
