"""The ``numba`` backend's page of the course's second part: the optimizers'
update, L2's gradient term and inverted dropout's masks, one ``@njit`` kernel
per formula.

Read top to bottom::

    L2          g = dW + (lambd / m) W   (b: g = db)              update_parameters
    gd          W = W - lr g                                      update_parameters
    momentum    v = beta v + (1 - beta) g;  W = W - lr v          update_parameters
    rmsprop     s = beta s + (1 - beta) g^2;  W = W - lr g / (sqrt(s) + eps)
    adam        v, s as above (beta1, beta2);  v^ = v / (1 - beta1^t);
                s^ = s / (1 - beta2^t);  W = W - lr v^ / (sqrt(s^) + eps)
    sklearn_sgd v = mu v - lr g;  W = W + v  (Nesterov: W = W + mu v - lr g)
    sklearn_adam v, s as adam's;  lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t);
                W = W - lr_t v / (sqrt(s) + eps)
    dropout     D = splitmix64 hash of (key, t, layer, unit, example) < keep_prob
                A = A D / keep_prob (forward), dA = dA D / keep_prob (backward)

:func:`update_parameters` is each optimizer's one home in this backend: the
engine room (:mod:`.second_room`) calls it on a layer's W and b right where
their gradients were produced, L2's term folded into the same pass over the
parameters (no pass of its own). :func:`dropout_mask` computes a mask in the
kernel from :func:`fastnn.regularization.fit_mask`'s counter-based hash,
bitwise the same, nothing drawn.

None of this is compiled for the first course's gradient descent: plain fits
run the engine room of :mod:`.engine_room`, which never calls these.
"""

import math

import numpy as np
from numba import njit

from ... import regularization as _reg
from .config import INLINE_OPTS, SERIAL_OPTS

__all__ = ["GD", "MOMENTUM", "RMSPROP", "ADAM", "SKLEARN_SGD", "SKLEARN_ADAM", "OPTIMIZER_CODES",
           "update_parameters", "adam_moments", "bias_corrections", "hyper_parameters",
           "splitmix64", "mask_base", "dropout_mask", "drop_rows", "thresholds"]

GD, MOMENTUM, RMSPROP, ADAM, SKLEARN_SGD, SKLEARN_ADAM = 0, 1, 2, 3, 4, 5
#: The optimizers' names (:mod:`fastnn.optimizers`) to the codes the kernels switch on:
#: the course's four and scikit-learn's two (``SklearnSGD``, ``SklearnAdam``).
OPTIMIZER_CODES = {"gd": GD, "momentum": MOMENTUM, "rmsprop": RMSPROP, "adam": ADAM,
                   "sklearn_sgd": SKLEARN_SGD, "sklearn_adam": SKLEARN_ADAM}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_SIXTY_FOUR = np.uint64(64)


@njit(**INLINE_OPTS)
def adam_moments(P, G, V, S, i, l2, beta1, om1, beta2, om2):
    """Both Adams' moments of element i, L2's term included: ``g = G + l2 P``,
    ``v = beta1 v + (1 - beta1) g``, ``s = beta2 s + (1 - beta2) g^2``, stored
    in V[i], S[i] and returned (v, s)."""
    g = G[i] + l2 * P[i]
    v = beta1 * V[i] + om1 * g
    s = beta2 * S[i] + om2 * (g * g)
    V[i] = v
    S[i] = s
    return v, s


@njit(**SERIAL_OPTS)
def update_parameters(P, G, V, S, kind, learning_rate, l2, hyper, c1, c2):
    """One optimizer step of the parameters P (flat, IN/OUT) from their
    gradient G (flat, IN), L2's term included: ``g = G + l2 * P``.

    V, S (flat like P, IN/OUT): momentum's v (and both Adams' and
    scikit-learn's SGD's), RMSprop's s (and both Adams'); unused ones may be
    empty. kind: one of :data:`OPTIMIZER_CODES`' values; hyper (5,) float64:
    beta1, 1 - beta1, beta2, 1 - beta2, epsilon (beta1 is momentum's and
    RMSprop's beta too, and scikit-learn's SGD's momentum mu, whose hyper[2] is
    1.0 for Nesterov's momentum, else 0.0; each 1 - beta computed in float64
    as the course's Python does); c1 = 1 - beta1^t, c2 = 1 - beta2^t, the
    Adams' bias corrections at this update t (scikit-learn's Adam folds them
    into its rate lr sqrt(c2) / c1, computed in float64 as its Python does).
    Every scalar is rounded to P's dtype first (float32 stays float32, as
    NumPy's weak Python scalars). The switch sits outside the loops: each is a
    SIMD loop.
    """
    f = P.dtype.type
    lr, l2 = f(learning_rate), f(l2)
    beta1, om1, beta2, om2, eps = f(hyper[0]), f(hyper[1]), f(hyper[2]), f(hyper[3]), f(hyper[4])
    n = P.shape[0]
    if kind == GD:
        for i in range(n):
            P[i] = P[i] - lr * (G[i] + l2 * P[i])
    elif kind == MOMENTUM:
        for i in range(n):
            g = G[i] + l2 * P[i]
            v = beta1 * V[i] + om1 * g
            V[i] = v
            P[i] = P[i] - lr * v
    elif kind == RMSPROP:
        for i in range(n):
            g = G[i] + l2 * P[i]
            s = beta1 * S[i] + om1 * (g * g)
            S[i] = s
            P[i] = P[i] - lr * (g / (np.sqrt(s) + eps))
    elif kind == ADAM:
        b1, b2 = f(c1), f(c2)
        for i in range(n):
            v, s = adam_moments(P, G, V, S, i, l2, beta1, om1, beta2, om2)
            P[i] = P[i] - lr * ((v / b1) / (np.sqrt(s / b2) + eps))
    elif kind == SKLEARN_SGD:
        mu = beta1
        if hyper[2] != 0.0:  # Nesterov's momentum: the step looks ahead along the new v
            for i in range(n):
                g = G[i] + l2 * P[i]
                v = mu * V[i] - lr * g
                V[i] = v
                P[i] = P[i] + (mu * v - lr * g)
        else:
            for i in range(n):
                g = G[i] + l2 * P[i]
                v = mu * V[i] - lr * g
                V[i] = v
                P[i] = P[i] + v
    else:  # SKLEARN_ADAM
        rate = f(learning_rate * math.sqrt(c2) / c1)
        for i in range(n):
            v, s = adam_moments(P, G, V, S, i, l2, beta1, om1, beta2, om2)
            P[i] = P[i] + (-rate * v) / (np.sqrt(s) + eps)


@njit(**SERIAL_OPTS)
def bias_corrections(beta1, beta2, t):
    """``(1 - beta1^t, 1 - beta2^t)`` in float64, through libm's pow as Python's ``**``."""
    return 1.0 - math.pow(beta1, float(t)), 1.0 - math.pow(beta2, float(t))


@njit(**INLINE_OPTS)
def splitmix64(z):
    """SplitMix64's output function of a uint64 (see :func:`fastnn.regularization.splitmix64`)."""
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(**SERIAL_OPTS)
def mask_base(key, t, layer):
    """The hash base of ``layer``'s (1-based) mask at update t: ``splitmix64(key ^
    splitmix64(t * 64 + layer))``, all uint64."""
    return splitmix64(key ^ splitmix64(np.uint64(t) * _SIXTY_FOUR + np.uint64(layer)))


@njit(**SERIAL_OPTS)
def dropout_mask(base, threshold, D):
    """D (n, c) OUT: 1 where unit j of example i is kept, else 0 --
    ``splitmix64(base + (j c + i) golden) >> 11 < threshold``
    (:func:`fastnn.regularization.fit_mask`, c the batch's examples)."""
    n, c = D.shape
    one, zero = D.dtype.type(1), D.dtype.type(0)
    base = np.uint64(base)  # an int64 from Python would turn the sums below into floats
    for j in range(n):
        d = D[j]
        start = base + np.uint64(j * c) * _GOLDEN
        for i in range(c):
            h = splitmix64(start + np.uint64(i) * _GOLDEN)
            d[i] = one if (h >> _S11) < threshold else zero


@njit(**SERIAL_OPTS)
def drop_rows(A, D, keep_prob, out):
    """``out = A D / keep_prob`` (the course's order: multiply, then divide);
    A, D, out (n, c); out may be A."""
    n, c = A.shape
    for j in range(n):
        a, d, o = A[j], D[j], out[j]
        for i in range(c):
            o[i] = (a[i] * d[i]) / keep_prob


def hyper_parameters(optimizer):
    """``(kind, hyper)`` of a :mod:`fastnn.optimizers` object (None: gradient
    descent) for :func:`update_parameters`."""
    name = "gd" if optimizer is None else optimizer.name
    p = {} if optimizer is None else optimizer.get_params()
    if name == "sklearn_sgd":
        mu = p["momentum"]
        return OPTIMIZER_CODES[name], np.array([mu, 1 - mu, 1.0 if p["nesterov"] else 0.0, 0.0,
                                                1.0], np.float64)
    beta1 = p.get("beta1", p.get("beta", 0.0))
    beta2 = p.get("beta2", 0.0)
    return OPTIMIZER_CODES[name], np.array([beta1, 1 - beta1, beta2, 1 - beta2,
                                            p.get("epsilon", 1.0)], np.float64)


def thresholds(keep_probs, n_layers):
    """``(keep, threshold)`` per layer (L,): each hidden layer's keep probability
    (1.0 and no threshold where it keeps every unit, and for the output) and
    :func:`fastnn.regularization.mask_threshold` as uint64."""
    keep = np.ones(n_layers, np.float64)
    thr = np.zeros(n_layers, np.uint64)
    for l, kp in enumerate(keep_probs or ()):
        if kp < 1:
            keep[l] = kp
            thr[l] = np.uint64(_reg.mask_threshold(kp))
    return keep, thr
