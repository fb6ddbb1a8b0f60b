"""The lecture's demo: the dot product of two 10^6-element vectors, a Python
for-loop against ``np.dot`` (the lecture measured about 300x).

A Numba-compiled loop is the third entry when Numba is installed: the same
for-loop as the first, compiled and SIMD-vectorized.
"""

import numpy as np
import pytest

N = 1_000_000


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    a, b = rng.random(N), rng.random(N)
    return a, b, float(np.dot(a, b))


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


@pytest.mark.parametrize("impl", ["python loop", "np.dot", "numba loop"])
def test_dot(benchmark, vectors, impl):
    a, b, expected = vectors
    benchmark.group = "dot-1e6"
    if impl == "python loop":
        # Plain Python floats, as the lecture's loop over a list would see them.
        a, b = a.tolist(), b.tolist()
        fn = python_loop
    elif impl == "np.dot":
        fn = np.dot
    else:
        fn = _numba_loop()
        fn(a[:8], b[:8])  # JIT compile outside the timer
    benchmark.extra_info.update(impl=impl, n=N, flops=2 * N, bytes=16 * N, iterations=1)
    result = benchmark(fn, a, b)
    assert abs(result - expected) <= 1e-9 * abs(expected)
