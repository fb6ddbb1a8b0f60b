"""Problems and run comparisons the numba backend's test files share."""

import numpy as np

from fastnn._testing import network_problem, train


def problem(dims, m, dtype=np.float64, seed=0):
    return network_problem(dims, m, dtype, seed, bias_scale=0.1)


def train_run(backend, dims, acts, loss, m, num_iterations=300, threads=None, dtype=np.float64,
              on_cost=None):
    """``(costs, Ws, bs)`` after a full-batch fit on :func:`problem` through the driver."""
    Ws, bs, X, Y = problem(dims, m, dtype)
    costs = train(backend, Ws, bs, acts, loss, X, Y, 0.05, num_iterations, 50, threads, on_cost)
    return costs, Ws, bs


def assert_same_run(run, ref, rtol):
    (c, params), (c0, params0) = run, ref
    assert [i for i, _ in c] == [i for i, _ in c0]
    np.testing.assert_allclose([j for _, j in c], [j for _, j in c0], rtol=rtol)
    for p, p0 in zip(params, params0):
        np.testing.assert_allclose(p, p0, rtol=rtol, atol=rtol * np.abs(p0).max())


def softmax_problem(dims, m, dtype=np.float64, seed=0):
    """A network problem with one-hot Y over dims[-1] classes."""
    Ws, bs, X, _ = network_problem(dims, m, dtype, seed, bias_scale=0.1)
    labels = np.random.default_rng(seed + 100).integers(0, dims[-1], m)
    return Ws, bs, X, np.eye(dims[-1], dtype=dtype)[:, labels]
