"""pytest hooks for the benchmark suite; the helpers live in ``_harness.py``.

OpenMP threads wait passively between parallel regions here. Numba's ``omp``
threading layer, the Cython extension and PyTorch all use libgomp, whose idle
threads otherwise spin; on 2 cores the spinning pool of one backend made the
next backend's BLAS calls up to 8x slower in the same process (measured: numpy
deep 17 ms -> 136 ms after one numba run). libgomp reads the variable when it
is loaded, which is after this file is imported. Set it yourself to override.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from _harness import MODE  # noqa: E402


def pytest_report_header(config):
    return (f"fastnn benchmarks: FASTNN_BENCH={MODE}, "
            f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")


def pytest_collection_modifyitems(config, items):
    """Run the peers last.

    PyTorch and JAX start thread pools that keep spinning after their work
    (OpenMP busy-wait); on 2 cores that would steal time from every fastnn
    benchmark run after them. Stable sort: the order is otherwise unchanged.
    """
    items.sort(key=lambda item: "peer:" in item.nodeid)
