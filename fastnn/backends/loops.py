"""The lecture's explicit for-loops: the readable oracle, slow on purpose.

Every multiply-add is one Python statement, over examples ``i``, units ``j``
and features ``k`` -- the "for i = 1 to m: z(i) = w^T x(i) + b ...
dw1 += x1(i) dz(i)" slides, generalized to L layers. Arrays are read into
nested Python lists first so each element access is a plain list index.

Scalar activations are written out here rather than borrowed from NumPy, so
this backend checks the others from first principles.
"""

import math

import numpy as np

from .. import activations as _act
from .. import losses

DESCRIPTION = "explicit Python for-loops over examples, units and features (the oracle)"
SLOW = True
COMPILED = False
HAS_OPTIMIZERS = True
HAS_SAMPLE_WEIGHT = True
HAS_POISSON = True


def _sigmoid(z):
    # Two branches so math.exp never overflows (it raises instead of returning inf).
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _exp(z):
    # math.exp raises past e^709 where NumPy's gives inf; inf it is, as NumPy's.
    try:
        return math.exp(z)
    except OverflowError:
        return math.inf


def _relu(z):
    return z if z > 0 else 0.0


def _leaky_relu(z):
    return z if z >= 0 else _act.LEAKY_SLOPE * z


def _relu_prime(z, a, g0):
    if z == 0:
        return float(g0)
    return 1.0 if z > 0 else 0.0


def _leaky_relu_prime(z, a, g0):
    if z == 0:
        return 1.0 if g0 else _act.LEAKY_SLOPE
    return 1.0 if z > 0 else _act.LEAKY_SLOPE


# name -> (g(z), g'(z, a, g0)); derivatives from a where the lecture uses it;
# g0 is relu_grad_at_zero, g'(0) for ReLU and leaky ReLU.
SCALAR = {
    "sigmoid": (_sigmoid, lambda z, a, g0: a * (1.0 - a)),
    "tanh": (math.tanh, lambda z, a, g0: 1.0 - a * a),
    "relu": (_relu, _relu_prime),
    "leaky_relu": (_leaky_relu, _leaky_relu_prime),
    "identity": (lambda z: z, lambda z, a, g0: 1.0),
    "exp": (_exp, lambda z, a, g0: a),
}


def _scalar_derivative(name, z, a, relu_grad_at_zero=1):
    return SCALAR[name][1](z, a, relu_grad_at_zero)


def _softmax_column(z_col):
    """a_k = e^{z_k - max} / sum_j e^{z_j - max} over one example's units."""
    top = z_col[0]
    for z in z_col:
        if z > top:
            top = z
    e = [math.exp(z - top) for z in z_col]
    total = 0.0
    for v in e:
        total += v
    return [v / total for v in e]


def forward(Ws, bs, acts, X, threads=1, dropout=None):
    m = X.shape[1]
    caches = []
    A_prev = X
    for l, (W, b, name) in enumerate(zip(Ws, bs, acts)):
        n, n_prev = W.shape
        w, bias, a_prev = W.tolist(), b.tolist(), A_prev.tolist()
        z_out = [[0.0] * m for _ in range(n)]
        a_out = [[0.0] * m for _ in range(n)]
        for i in range(m):
            for j in range(n):
                z = bias[j][0]
                for k in range(n_prev):
                    z += w[j][k] * a_prev[k][i]
                z_out[j][i] = z
            if name == "softmax":  # over the units of example i
                a_col = _softmax_column([z_out[j][i] for j in range(n)])
            else:
                a_col = [SCALAR[name][0](z_out[j][i]) for j in range(n)]
            for j in range(n):
                a_out[j][i] = a_col[j]
        Z = np.array(z_out, dtype=X.dtype)
        if dropout is not None and dropout[l] is not None:
            # Inverted dropout, one unit at a time: a = a * d / keep_prob.
            D, keep_prob = dropout[l]
            d = D.tolist()
            for j in range(n):
                for i in range(m):
                    a_out[j][i] = a_out[j][i] * d[j][i] / keep_prob
            caches.append(((A_prev, W, b), Z, D))
        else:
            caches.append(((A_prev, W, b), Z))
        A_prev = np.array(a_out, dtype=X.dtype)
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=1, relu_grad_at_zero=1, lambd=0.0,
             keep_probs=None, sample_weight=None):
    L = len(caches)
    m = Y.shape[1]
    dtype = AL.dtype
    dWs, dbs = [None] * L, [None] * L

    # Output layer: dz(i) = a(i) - y(i) for the canonical pairs, times g'(z)
    # when mse sits on a non-identity output -- one scalar at a time.
    a, y, z = AL.tolist(), Y.tolist(), caches[-1][1].tolist()
    dz = [[0.0] * m for _ in range(len(a))]
    for j in range(len(a)):
        for i in range(m):
            dz[j][i] = losses.output_delta(loss, acts[-1], a[j][i], y[j][i], z[j][i],
                                           _scalar_derivative, relu_grad_at_zero)

    # Per-example weights: dz(i) *= w(i), and the means divide by S = sum w(i)
    # instead of m -- as scale = 1 / S, 0 for a batch whose weights are all 0.
    weighted = sample_weight is not None
    if weighted:
        sw = sample_weight.tolist()
        S = 0.0
        for i in range(m):
            S += sw[i]
        scale = 1.0 / S if S > 0 else 0.0
        for j in range(len(a)):
            for i in range(m):
                dz[j][i] *= sw[i]

    for l in range(L - 1, -1, -1):
        (A_prev, W, _), _ = caches[l][:2]
        n, n_prev = W.shape
        w, a_prev = W.tolist(), A_prev.tolist()
        dw = [[0.0] * n_prev for _ in range(n)]
        db = [[0.0] for _ in range(n)]
        for i in range(m):
            for j in range(n):
                for k in range(n_prev):
                    dw[j][k] += a_prev[k][i] * dz[j][i]
                db[j][0] += dz[j][i]
        for j in range(n):
            for k in range(n_prev):
                if weighted:  # dw = (sum_i w(i) ... + lambda w) / S
                    dw[j][k] = dw[j][k] * scale + lambd * scale * w[j][k]
                else:
                    dw[j][k] /= m
                    dw[j][k] += lambd / m * w[j][k]  # L2: dw += (lambda / m) w
            db[j][0] = db[j][0] * scale if weighted else db[j][0] / m
        dWs[l] = np.array(dw, dtype=dtype)
        dbs[l] = np.array(db, dtype=dtype)

        if l > 0:
            # dz_prev(i) = (W^T dz(i)) * g'(z_prev(i))
            g_prime = SCALAR[acts[l - 1]][1]
            g0 = relu_grad_at_zero
            z_prev = caches[l - 1][1].tolist()
            dropped = len(caches[l - 1]) == 3
            if dropped:  # the mask of layer l - 1, and g' at g(z), not at the scaled a
                d, keep_prob = caches[l - 1][2].tolist(), keep_probs[l - 1]
                g = SCALAR[acts[l - 1]][0]
            dz_prev = [[0.0] * m for _ in range(n_prev)]
            for i in range(m):
                for k in range(n_prev):
                    da = 0.0
                    for j in range(n):
                        da += w[j][k] * dz[j][i]
                    a = a_prev[k][i]
                    if dropped:
                        da = da * d[k][i] / keep_prob
                        a = g(z_prev[k][i])
                    dz_prev[k][i] = da * g_prime(z_prev[k][i], a, g0)
            dz = dz_prev
    return dWs, dbs
