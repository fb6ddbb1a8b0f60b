"""The ``numba`` backend's page of costs: J = (1/m) sum L, one ``@njit`` kernel
per form, and the weights' 1/S.

::

    cross-entropy   L = softplus(z) - y z (sigmoid), logsumexp(z) - y.z (softmax)
    mse             L = (a - y)^2 / 2
    poisson         L = y log(y/a) - y + a = xlogy(y, y) - y z - y + e^z
    weighted        J = (1/S) sum_j w_j L_j, S = sum_j w_j (J = 0 when S == 0)

Every cost is computed from the logits Z_L where a log of A_L could meet 0,
and summed in float64 whatever the dtype. Weights ``sw`` of None select the
unweighted kernel at compile time (Numba prunes the weighted branch before
typing): bitwise the cost of a fit without weights.
"""

import math

import numpy as np
from numba import njit

from ... import activations as _act
from ... import losses as _loss
from .config import INLINE_OPTS, SERIAL_OPTS

# The registry's codes, frozen into the machine code as constants (as the page's).
SOFTMAX = _act.CODES["softmax"]
CROSS_ENTROPY, POISSON = _loss.CODES["cross_entropy"], _loss.CODES["poisson"]

__all__ = ["inverse_weight", "mean", "poisson_loss", "cost", "softmax_cost"]


@njit(**INLINE_OPTS)
def inverse_weight(sw):
    """``1/S``, S = sum_j w_j of a batch's weights sw (B,) summed in float64; 0.0
    when S == 0 (a batch of zero weights: its cost and gradient are 0)."""
    S = 0.0
    for j in range(sw.shape[0]):
        S += sw[j]
    return 1.0 / S if S > 0.0 else 0.0


@njit(**INLINE_OPTS)
def mean(total, m, sw):
    """``total / m``, or ``total / S`` with weights sw (None: unweighted)."""
    if sw is None:
        return total / m
    return total * inverse_weight(sw)


@njit(**INLINE_OPTS)
def poisson_loss(a, z, y):
    """Half the Poisson deviance ``y log(y/a) - y + a`` of a = e^z: ``xlogy(y, y) - y z
    - y + a`` from the logit z (no log of a, which may round to 0), in float64."""
    y, z = np.float64(y), np.float64(z)
    ylogy = y * math.log(y) if y > 0.0 else 0.0
    return ylogy - y * z - y + np.float64(a)


@njit(**SERIAL_OPTS)
def cost(AL, ZL, Y, loss, code, sw=None):
    """``J = (1/m) sum L``; cross-entropy from the logits ZL (never log(0)). Summed in float64.

    code is the output activation's: softmax makes cross-entropy the categorical
    ``logsumexp(z) - sum_k y_k z_k`` per example (a column), else binary per unit.
    Poisson: :func:`poisson_loss` per unit (a = e^z from the forward). sw (m,)
    or None: the weighted ``J = (1/S) sum_j w_j L_j`` (0 when S == 0).
    """
    n, m = AL.shape
    total = 0.0
    if loss == CROSS_ENTROPY and code == SOFTMAX:
        for j in range(m):
            top = ZL[0, j]
            for i in range(1, n):
                top = max(top, ZL[i, j])
            s = 0.0
            yz = 0.0
            for i in range(n):
                s += math.exp(ZL[i, j] - top)  # in (0, 1], and 1 for the max: no overflow
                yz += Y[i, j] * ZL[i, j]
            L = (top + math.log(s)) - yz
            if sw is None:
                total += L
            else:
                total += sw[j] * L
        return mean(total, m, sw)
    for i in range(n):
        for j in range(m):
            if loss == CROSS_ENTROPY:
                z = ZL[i, j]
                # softplus(z) - y z, softplus(z) = max(z, 0) + log1p(e^-|z|)
                L = (max(z, 0.0) + math.log1p(math.exp(-abs(z)))) - Y[i, j] * z
            elif loss == POISSON:
                L = poisson_loss(AL[i, j], ZL[i, j], Y[i, j])
            else:
                e = AL[i, j] - Y[i, j]
                L = 0.5 * e * e
            if sw is None:
                total += L
            else:
                total += sw[j] * L
    return mean(total, m, sw)


@njit(**INLINE_OPTS)
def softmax_cost(ZL, Y, work, sw=None):
    """:func:`cost` of a softmax output (with cross-entropy) from the forward
    that computed it, without its exps: ``J = (1/m) sum_j (top_j + log total_j -
    sum_k y_kj z_kj)``, work (2, m) still holding that forward's column maxima
    and sums (:func:`softmax`); with weights sw (m,), each column's term times
    w_j and 1/S for 1/m. Summed in float64."""
    n, m = ZL.shape
    top, total = work[0], work[1]
    J = 0.0
    if sw is None:
        for j in range(m):
            J += np.float64(top[j]) + math.log(np.float64(total[j]))
        for i in range(n):
            y, z = Y[i], ZL[i]
            for j in range(m):
                J -= np.float64(y[j]) * np.float64(z[j])
        return J / m
    for j in range(m):
        J += np.float64(sw[j]) * (np.float64(top[j]) + math.log(np.float64(total[j])))
    for i in range(n):
        y, z = Y[i], ZL[i]
        for j in range(m):
            J -= np.float64(sw[j]) * (np.float64(y[j]) * np.float64(z[j]))
    return J * inverse_weight(sw)
