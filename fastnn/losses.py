"""Loss functions: the cost J = (1/m) sum of L over examples, and dJ/dZ_L.

``cross_entropy`` is the course's binary cross-entropy for a sigmoid output::

    L(a, y) = -(y log a + (1 - y) log(1 - a))

It is evaluated from the logits Z_L, not from A_L: with a = sigmoid(z),
``L = softplus(z) - y z`` exactly, and softplus(z) = max(z, 0) + log1p(e^-|z|)
never overflows. So the cost stays finite even where A_L rounds to exactly 0
or 1 (|z| > ~37 in float64), where the textbook formula would give log(0).

``mse`` is L(a, y) = 1/2 (a - y)^2, for regression with an identity output
(any output activation is allowed; its derivative enters through the chain rule).

Both losses share dJ/dA_L * dA_L/dZ_L = (A_L - Y) for their canonical output;
``cross_entropy`` requires a sigmoid output, which is where that identity holds.
:func:`output_delta` is that formula's one home: every Python backend calls it.
"""

import numpy as np

from . import activations as _act

__all__ = ["LOSSES", "CODES", "default_for", "cost", "per_example", "output_delta"]

#: name -> the output activation it pairs with (None: any).
LOSSES = {"cross_entropy": "sigmoid", "mse": None}

#: name -> small int understood by the compiled kernels. Never renumber.
CODES = {"cross_entropy": 0, "mse": 1}


def default_for(output_activation):
    """The loss ``Network`` picks when ``loss=None``."""
    return "cross_entropy" if output_activation == "sigmoid" else "mse"


def softplus(Z):
    """log(1 + e^z) without overflow."""
    return np.maximum(Z, 0) + np.log1p(np.exp(-np.abs(Z)))


def per_example(name, AL, ZL, Y):
    """Loss of each example, shape (n_L, m)."""
    if name == "cross_entropy":
        return softplus(ZL) - Y * ZL
    if name == "mse":
        return 0.5 * (AL - Y) ** 2
    raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")


def cost(name, AL, ZL, Y):
    """J = (1/m) sum over examples (and output units) of L, as a Python float."""
    m = Y.shape[1]
    return float(np.sum(per_example(name, AL, ZL, Y), dtype=np.float64) / m)


def output_delta(name, output_activation, AL, Y, ZL, derivative=_act.derivative):
    """dZ_L = m dJ/dZ_L, the start of backpropagation (the 1/m goes on dW and db).

    ``cross_entropy`` on its sigmoid output: dZ_L = A_L - Y exactly (the
    sigmoid's a(1 - a) cancels the loss's 1 / (a(1 - a))). ``mse``: dZ_L =
    (A_L - Y) g'(Z_L), where g' = 1 for an identity output is left out.

    Parameters
    ----------
    name : str
        The loss.
    output_activation : str
        The activation g of layer L.
    AL, Y, ZL : ndarray of shape (n_L, m), or floats (one unit, one example)
    derivative : callable, optional
        ``derivative(activation, Z, A) -> g'(Z)``; the loops oracle passes its
        scalar one, so this works element by element as well.

    Returns
    -------
    dZ : ndarray of shape (n_L, m) (a new array), or a float
    """
    dZ = AL - Y
    if name == "mse" and output_activation != "identity":
        dZ *= derivative(output_activation, ZL, AL)
    return dZ
