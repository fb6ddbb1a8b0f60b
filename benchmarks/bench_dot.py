"""The lecture's demo: the dot product of two 10^6-element vectors, a Python
for-loop against ``np.dot`` (the lecture measured about 300x), timed
interleaved.

A Numba-compiled loop is the third entry when Numba is installed: the same
for-loop as the first, compiled and SIMD-vectorized.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ._harness import Impl, Trainer, interleave

N = 1_000_000


def python_loop(a, b):
    c = 0.0
    for i in range(len(a)):
        c += a[i] * b[i]
    return c


def _numba_loop():
    try:
        import numba
    except ImportError as exc:
        pytest.skip(f"numba not installed: {exc}")

    @numba.njit(fastmath=True)  # fastmath: lets LLVM reorder the sum into SIMD lanes
    def loop(a, b):
        c = 0.0
        for i in range(a.shape[0]):
            c += a[i] * b[i]
        return c
    return loop


def _dot(make_fn, a, b, expected):
    def make():
        fn = make_fn()
        result = []

        def run(n):
            for _ in range(n):
                result.append(fn(a, b))

        def params():
            # Every product must equal np.dot's to 1e-9 (the loops sum in another order).
            assert all(abs(r - expected) <= 1e-9 * abs(expected) for r in result)
            return [np.array(result)]

        return Trainer(run, params)
    return make


def test_dot(benchmark):
    benchmark.group = "dot-1e6"
    rng = np.random.default_rng(0)
    a, b = rng.random(N), rng.random(N)
    expected = float(np.dot(a, b))
    # The Python loop gets plain floats, as the lecture's loop over a list sees them.
    impls = {"python loop": Impl(_dot(lambda: python_loop, a.tolist(), b.tolist(), expected)),
             "np.dot": Impl(_dot(lambda: np.dot, a, b, expected), 10),
             "numba loop": Impl(_dot(_numba_loop, a, b, expected), 10)}
    # One core for all three, as in the lecture: on a busy 2-core machine a
    # 2-thread BLAS dot waits for its descheduled second thread (10-100x slower).
    with threadpool_limits(limits=1, user_api="blas"):
        interleave(benchmark, impls, n=N, flops=2 * N, bytes=16 * N, blas_threads=1)
