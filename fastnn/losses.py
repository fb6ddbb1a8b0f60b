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

``poisson`` is scikit-learn's half Poisson deviance for an ``exp`` output
(a = e^z, the log link), per example and output unit::

    L(a, y) = y log(y / a) - y + a,   with y log(y / a) = 0 at y = 0

again from the logits: ``L = xlogy(y, y) - y z - y + e^z`` (no log of a
rounded a). Y >= 0 (counts, rates).

The losses share dJ/dA_L * dA_L/dZ_L = (A_L - Y) for their canonical output;
``cross_entropy`` requires a sigmoid or softmax output, ``poisson`` an exp
output, which is where that identity holds.
:func:`output_delta` is that formula's one home: every Python backend calls it.

Per-example weights w_i >= 0 (``sample_weight``, scikit-learn's) turn the mean
over a batch into a weighted one: J_w = (1/S) sum_i w_i L_i with S = sum_i w_i,
and dZ_L's column i is multiplied by w_i (:func:`weight_delta`) while dW and
db divide by S instead of m (:func:`mean_scale`). A batch whose weights sum to
0 has loss and gradient 0 (scikit-learn would divide by zero).
"""

import numpy as np

from . import activations as _act

__all__ = ["LOSSES", "CODES", "PAIRS_WITH", "default_for", "cost", "per_example",
           "output_delta", "weight_sum", "mean_scale", "weight_delta"]

#: name -> the output activations it pairs with (None: any element-wise one).
LOSSES = {"cross_entropy": ("sigmoid", "softmax"), "mse": None, "poisson": ("exp",)}

#: output-only activation -> the one loss it pairs with.
PAIRS_WITH = {"softmax": "cross_entropy", "exp": "poisson"}

#: name -> small int understood by the compiled kernels. Never renumber.
CODES = {"cross_entropy": 0, "mse": 1, "poisson": 2}


def default_for(output_activation):
    """The loss ``Network`` picks when ``loss=None``."""
    if output_activation in PAIRS_WITH:
        return PAIRS_WITH[output_activation]
    return "cross_entropy" if output_activation == "sigmoid" else "mse"


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
    if name == "poisson":
        from scipy.special import xlogy  # 0 at y = 0, as the deviance's limit

        return xlogy(Y, Y) - Y * ZL - Y + np.exp(ZL)
    raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")


def cost(name, AL, ZL, Y, output_activation=None, sample_weight=None):
    """J = (1/m) sum over examples (and output units) of L, as a Python float.

    ``output_activation`` matters only for ``cross_entropy``: "softmax" makes
    it the categorical one; anything else the binary one. With
    ``sample_weight`` (shape (m,), w_i >= 0) the weighted mean
    J_w = (1/S) sum_i w_i L_i, S = sum_i w_i (0 when S == 0).
    """
    losses = per_example(name, AL, ZL, Y, output_activation)
    if sample_weight is None:
        m = Y.shape[1]
        return float(np.sum(losses, dtype=np.float64) / m)
    # Each example's loss (summed over output units) in float64, then weighted.
    per = np.sum(losses, axis=0, dtype=np.float64)
    return float(per @ np.asarray(sample_weight, dtype=np.float64)) \
        * mean_scale(weight_sum(sample_weight))


def weight_sum(sample_weight):
    """S = sum_i w_i, in float64: what a weighted mean over the batch divides by."""
    return float(np.sum(sample_weight, dtype=np.float64))


def mean_scale(S):
    """1 / S, the weighted mean's factor on dW, db and the cost; 0 when S == 0
    (a mini-batch whose weights are all 0 has loss and gradient 0)."""
    return 1.0 / S if S > 0 else 0.0


def weight_delta(dZ, sample_weight):
    """dZ[:, i] *= w_i in place, for each example i of the batch: the weighted
    output delta (every layer's dW and db then carry w_i through
    backpropagation). ``dZ`` (n_L, m), ``sample_weight`` (m,); returns dZ."""
    dZ *= sample_weight
    return dZ


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
