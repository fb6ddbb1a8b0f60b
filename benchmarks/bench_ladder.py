"""The lecture's ladder: loops -> per_example -> numpy -> numba -> cython (+ peers).

One group per workload (``ladder-<name>``), every backend and installed peer
on the same arrays, float64, default threads; then the m-sweep (``sweep-m=<m>``)
on the planar 2-4-1 net, showing where each rung wins.
"""

import pytest

from _harness import (BACKENDS, CYTHON_BLAS, CYTHON_DIRECT, MODE, PEERS, backend_trainer, ci,
                      peer_trainer, require_backend, time_training)
from fastnn.report import workloads as wl

#: Training iterations per timed call, as in ``fit(num_iterations=...)``: enough
#: that a backend's fixed per-call cost (thread-pool set-up, buffer copies) is
#: amortized as it is in a real training run. The pure-Python rungs have no such
#: cost and take ms per iteration, so they run fewer. The report divides by it;
#: pytest-benchmark's own table shows time per call.
#: deep and logreg run 100 iterations a call (the course trains them for 2500):
#: a fit that long is what lets the cython backend's Gram rewrite of layer 1 pay
#: for its set-up, and ``cython:direct`` shows the same backend without it.
#: ``cython:blas`` is the backend with scipy's BLAS in place of its own GEMM.
ITERATIONS = {"planar": 1000, "deep": 100, "logreg": 100, "wide": 1}
if MODE == "quick":
    ITERATIONS = {"planar": 200, "deep": 20, "logreg": 20, "wide": 1}
SLOW_ITERATIONS = {"planar": 100 if MODE == "full" else 20, "deep": 1, "logreg": 1}
#: Iterations per call in the sweep: about SWEEP_WORK / m (slow rungs: a tenth).
SWEEP_WORK = 50_000 if MODE == "quick" else 200_000

#: Rungs that would not finish in seconds here, beyond each workload's too_slow.
QUICK_TOO_SLOW = {"logreg": ("loops",), "wide": ()}

IMPLS = BACKENDS + [CYTHON_DIRECT, CYTHON_BLAS] + [f"peer:{p}" for p in PEERS]


def _skip_slow(benchmark, workload, impl):
    if impl == CYTHON_DIRECT and workload.layer_dims[0] <= workload.m:
        pytest.skip("the Gram rewrite only applies when n_0 > m: cython is already direct")
    if impl == CYTHON_BLAS:
        _skip_without_products(workload)
    if impl in workload.too_slow:
        pytest.skip(f"{impl} takes minutes per iteration on {workload.name}")
    if (MODE == "quick" or ci(benchmark)) and impl in QUICK_TOO_SLOW.get(workload.name, ()):
        pytest.skip(f"{impl} on {workload.name} runs in the full benchmark only")


def _skip_without_products(workload):
    cython = require_backend("cython")
    if not cython.gemm_available():
        pytest.skip("this fastnn_ext build has no own GEMM: cython already uses BLAS")
    dims = workload.layer_dims
    # Below _core.pxi's GEMM_MIN_MACS (2^15) per product the kernels loop themselves.
    if max(dims[l] * dims[l - 1] for l in range(1, len(dims))) * workload.m < 1 << 15:
        pytest.skip(f"{workload.name}'s products are too small for any GEMM call")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(wl.WORKLOADS))
def test_ladder(benchmark, name, impl):
    workload = wl.WORKLOADS[name]
    benchmark.group = f"ladder-{name}"
    _skip_slow(benchmark, workload, impl)
    # Under plain pytest the wide net runs at m = 2000: a test, not a measurement.
    m = 2_000 if name == "wide" and ci(benchmark) else workload.m
    if impl.startswith("peer:"):
        make = lambda: peer_trainer(impl[5:], workload, m, "float64")  # noqa: E731
    else:
        make = lambda: backend_trainer(impl, workload, m, "float64", None)  # noqa: E731
    iterations = SLOW_ITERATIONS.get(name, ITERATIONS[name]) if impl in ("loops", "per_example") \
        else ITERATIONS[name]
    time_training(benchmark, make, workload, m=m, iterations=iterations, impl=impl)


SWEEP_M = [100, 1_000, 10_000, 100_000]
#: The largest m each slow rung runs at (seconds, not minutes, per round).
SWEEP_LIMIT = {"full": {"loops": 10_000, "per_example": 10_000},
               "quick": {"loops": 1_000, "per_example": 1_000}}


@pytest.mark.parametrize("impl", BACKENDS)
@pytest.mark.parametrize("m", SWEEP_M)
def test_sweep(benchmark, m, impl):
    benchmark.group = f"sweep-m={m}"
    mode = "quick" if ci(benchmark) else MODE
    limit = SWEEP_LIMIT[mode].get(impl)
    if limit is not None and m > limit:
        pytest.skip(f"{impl} at m={m} runs minutes; its sweep stops at m={limit}")
    if mode == "quick" and m > 10_000:
        pytest.skip("m=100000 runs in the full benchmark only")
    work = SWEEP_WORK // (10 if impl in ("loops", "per_example") else 1)
    make = lambda: backend_trainer(impl, wl.SWEEP, m, "float64", None)  # noqa: E731
    time_training(benchmark, make, wl.SWEEP, m=m, iterations=max(1, work // m), impl=impl)
