"""Small data makers shared by the tests."""

import numpy as np


def binary_data(n_x, m, seed=0):
    """X ~ N(0, 1) of shape (n_x, m) and random 0/1 labels (1, m)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_x, m)), (rng.random((1, m)) < 0.5).astype(np.float64)


def regression_data(n_x, m, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    return X, np.sin(X.sum(axis=0, keepdims=True))
