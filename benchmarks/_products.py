"""The products of an epoch alone: the time floor the speed goals are held to.

An epoch of mini-batch training takes, per batch, the products
Z = W A and dW = dZ Aᵀ of every layer and dA = Wᵀ dZ of all but the first
(what :func:`fastnn.report.workloads.flops` counts). Run alone -- through
NumPy's BLAS on one thread, into preallocated arrays, with no gather,
activation, loss or update between them -- they take the least time any
epoch on one thread can take with that BLAS: where a goal allows less, it is
below that floor. Used by the Adam group (:mod:`.bench_optimizers`) and the
drop-in's epoch groups (:mod:`.bench_dropin`).
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["epoch_products", "products_seconds"]


def epoch_products(layer_dims, m, batch_size):
    """The products of an epoch of m examples at ``batch_size`` (the last
    batch smaller; ``batch_size = m``: one full-batch evaluation), as
    ``(M, N, K)`` of C = A (M, K) B (K, N), each with how many steps take it."""
    sizes = {batch_size: m // batch_size}
    if m % batch_size:
        sizes[m % batch_size] = 1
    out = []
    for b, steps in sizes.items():
        for l in range(1, len(layer_dims)):
            n, n_prev = layer_dims[l], layer_dims[l - 1]
            out += [((n, b, n_prev), steps), ((n, n_prev, b), steps)]
            if l > 1:
                out.append(((n_prev, b, n), steps))
    return out


def products_seconds(layer_dims, m, batch_size, dtype, rounds=5, seed=0):
    """Seconds of an epoch's products alone (:func:`epoch_products`), one
    thread of BLAS (``np.matmul``, about a microsecond of Python per call
    included): the best of ``rounds`` epochs."""
    rng = np.random.default_rng(seed)
    calls = []
    for (M, N, K), steps in epoch_products(layer_dims, m, batch_size):
        A = rng.standard_normal((M, K)).astype(dtype)
        B = rng.standard_normal((K, N)).astype(dtype)
        calls.append((A, B, np.empty((M, N), dtype), steps))
    best = float("inf")
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(rounds):
            start = time.perf_counter()
            for A, B, C, steps in calls:
                for _ in range(steps):
                    np.matmul(A, B, out=C)
            best = min(best, time.perf_counter() - start)
    return best
