"""Loss functions: the cost J = (1/m) sum of L over examples, and dJ/dZ_L.

``cross_entropy`` is the course's binary cross-entropy for a sigmoid output::

    L(a, y) = -(y log a + (1 - y) log(1 - a))

It is evaluated from the logits Z_L, not from A_L: with a = sigmoid(z),
``L = softplus(z) - y z`` exactly, and softplus(z) = max(z, 0) + log1p(e^-|z|)
never overflows. So the cost stays finite even where A_L rounds to exactly 0
or 1 (|z| > ~37 in float64), where the textbook formula would give log(0).

With a ``softmax`` output (K units, Y one-hot), ``cross_entropy`` is the
categorical cross-entropy ``L = -sum_k y_k log a_k``, again from the logits:
``L = logsumexp(z) - sum_k y_k z_k`` with logsumexp(z) = max(z) +
log(sum_k e^{z_k - max(z)}), which never overflows.

``mse`` is L(a, y) = 1/2 (a - y)^2, for regression with an identity output
(any output activation is allowed; its derivative enters through the chain rule).

Both losses share dJ/dA_L * dA_L/dZ_L = (A_L - Y) for their canonical output;
``cross_entropy`` requires a sigmoid or softmax output, which is where that identity
holds.
:func:`output_delta` is that formula's one home: every Python backend calls it.
"""

import numpy as np

from . import activations as _act

__all__ = ["LOSSES", "CODES", "default_for", "cost", "per_example", "output_delta"]

#: name -> the output activations it pairs with (None: any element-wise one).
LOSSES = {"cross_entropy": ("sigmoid", "softmax"), "mse": None}

#: output-only activation -> the one loss it pairs with.
PAIRS_WITH = {"softmax": "cross_entropy"}

#: name -> small int understood by the compiled kernels. Never renumber.
CODES = {"cross_entropy": 0, "mse": 1}


def default_for(output_activation):
    """The loss ``Network`` picks when ``loss=None``."""
    return "cross_entropy" if output_activation in ("sigmoid", "softmax") else "mse"


def softplus(Z):
    """log(1 + e^z) without overflow."""
    return np.maximum(Z, 0) + np.log1p(np.exp(-np.abs(Z)))


def logsumexp(Z):
    """log sum_k e^{z_k} of each column, shape (1, m), without overflow."""
    top = Z.max(axis=0, keepdims=True)
    return top + np.log(np.sum(np.exp(Z - top), axis=0, keepdims=True))


def per_example(name, AL, ZL, Y, output_activation=None):
    """Loss of each example: shape (n_L, m), or (1, m) for a softmax output."""
    if name == "cross_entropy" and output_activation == "softmax":
        return logsumexp(ZL) - np.sum(Y * ZL, axis=0, keepdims=True)
    if name == "cross_entropy":
        return softplus(ZL) - Y * ZL
    if name == "mse":
        return 0.5 * (AL - Y) ** 2
    raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")


def cost(name, AL, ZL, Y, output_activation=None):
    """J = (1/m) sum over examples (and output units) of L, as a Python float.

    ``output_activation`` matters only for ``cross_entropy``: "softmax" makes
    it the categorical one; anything else the binary one.
    """
    m = Y.shape[1]
    return float(np.sum(per_example(name, AL, ZL, Y, output_activation), dtype=np.float64) / m)


def output_delta(name, output_activation, AL, Y, ZL, derivative=_act.derivative,
                 relu_grad_at_zero=1):
    """dZ_L = m dJ/dZ_L, the start of backpropagation (the 1/m goes on dW and db).

    ``cross_entropy`` on its sigmoid output: dZ_L = A_L - Y exactly (the
    sigmoid's a(1 - a) cancels the loss's 1 / (a(1 - a))); on a softmax
    output, the same (the softmax Jacobian diag(a) - a a^T applied to
    -y / a gives a - y, as the columns of Y sum to 1). ``mse``: dZ_L =
    (A_L - Y) g'(Z_L), where g' = 1 for an identity output is left out.

    Parameters
    ----------
    name : str
        The loss.
    output_activation : str
        The activation g of layer L.
    AL, Y, ZL : ndarray of shape (n_L, m), or floats (one unit, one example)
    derivative : callable, optional
        ``derivative(activation, Z, A, relu_grad_at_zero) -> g'(Z)``; the loops
        oracle passes its scalar one, so this works element by element as well.
    relu_grad_at_zero : {1, 0}
        g'(0) of a ReLU or leaky ReLU output (mse).

    Returns
    -------
    dZ : ndarray of shape (n_L, m) (a new array), or a float
    """
    dZ = AL - Y
    if name == "mse" and output_activation != "identity":
        dZ *= derivative(output_activation, ZL, AL, relu_grad_at_zero)
    return dZ
