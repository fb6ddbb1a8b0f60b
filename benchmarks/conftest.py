"""pytest hooks for the benchmark suite; the helpers live in ``_harness.py``.

Idle OpenMP and OpenBLAS threads spin only briefly here
(``fastnn.report.suite.BENCH_ENV`` says why): that matters more than usual
because every group interleaves implementations, so one's idle pool would
steal the cores from the next. libgomp reads its variable when it is loaded,
after this file is imported; OpenBLAS reads its own when numpy loads, which
under plain ``pytest benchmarks`` may be earlier -- ``fastnn report`` and
``fastnn bench`` start the suite with both set. Set them yourself to override.
"""

import os

from fastnn.report.suite import BENCH_ENV, OMP_ENV_VARS

for _name, _value in BENCH_ENV.items():
    os.environ.setdefault(_name, _value)

from ._harness import MODE  # noqa: E402


def pytest_report_header(config):
    omp = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in OMP_ENV_VARS)
    return f"fastnn benchmarks: FASTNN_BENCH={MODE}, {omp}"
