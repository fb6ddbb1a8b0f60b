"""One loop over examples, vectorized within each: ``z(i) = W x(i) + b``.

The middle rung of the lecture's ladder: the inner loops over units and
features are gone (NumPy does them), the loop over the m examples remains.
"""

import numpy as np

from .. import activations as _act
from .. import losses as _losses
from .. import regularization as _reg

DESCRIPTION = "a Python loop over examples, NumPy within each example: z(i) = W x(i) + b"
SLOW = True
COMPILED = False
HAS_OPTIMIZERS = True
HAS_SAMPLE_WEIGHT = True
HAS_POISSON = True


def forward(Ws, bs, acts, X, threads=1, dropout=None):
    m = X.shape[1]
    caches = []
    A_prev = X
    for l, (W, b, name) in enumerate(zip(Ws, bs, acts)):
        Z = np.empty((W.shape[0], m), dtype=X.dtype)
        A = np.empty_like(Z)
        mask = None if dropout is None else dropout[l]
        for i in range(m):
            z = W @ A_prev[:, i : i + 1] + b
            Z[:, i : i + 1] = z
            a = _act.forward(name, z)
            if mask is not None:  # inverted dropout of example i's units
                a = _reg.drop(a, mask[0][:, i : i + 1], mask[1])
            A[:, i : i + 1] = a
        caches.append(((A_prev, W, b), Z) if mask is None else ((A_prev, W, b), Z, mask[0]))
        A_prev = A
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=1, relu_grad_at_zero=1, lambd=0.0,
             keep_probs=None, sample_weight=None):
    L = len(caches)
    m = Y.shape[1]
    dWs = [np.zeros_like(cache[0][1]) for cache in caches]
    dbs = [np.zeros_like(cache[0][2]) for cache in caches]
    ZL = caches[-1][1]
    for i in range(m):
        col = slice(i, i + 1)
        dz = _losses.output_delta(loss, acts[-1], AL[:, col], Y[:, col], ZL[:, col],
                                  relu_grad_at_zero=relu_grad_at_zero)
        if sample_weight is not None:  # example i's delta, weighted
            dz = _losses.weight_delta(dz, sample_weight[col])
        for l in range(L - 1, -1, -1):
            (A_prev, W, _), _ = caches[l][:2]
            a_prev = A_prev[:, col]
            dWs[l] += dz @ a_prev.T
            dbs[l] += dz
            if l > 0:
                da = W.T @ dz
                z_prev = caches[l - 1][1][:, col]
                if len(caches[l - 1]) == 3:  # dropout: the mask, and g' at g(z)
                    da = _reg.drop(da, caches[l - 1][2][:, col], keep_probs[l - 1])
                    a_prev = _act.forward(acts[l - 1], z_prev)
                dz = da * _act.derivative(acts[l - 1], z_prev, a_prev, relu_grad_at_zero)
    if sample_weight is not None:  # the weighted mean: over S = sum w(i), not m
        S = _losses.weight_sum(sample_weight)
        scale = _losses.mean_scale(S)
        for dW, db, (_, W, _) in zip(dWs, dbs, (cache[0] for cache in caches)):
            dW *= scale
            if lambd:
                dW += _reg.l2_gradient(W, lambd, S)
            db *= scale
        return dWs, dbs
    for dW, db, (_, W, _) in zip(dWs, dbs, (cache[0] for cache in caches)):
        dW /= m
        if lambd:
            dW += _reg.l2_gradient(W, lambd, m)
        db /= m
    return dWs, dbs
