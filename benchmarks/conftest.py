"""pytest hooks for the benchmark suite; the helpers live in ``_harness.py``."""

from _harness import MODE


def pytest_report_header(config):
    return f"fastnn benchmarks: FASTNN_BENCH={MODE}"


def pytest_collection_modifyitems(config, items):
    """Run the peers last.

    PyTorch and JAX start thread pools that keep spinning after their work
    (OpenMP busy-wait); on 2 cores that would steal time from every fastnn
    benchmark run after them. Stable sort: the order is otherwise unchanged.
    """
    items.sort(key=lambda item: "peer:" in item.nodeid)
