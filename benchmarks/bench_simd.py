"""SIMD ablations: the same compiled kernels with auto-vectorization off vs on,
float64 vs float32 (twice the lanes per register), 1 vs 2 threads.

Numba's switch is ``NUMBA_LOOP_VECTORIZE=0 NUMBA_SLP_VECTORIZE=0``, read at
import, so both variants run in a worker subprocess (``fastnn.report._worker``,
with a private ``NUMBA_CACHE_DIR`` so no cached vectorized code is reused) and
the parent times each ``run N`` round trip. Cython's switch is a second build of
the kernels without auto-vectorization (``-fno-tree-vectorize``, scalar libm),
shipped beside the normal one and selected with ``use_variant("novec")``.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from _harness import MODE, backend_trainer, ci, require_backend, time_training
from fastnn.report import workloads as wl


def _ablation_m(benchmark):
    """planar 2-4-1 at large m: elementwise activation work dominates."""
    return 2_000 if ci(benchmark) else (20_000 if MODE == "quick" else 100_000)


def _wide_m(benchmark):
    return 2_000 if ci(benchmark) or MODE == "quick" else wl.WORKLOADS["wide"].m


class Worker:
    """A ``fastnn.report._worker`` subprocess; ``run(n)`` trains n iterations there."""

    def __init__(self, backend, workload, m, dtype, env, fresh_cache):
        self.cache = tempfile.TemporaryDirectory(prefix="fastnn-numba-cache-")
        env = {**os.environ, **env}
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = self.cache.name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastnn.report._worker", backend, workload.name, str(m), dtype],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"worker for {backend} exited with {self.proc.wait()}")
        self.ready = json.loads(line)

    def _ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def run(self, n):
        assert self._ask(f"run {n}").strip() == "done"

    def params(self):
        return [np.array(p) for p in json.loads(self._ask("params"))]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        self.cache.cleanup()


@pytest.mark.parametrize("vectorize", ["on", "off"])
def test_vectorize_numba(benchmark, vectorize):
    require_backend("numba")
    benchmark.group = "simd-vectorize-numba"
    m = _ablation_m(benchmark)
    flag = "1" if vectorize == "on" else "0"
    worker = Worker("numba", wl.SWEEP, m, "float64",
                    {"NUMBA_LOOP_VECTORIZE": flag, "NUMBA_SLP_VECTORIZE": flag},
                    # Cached kernels were compiled vectorized: "off" must not reuse them.
                    fresh_cache=vectorize == "off")
    try:
        iterations = 1 if ci(benchmark) else max(1, 200_000 // m)
        benchmark.extra_info.update(
            impl=f"numba vectorize {vectorize}", backend="numba", variant=vectorize,
            workload="sweep", m=m, dtype="float64", iterations=iterations,
            flops=wl.flops(wl.SWEEP, m), bytes=wl.min_bytes(wl.SWEEP, m),
            first_call_s=worker.ready["first_call_s"], simd_evidence=worker.ready["simd_evidence"])
        benchmark(worker.run, iterations)
        params = worker.params()
    finally:
        worker.close()
    assert all(np.all(np.isfinite(p)) for p in params)


@pytest.mark.parametrize("vectorize", ["on", "off"])
def test_vectorize_cython(benchmark, vectorize):
    benchmark.group = "simd-vectorize-cython"
    backend = require_backend("cython")
    if not hasattr(backend, "use_variant"):
        pytest.skip("cython backend has no use_variant() to select the novec build")
    m = _ablation_m(benchmark)
    Ws, bs, acts, X, Y = wl.problem(wl.SWEEP, m)
    previous = backend.variant()
    try:
        backend.use_variant("vec" if vectorize == "on" else "novec")
    except ValueError as exc:
        pytest.skip(f"cython novec build unavailable: {exc}")

    def run(n):
        backend.train(Ws, bs, acts, "cross_entropy", X, Y, wl.SWEEP.learning_rate, n, n, None, None)

    try:
        iterations = 1 if ci(benchmark) else max(1, 200_000 // m)
        benchmark.extra_info.update(
            impl=f"cython vectorize {vectorize}", backend="cython", variant=vectorize,
            workload="sweep", m=m, dtype="float64", iterations=iterations,
            flops=wl.flops(wl.SWEEP, m), bytes=wl.min_bytes(wl.SWEEP, m))
        run(1)
        benchmark(run, iterations)
    finally:
        backend.use_variant(previous)
    assert all(np.all(np.isfinite(p)) for p in Ws + bs)


COMPILED = ["numpy", "numba", "cython"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("name", ["wide", "sweep"])
def test_dtype(benchmark, name, backend, dtype):
    workload = wl.WORKLOADS.get(name, wl.SWEEP)
    benchmark.group = f"simd-dtype-{name}"
    m = _ablation_m(benchmark) if name == "sweep" else _wide_m(benchmark)
    iterations = 1 if name == "wide" else max(1, 200_000 // m)
    make = lambda: backend_trainer(backend, workload, m, dtype, None)  # noqa: E731
    time_training(benchmark, make, workload, m=m, iterations=iterations, impl=backend, dtype=dtype)
    benchmark.extra_info["variant"] = dtype


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", COMPILED)
def test_threads(benchmark, backend, threads):
    workload = wl.WORKLOADS["wide"]
    benchmark.group = "simd-threads-wide"
    m = _wide_m(benchmark)
    make = lambda: backend_trainer(backend, workload, m, "float64", threads)  # noqa: E731
    if backend == "numpy":
        # NumPy's threads are OpenBLAS's; the backend ignores ``threads``.
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=threads, user_api="blas"):
            time_training(benchmark, make, workload, m=m, impl=backend, threads=threads)
    else:
        time_training(benchmark, make, workload, m=m, impl=backend, threads=threads)
    benchmark.extra_info["variant"] = f"{threads} thread{'s' if threads > 1 else ''}"
