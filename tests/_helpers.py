"""The tests' data makers and tolerance helpers: one home, :mod:`fastnn._testing`
(shared with the benchmark suite, which travels with the installed package);
and the rule for a backend that is unavailable here (see conftest)."""

import os
import subprocess
import sys

import pytest

from fastnn import backends
from fastnn._testing import (assert_close, binary_data, max_rel_diff, network_problem,  # noqa: F401
                             reference_params, regression_data, rel_diff)

_DEFAULT_REQUIRED = "numba,cython" if os.environ.get("CI", "").lower() in ("1", "true") else ""
#: Backends whose absence fails the run instead of skipping (FASTNN_REQUIRE_BACKENDS;
#: under CI the compiled ones).
REQUIRED = {b for b in os.environ.get("FASTNN_REQUIRE_BACKENDS", _DEFAULT_REQUIRED).split(",") if b}


def usable(name, *, module_level=False):
    """Return if backend ``name`` is available here; else skip with the reason
    -- or fail, when it is required."""
    status = backends.available()[name]
    if status is True:
        return
    if name in REQUIRED:
        pytest.fail(f"backend {name!r} is required (FASTNN_REQUIRE_BACKENDS) but unavailable: "
                    f"{status}", pytrace=False)
    pytest.skip(f"backend {name!r} unavailable: {status}", allow_module_level=module_level)


def require_backend(name):
    """The backend module ``name``, for a test module about that backend alone:
    where it is unavailable the whole module skips with the reason (an install
    without a C compiler has no cython backend), or fails to collect when it is
    required (under CI)."""
    usable(name, module_level=True)
    return backends.get(name)


class BenchmarkStandIn:
    """What the benchmark harness uses of pytest-benchmark's fixture, timing
    nothing itself: ``disabled`` as under plain pytest (one round on modest
    sizes, checked) or not (the rounds the suite asks for)."""

    def __init__(self, disabled=False):
        self.disabled = disabled
        self.extra_info, self.group = {}, None

    def pedantic(self, target, rounds, iterations, warmup_rounds):
        for _ in range(rounds):
            target()

    def record(self):
        """The group as it stands in the suite's JSON."""
        return {"group": self.group, "name": f"test[{self.group}]",
                "stats": {"median": 1.0, "rounds": 5}, "extra_info": self.extra_info}


def run_python(code, *args, env=None, timeout=600):
    """Run ``code`` in a fresh Python process (this interpreter) with ``args``;
    its stdout. A child that fails fails the test with its stderr."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=None if env is None else dict(os.environ, **env), timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_trained_alike(net, oracle, tol=1e-9):
    """Two fitted Networks took the same steps: recorded costs, parameters,
    optimizer steps and state within ``tol``."""
    assert [i for i, _ in net.costs_] == [i for i, _ in oracle.costs_]
    assert_close([c for _, c in net.costs_], [c for _, c in oracle.costs_], tol, "costs")
    ref = oracle.params
    assert_close([net.params[k] for k in ref], list(ref.values()), tol, "parameters")
    assert net.optimizer_steps_ == oracle.optimizer_steps_
    for slot, arrays in oracle.optimizer_state_.items():
        assert_close([net.optimizer_state_[slot][k] for k in arrays], list(arrays.values()),
                     tol, f"optimizer state {slot}")
