"""The course's activation functions and their derivatives, once, by name.

Every backend implements the same math; this module is the reference the
NumPy backend uses directly and the compiled backends are tested against.

Each entry pairs ``g(z)`` with ``g'`` written the way the lecture writes it:
from the stored activation ``a = g(z)`` where an identity allows it
(sigmoid' = a(1 - a), tanh' = 1 - a^2), so the backward pass reuses A instead
of recomputing g. ReLU and leaky ReLU use the lecture's convention g'(0) = 1.

The integer ``CODES`` are how compiled kernels (Numba, Cython) receive an
activation: they switch on a small int, never on a string.
"""

import numpy as np

__all__ = ["ACTIVATIONS", "CODES", "LEAKY_SLOPE", "names", "forward", "derivative"]

LEAKY_SLOPE = 0.01


def sigmoid(Z):
    # 1 / (1 + e^-z) is exact in the limits: e^1000 -> inf gives 0, e^-1000 -> 0
    # gives 1. Only the overflow *warning* is spurious, so silence just that.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-Z))


def sigmoid_prime(Z, A):
    return A * (1 - A)


def tanh(Z):
    return np.tanh(Z)


def tanh_prime(Z, A):
    return 1 - A * A


def relu(Z):
    return np.maximum(Z, 0)


def relu_prime(Z, A):
    # g'(0) = 1 by the lecture's convention.
    return (Z >= 0).astype(Z.dtype)


def leaky_relu(Z):
    return np.where(Z >= 0, Z, LEAKY_SLOPE * Z)


def leaky_relu_prime(Z, A):
    return np.where(Z >= 0, 1, LEAKY_SLOPE).astype(Z.dtype)


def identity(Z):
    return Z.copy()


def identity_prime(Z, A):
    return np.ones_like(Z)


#: name -> (g, g') with g'(Z, A) taking both so each can use whichever is cheaper.
ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "relu": (relu, relu_prime),
    "leaky_relu": (leaky_relu, leaky_relu_prime),
    "identity": (identity, identity_prime),
}

#: name -> small int understood by the compiled kernels. Never renumber.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "identity": 4}


def names():
    """Names of the supported activations, in a stable order."""
    return list(ACTIVATIONS)


def forward(name, Z):
    """``g(Z)`` for the activation called ``name``."""
    return ACTIVATIONS[name][0](Z)


def derivative(name, Z, A):
    """``g'(Z)`` for the activation called ``name``, given ``A = g(Z)``."""
    return ACTIVATIONS[name][1](Z, A)
