"""Vectorized NumPy: the lecture's ``Z = W X + b`` across all m examples at once.

The baseline every compiled backend must beat, so it wastes nothing it need
not: the activation derivative reuses the stored A (sigmoid' = A(1 - A),
tanh' = 1 - A^2), the output layer uses dZ_L = A_L - Y directly (its
canonical loss/activation pair, :func:`fastnn.losses.output_delta`), and
in-place operations avoid temporaries.

Its products run on the BLAS in NumPy's wheel, whose threads the driver sizes
(``AUTO_THREADS_MIN_WORK``: a second thread only from that much work per
step). Measured on a quiet 2-core Zen 4: 16 digits fits (64-64-10, batches of
200: 1.1e6 units) took 16.5 s one after the other on two BLAS threads, 11.8 s
of one-thread work side by side in two processes; the grid search's batches
of 64 and 256 (1.5e6, 5.8e6) 18.3 s against 17.4 s. On a busy machine a full
batch of 209 cat images (5.1e7) ran 1.3x faster on two threads.
"""

from .. import activations as _act
from .. import losses as _losses
from .. import regularization as _reg

DESCRIPTION = "vectorized NumPy across examples: Z = W X + b (BLAS GEMM)"
SLOW = False
COMPILED = False
HAS_OPTIMIZERS = True
HAS_SAMPLE_WEIGHT = True
HAS_POISSON = True
AUTO_THREADS_MIN_WORK = {"full": 5e6, "batch": 1e7}


def forward(Ws, bs, acts, X, threads=1, dropout=None):
    caches = []
    A = X
    for l, (W, b, name) in enumerate(zip(Ws, bs, acts)):
        Z = W @ A
        Z += b
        A_prev, A = A, _act.forward(name, Z)
        if dropout is not None and dropout[l] is not None:
            D, keep_prob = dropout[l]
            A = _reg.drop(A, D, keep_prob)
            caches.append(((A_prev, W, b), Z, D))
        else:
            caches.append(((A_prev, W, b), Z))
    return A, caches


def backward(AL, Y, caches, acts, loss, threads=1, relu_grad_at_zero=1, lambd=0.0,
             keep_probs=None, sample_weight=None):
    L = len(caches)
    m = Y.shape[1]
    dWs, dbs = [None] * L, [None] * L
    dZ = _losses.output_delta(loss, acts[-1], AL, Y, caches[-1][1],
                              relu_grad_at_zero=relu_grad_at_zero)
    if sample_weight is not None:  # dZ_L[:, i] *= w_i; the means over S = sum w_i
        dZ = _losses.weight_delta(dZ, sample_weight)
        S = _losses.weight_sum(sample_weight)
        scale = _losses.mean_scale(S)
    for l in range(L - 1, -1, -1):
        (A_prev, W, _), _Z = caches[l][:2]
        if sample_weight is None:
            dWs[l] = (dZ @ A_prev.T) / m
            if lambd:
                dWs[l] += _reg.l2_gradient(W, lambd, m)
            dbs[l] = dZ.sum(axis=1, keepdims=True) / m
        else:
            dWs[l] = (dZ @ A_prev.T) * scale
            if lambd:
                dWs[l] += _reg.l2_gradient(W, lambd, S)
            dbs[l] = dZ.sum(axis=1, keepdims=True) * scale
        if l > 0:
            dA_prev = W.T @ dZ
            Z_prev = caches[l - 1][1]
            if len(caches[l - 1]) == 3:  # dropout on layer l - 1: its mask, then g' of g(Z)
                dA_prev = _reg.drop(dA_prev, caches[l - 1][2], keep_probs[l - 1])
                A_prev = _act.forward(acts[l - 1], Z_prev)
            dA_prev *= _act.derivative(acts[l - 1], Z_prev, A_prev, relu_grad_at_zero)
            dZ = dA_prev
    return dWs, dbs
