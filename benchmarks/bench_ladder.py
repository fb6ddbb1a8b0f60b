"""The lecture's ladder: loops -> per_example -> numpy -> numba -> cython (+ peers).

One group per workload (``ladder-<name>``): every backend and installed peer on
the same arrays, float64, default threads, timed interleaved. Every fastnn
backend trains layer 1 the lecture's way (``gram=False``), as the peers do;
``cython:gram`` is the cython backend with its Gram rewrite, a labelled extra.
Then the m-sweep (``sweep-m=<m>``) on the planar 2-4-1 net, showing where each
rung wins.
"""

import os

import pytest

from fastnn import backends
from fastnn.report import workloads as wl
from fastnn.report.machine import BLAS_ENV_VARS

from ._harness import (BACKENDS, CYTHON_BLAS, MODE, NUMPY_BLAS_DEFAULT, PEERS, Impl,
                       backend_trainer, ci, cython_settings, interleave, is_slow, peer_trainer,
                       require_backend, too_slow, worker_trainer)

#: Training iterations per timed call, as in ``fit(num_iterations=...)``: enough
#: that a backend's fixed per-call cost (thread-pool set-up, buffer copies) is
#: amortized as in a real training run, and that the Gram rewrite's one-off
#: X^T X is spread over 100 iterations. The SLOW rungs take ms per iteration
#: and run fewer. The report divides by it.
ITERATIONS = {"planar": 1000, "deep": 100, "logreg": 100, "wide": 1}
if MODE == "quick":
    ITERATIONS = {"planar": 200, "deep": 10, "logreg": 10, "wide": 1}
SLOW_ITERATIONS = {"planar": 100 if MODE == "full" else 20, "deep": 1, "logreg": 1, "wide": 1}
#: Iterations per call in the sweep: about SWEEP_WORK / m (SLOW rungs: a tenth).
SWEEP_WORK = 50_000 if MODE == "quick" else 200_000
#: The largest m the SLOW rungs run at in the sweep (seconds, not minutes, per round).
SWEEP_SLOW_LIMIT = 1_000 if MODE == "quick" else 10_000
#: Below this many multiply-adds per product the cython kernels loop themselves
#: (``GEMM_MIN_MACS`` in fastnn_ext): no GEMM to switch.
GEMM_MIN_MACS = 1 << 15
#: The quick run skips the SLOW rungs where one iteration is more work than this
#: (deep, logreg: 10 MFLOP, up to seconds per iteration in Python loops).
SLOW_QUICK_MAX_FLOPS = 1e6


def _has_products(workload):
    dims = workload.layer_dims
    return max(dims[l] * dims[l - 1] for l in range(1, len(dims))) * workload.m >= GEMM_MIN_MACS


def _own_gemm():
    """Whether the cython backend has its own GEMM here (else its products are BLAS)."""
    cy = require_backend("cython")
    if hasattr(cy, "gemm_available"):
        return cy.gemm_available()
    try:
        with cython_settings(gemm="own"):
            return True
    except ValueError:
        return False


def ladder_impls(workload, m, quick):
    """``{impl: Impl}`` of the ladder on ``workload``."""
    impls = {}
    for name in BACKENDS:
        why = too_slow(workload, name)
        if why is None and quick and is_slow(name) and wl.flops(workload) > SLOW_QUICK_MAX_FLOPS:
            why = f"{name} runs on this net in the full benchmark only"
        n = SLOW_ITERATIONS[workload.name] if is_slow(name) else ITERATIONS[workload.name]
        impls[name] = Impl.skipped(why) if why else Impl(
            lambda name=name: backend_trainer(name, workload, m, "float64"), n)
    n = ITERATIONS[workload.name]
    for name in BACKENDS:
        if name in backends.having("HAS_GRAM") and workload.layer_dims[0] > workload.m:
            impls[f"{name}:gram"] = Impl(
                lambda name=name: backend_trainer(name, workload, m, "float64", gram=True), n)
    if backends.available()["cython"] is True and _has_products(workload) and _own_gemm():
        impls[CYTHON_BLAS] = Impl(lambda: backend_trainer(
            "cython", workload, m, "float64", settings={"gemm": "blas"}), n)
    if workload.bound == "gemm" and any(v in os.environ for v in BLAS_ENV_VARS):
        impls[NUMPY_BLAS_DEFAULT] = Impl(lambda: worker_trainer(
            "numpy", workload, m, "float64", unset=BLAS_ENV_VARS), n)
    for peer in PEERS:
        impls[f"peer:{peer}"] = Impl(lambda peer=peer: peer_trainer(peer, workload, m, "float64"),
                                     n)
    return impls


@pytest.mark.parametrize("name", list(wl.WORKLOADS))
def test_ladder(benchmark, name):
    workload = wl.WORKLOADS[name]
    benchmark.group = f"ladder-{name}"
    # Under plain pytest the wide net runs at m = 2000: a test, not a measurement.
    m = 2_000 if name == "wide" and ci(benchmark) else workload.m
    quick = MODE == "quick" or ci(benchmark)
    interleave(benchmark, ladder_impls(workload, m, quick), workload=workload, m=m)


SWEEP_M = [100, 1_000, 10_000, 100_000]


@pytest.mark.parametrize("m", SWEEP_M)
def test_sweep(benchmark, m):
    benchmark.group = f"sweep-m={m}"
    quick = MODE == "quick" or ci(benchmark)
    if quick and m > 10_000:
        pytest.skip("m=100000 runs in the full benchmark only")
    impls = {}
    for name in BACKENDS:
        slow = is_slow(name)
        limit = 1_000 if quick else SWEEP_SLOW_LIMIT
        if slow and m > limit:
            impls[name] = Impl.skipped(f"{name} at m={m} runs minutes; its sweep stops at "
                                       f"m={limit}")
            continue
        work = SWEEP_WORK // (10 if slow else 1)
        impls[name] = Impl(lambda name=name: backend_trainer(name, wl.SWEEP, m, "float64"),
                           max(1, work // m))
    interleave(benchmark, impls, workload=wl.SWEEP, m=m)
