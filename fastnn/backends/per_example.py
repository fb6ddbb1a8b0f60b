"""One loop over examples, vectorized within each: ``z(i) = W x(i) + b``.

The middle rung of the lecture's ladder: the inner loops over units and
features are gone (NumPy does them), the loop over the m examples remains.
"""

import numpy as np

from .. import activations as _act
from .. import losses as _losses

DESCRIPTION = "a Python loop over examples, NumPy within each example: z(i) = W x(i) + b"
SLOW = True
COMPILED = False
HAS_GRAM = False


def forward(Ws, bs, acts, X, threads=1):
    m = X.shape[1]
    caches = []
    A_prev = X
    for W, b, name in zip(Ws, bs, acts):
        Z = np.empty((W.shape[0], m), dtype=X.dtype)
        A = np.empty_like(Z)
        for i in range(m):
            z = W @ A_prev[:, i : i + 1] + b
            Z[:, i : i + 1] = z
            A[:, i : i + 1] = _act.forward(name, z)
        caches.append(((A_prev, W, b), Z))
        A_prev = A
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=1, relu_grad_at_zero=1):
    L = len(caches)
    m = Y.shape[1]
    dWs = [np.zeros_like(cache[0][1]) for cache in caches]
    dbs = [np.zeros_like(cache[0][2]) for cache in caches]
    ZL = caches[-1][1]
    for i in range(m):
        col = slice(i, i + 1)
        dz = _losses.output_delta(loss, acts[-1], AL[:, col], Y[:, col], ZL[:, col],
                                  relu_grad_at_zero=relu_grad_at_zero)
        for l in range(L - 1, -1, -1):
            (A_prev, W, _), _ = caches[l]
            a_prev = A_prev[:, col]
            dWs[l] += dz @ a_prev.T
            dbs[l] += dz
            if l > 0:
                dz = (W.T @ dz) * _act.derivative(acts[l - 1], caches[l - 1][1][:, col], a_prev,
                                                  relu_grad_at_zero)
    for dW, db in zip(dWs, dbs):
        dW /= m
        db /= m
    return dWs, dbs
