"""The tests' data makers and tolerance helpers: one home, :mod:`fastnn._testing`
(shared with the benchmark suite, which travels with the installed package)."""

from fastnn._testing import (assert_close, binary_data, max_rel_diff, network_problem,  # noqa: F401
                             reference_params, regression_data, rel_diff)
