"""Small 2-D classification data sets, in the course's layout.

Each data set returns ``X`` of shape (2, m), one column per example, and
``Y`` of shape (1, m) with labels 0/1, from its own seeded generator (global
random state is never touched). :func:`random_mini_batches` cuts any such
``(X, Y)`` into the course's shuffled mini-batches.
"""

import numpy as np

from . import _validation as _v
from . import _validation_optim as _vo

__all__ = ["planar", "moons", "circles", "blobs", "random_mini_batches"]


def _check_m(m, divisor=2):
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < divisor or m % divisor:
        raise ValueError(f"m must be a positive int divisible by {divisor}; got {m!r}")
    return int(m)


def planar(m=400, seed=1):
    """The course's "flower": two petal-shaped classes that no line separates.

    The assignment's procedure exactly: N = m/2 points per class, petal radius
    a = 4, t = linspace(j 3.12, (j+1) 3.12, N) + 0.2 randn, r = a sin(4t) +
    0.2 randn, x = (r sin t, r cos t), drawn from ``RandomState(seed)`` in that
    order. With the defaults, ``X[:, 0]`` is ``[1.20444229, 3.57611415]``.
    """
    m = _check_m(m)
    rs = np.random.RandomState(seed)
    N, a = m // 2, 4
    X = np.zeros((m, 2))
    Y = np.zeros((m, 1))
    for j in range(2):
        ix = slice(N * j, N * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + rs.randn(N) * 0.2
        r = a * np.sin(4 * t) + rs.randn(N) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X.T.copy(), Y.T.copy()


def _shuffled(X, y, rng):
    order = rng.permutation(X.shape[1])
    return np.ascontiguousarray(X[:, order]), y[order].reshape(1, -1).astype(np.float64)


def moons(m=400, noise=0.1, seed=0):
    """Two interleaving half circles, with Gaussian noise of std ``noise``."""
    m = _check_m(m)
    rng = np.random.default_rng(seed)
    t = np.linspace(0, np.pi, m // 2)
    outer = np.vstack([np.cos(t), np.sin(t)])
    inner = np.vstack([1 - np.cos(t), 0.5 - np.sin(t)])
    X = np.hstack([outer, inner]) + rng.normal(scale=noise, size=(2, m))
    y = np.repeat([0, 1], m // 2)
    return _shuffled(X, y, rng)


def circles(m=400, noise=0.05, factor=0.5, seed=0):
    """A small circle (label 1) inside a large one (label 0); radius ratio ``factor``."""
    m = _check_m(m)
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1); got {factor!r}")
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, m // 2, endpoint=False)
    ring = np.vstack([np.cos(t), np.sin(t)])
    X = np.hstack([ring, factor * ring]) + rng.normal(scale=noise, size=(2, m))
    y = np.repeat([0, 1], m // 2)
    return _shuffled(X, y, rng)


def blobs(m=400, std=1.0, seed=0):
    """Two Gaussian blobs of std ``std`` around (-2, -2) and (2, 2)."""
    m = _check_m(m)
    rng = np.random.default_rng(seed)
    centers = np.array([[-2.0, 2.0], [-2.0, 2.0]])  # column j is class j's center
    y = np.repeat([0, 1], m // 2)
    X = centers[:, y] + rng.normal(scale=std, size=(2, m))
    return _shuffled(X, y, rng)


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """The course's mini-batches: shuffle the examples, then cut them in order.

    The permutation is ``RandomState(seed).permutation(m)`` -- the course's
    ``np.random.seed(seed)`` then ``np.random.permutation(m)``, without touching
    the global state -- so the batches are the course's, number for number.

    Parameters
    ----------
    X : array_like of shape (n_x, m)
    Y : array_like of shape (n_y, m), or (m,) taken as (1, m)
        Any real dtype, kept (the course's boolean labels stay boolean).
    mini_batch_size : int >= 1
        The last batch holds the m % mini_batch_size examples left over, if any.
    seed : int in [0, 2**32)

    Returns
    -------
    list of (ndarray of shape (n_x, b), ndarray of shape (n_y, b))
        ceil(m / mini_batch_size) pairs, columns still paired; views of shuffled
        copies (the inputs are not modified).
    """
    X = _vo.check_examples("X", X)
    Y = _vo.check_examples("Y", Y, m=X.shape[1])
    mini_batch_size = _v.check_positive_int("mini_batch_size", mini_batch_size)
    seed = _vo.check_random_state_seed("seed", seed)
    permutation = np.random.RandomState(seed).permutation(X.shape[1])
    shuffled_X, shuffled_Y = X[:, permutation], Y[:, permutation]
    return [(shuffled_X[:, k:k + mini_batch_size], shuffled_Y[:, k:k + mini_batch_size])
            for k in range(0, X.shape[1], mini_batch_size)]
