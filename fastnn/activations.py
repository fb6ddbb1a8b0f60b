"""The course's activation functions and their derivatives, once, by name.

Every backend implements the same math; this module is the reference the
NumPy backend uses directly and the compiled backends are tested against.

Each entry pairs ``g(z)`` with ``g'`` written the way the lecture writes it:
from the stored activation ``a = g(z)`` where an identity allows it
(sigmoid' = a(1 - a), tanh' = 1 - a^2), so the backward pass reuses A instead
of recomputing g.

ReLU and leaky ReLU have no derivative at 0; which one-sided value a backward
pass uses there is a convention, ``relu_grad_at_zero``: 1 (the right-hand
derivative) as the lecture's slides write it and fastnn's default, or 0 (the
left-hand one: 0 for ReLU, the slope for leaky ReLU) as the course's assignment
code (``dZ[Z <= 0] = 0``), PyTorch, JAX and scikit-learn do.

``softmax`` is the one activation that is not element-wise: each column (one
example) is normalized over the units, ``a_k = e^{z_k} / sum_j e^{z_j}``. It is
an output activation only, paired with the categorical cross-entropy, where
dZ_L = A_L - Y (:func:`fastnn.losses.output_delta`); so it has no
element-wise derivative here.

``exp`` (g(z) = e^z, g'(z) = e^z = a) is an output activation only too: the
inverse of the log link of Poisson regression, paired with the ``poisson``
loss, where again dZ_L = A_L - Y (scikit-learn's ``MLPRegressor(loss="poisson")``).

The integer ``CODES`` are how compiled kernels (Numba, Cython) receive an
activation: they switch on a small int, never on a string.
"""

import numpy as np

__all__ = ["ACTIVATIONS", "CODES", "LEAKY_SLOPE", "OUTPUT_ONLY", "RELU_GRAD_AT_ZERO", "names",
           "forward", "derivative"]

LEAKY_SLOPE = 0.01

#: The values ``relu_grad_at_zero`` may take (see the module docstring).
RELU_GRAD_AT_ZERO = (1, 0)


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


def relu_prime(Z, A, relu_grad_at_zero=1):
    return (Z >= 0 if relu_grad_at_zero else Z > 0).astype(Z.dtype)


def leaky_relu(Z):
    return np.where(Z >= 0, Z, LEAKY_SLOPE * Z)


def leaky_relu_prime(Z, A, relu_grad_at_zero=1):
    return np.where(Z >= 0 if relu_grad_at_zero else Z > 0, 1, LEAKY_SLOPE).astype(Z.dtype)


def identity(Z):
    return Z.copy()


def identity_prime(Z, A):
    return np.ones_like(Z)


def softmax(Z):
    # Subtracting each column's max changes nothing in exact arithmetic and
    # keeps every e^z in (0, 1]: no overflow, and the sum is at least 1.
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    E /= E.sum(axis=0, keepdims=True)
    return E


def softmax_prime(Z, A):
    raise ValueError("softmax has no element-wise derivative: it is an output activation, "
                     "paired with cross_entropy, where dZ_L = A_L - Y")


def exp(Z):
    return np.exp(Z)


def exp_prime(Z, A):
    return A.copy()  # d/dz e^z = e^z = a


#: name -> (g, g') with g'(Z, A) taking both so each can use whichever is cheaper.
ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "relu": (relu, relu_prime),
    "leaky_relu": (leaky_relu, leaky_relu_prime),
    "identity": (identity, identity_prime),
    "softmax": (softmax, softmax_prime),
    "exp": (exp, exp_prime),
}

#: Activations only the output layer may use.
OUTPUT_ONLY = ("softmax", "exp")

#: name -> small int understood by the compiled kernels. Never renumber.
CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "identity": 4, "softmax": 5,
         "exp": 6}


def names(output=False):
    """Names of the activations any layer may use, in a stable order; with
    ``output=True`` also those only the output layer may use (softmax, exp)."""
    return [n for n in ACTIVATIONS if output or n not in OUTPUT_ONLY]


def forward(name, Z):
    """``g(Z)`` for the activation called ``name``."""
    return ACTIVATIONS[name][0](Z)


def derivative(name, Z, A, relu_grad_at_zero=1):
    """``g'(Z)`` for the activation called ``name``, given ``A = g(Z)``;
    ``relu_grad_at_zero`` (1 or 0) is g'(0)'s convention for ReLU and leaky ReLU."""
    if name in ("relu", "leaky_relu"):
        return ACTIVATIONS[name][1](Z, A, relu_grad_at_zero)
    return ACTIVATIONS[name][1](Z, A)
