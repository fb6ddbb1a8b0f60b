"""The one home of the helpers tests and benchmarks share: random problems,
relative differences, tolerance assertions and reference runs.

It lives inside the package (not in ``tests/``) because the benchmark suite
travels with the installed package (``fastnn.benchmarks``) and checks every
timed implementation against the same reference. Not public API.
"""

import numpy as np

__all__ = ["binary_data", "regression_data", "network_problem", "rel_diff", "max_rel_diff",
           "assert_close", "reference_params", "train"]


def binary_data(n_x, m, seed=0):
    """X ~ N(0, 1) of shape (n_x, m) and random 0/1 labels of shape (1, m)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_x, m)), (rng.random((1, m)) < 0.5).astype(np.float64)


def regression_data(n_x, m, seed=0):
    """X ~ N(0, 1) of shape (n_x, m) and a smooth target sin(sum x) of shape (1, m)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    return X, np.sin(X.sum(axis=0, keepdims=True))


def network_problem(layer_dims, m, dtype="float64", seed=0, bias_scale=0.0):
    """Data and xavier-initialized parameters for a net of ``layer_dims``.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``.
    m : int
        Number of examples.
    bias_scale : float
        Biases are ``bias_scale * N(0, 1)`` (0: zeros, as the lecture initializes).

    Returns
    -------
    Ws : list of C-contiguous ndarrays of shape (n_l, n_{l-1})
    bs : list of C-contiguous ndarrays of shape (n_l, 1)
    X : ndarray of shape (n_x, m), standard normal
    Y : ndarray of shape (n_L, m), random 0/1
    """
    rng = np.random.default_rng(seed)
    dims = list(layer_dims)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = (rng.random((dims[-1], m)) < 0.5).astype(dtype)
    Ws = [np.ascontiguousarray((rng.standard_normal((dims[l], dims[l - 1]))
                                / np.sqrt(dims[l - 1])).astype(dtype))
          for l in range(1, len(dims))]
    if bias_scale:
        bs = [(bias_scale * rng.standard_normal((n, 1))).astype(dtype) for n in dims[1:]]
    else:
        bs = [np.zeros((n, 1), dtype=dtype) for n in dims[1:]]
    return Ws, bs, X, Y


def rel_diff(a, b):
    """max|a - b| / max|b|: the difference relative to the reference's scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b))) / scale


def max_rel_diff(arrays, refs):
    """The worst :func:`rel_diff` over pairs of arrays (e.g. every W and b)."""
    arrays, refs = list(arrays), list(refs)
    if len(arrays) != len(refs):
        raise ValueError(f"expected as many arrays as references, got {len(arrays)} and "
                         f"{len(refs)}")
    return max((rel_diff(a, r) for a, r in zip(arrays, refs)), default=0.0)


def assert_close(arrays, refs, rtol, what="result"):
    """Assert ``max_rel_diff(arrays, refs) <= rtol``, naming ``what`` if not."""
    diff = max_rel_diff(arrays, refs)
    assert diff <= rtol, f"{what} differs from the reference by {diff:.3g} (> {rtol:g})"
    return diff


_references = {}


def reference_params(layer_dims, acts, m, learning_rate, iterations, *, seed=0,
                     loss="cross_entropy", backend="numpy"):
    """Parameters ``Ws + bs`` after ``iterations`` iterations of ``backend`` (float64)
    on :func:`network_problem` ``(layer_dims, m, seed=seed)``; cached per arguments."""
    from . import backends

    key = (tuple(layer_dims), tuple(acts), m, learning_rate, iterations, seed, loss, backend)
    if key not in _references:
        Ws, bs, X, Y = network_problem(layer_dims, m, "float64", seed)
        train(backends.get(backend), Ws, bs, list(acts), loss, X, Y, learning_rate, iterations,
              iterations, 1, None)
        _references[key] = Ws + bs
    return _references[key]


def train(backend, Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every,
          threads=None, on_cost=None, gram=None, *, relu_grad_at_zero=1, batch_size=None,
          rng=None):
    """Train ``Ws``/``bs`` in place on a backend module through the one driver
    (:func:`fastnn.backends._base.train`), as ``Network.fit`` does but on bare
    arrays; the recorded costs ``[(i, cost)]``. ``on_cost(i, cost)`` returning
    False stops training there."""
    from .backends import _base

    fit = _base.Fit(_base.Problem(X, Y, tuple(acts), loss, int(relu_grad_at_zero)),
                    _base.Schedule(learning_rate, num_iterations, cost_every, batch_size, gram),
                    Ws, bs, rng=rng)
    return _base.train(backend, fit, on_cost or (lambda i, J: True), threads)
