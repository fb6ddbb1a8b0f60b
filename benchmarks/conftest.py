"""pytest hooks for the benchmark suite; the helpers live in ``_harness.py``."""

from _harness import MODE


def pytest_report_header(config):
    return f"fastnn benchmarks: FASTNN_BENCH={MODE}"
