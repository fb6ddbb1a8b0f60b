"""The ``numba`` backend's page of the course's second part: the optimizers'
update, L2's gradient term and inverted dropout's masks, one ``@njit`` kernel
per formula.

Read top to bottom::

    L2          g = dW + (lambd / m) W   (b: g = db)      update_parameters, update_rank1
    gd          W = W - lr g                                              gd_at
    momentum    v = beta v + (1 - beta) g;  W = W - lr v                  momentum_at
    rmsprop     s = beta s + (1 - beta) g^2;  W = W - lr g / (sqrt(s) + eps)  rmsprop_at
    adam        v, s as above (beta1, beta2);  v^ = v / (1 - beta1^t);
                s^ = s / (1 - beta2^t);  W = W - lr v^ / (sqrt(s^) + eps)    adam_at
    sklearn_sgd v = mu v - lr g;  W = W + v  (Nesterov: W = W + mu v - lr g)
                                                                       sklearn_sgd_at
    sklearn_adam v, s as adam's;  lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t);
                W = W - lr_t v / (sqrt(s) + eps)                      sklearn_adam_at
    dropout     D = splitmix64 hash of (key, t, layer, unit, example) < keep_prob
                A = A D / keep_prob (forward), dA = dA D / keep_prob (backward)

Each rule's formula has one home, its ``*_at`` function (one parameter,
inlined); :func:`update_parameters` loops them over a flat W or b with its
gradient -- the engine room (:mod:`.second_room`) calls it on each layer
right where the gradients were produced, L2's term folded into the same pass
over the parameters -- and :func:`update_rank1` over a W at a batch of one,
each element of dz a_prev^T formed where it is stepped (:mod:`.batch_of_one`).
The RMS rules take a moment as 0 where it makes the dividend subnormal and the
step cannot change W (:func:`rms_skip`): the same bits, without the slow
division.
:func:`dropout_mask` computes a mask in the kernel from
:func:`fastnn.regularization.fit_mask`'s counter-based hash, bitwise the
same, nothing drawn.

None of this is compiled for the first course's gradient descent: plain fits
run the engine room of :mod:`.engine_room`, which never calls these.
"""

import math

import numpy as np
from numba import njit

from ... import regularization as _reg
from .config import INLINE_OPTS, SERIAL_OPTS

__all__ = ["GD", "MOMENTUM", "RMSPROP", "ADAM", "SKLEARN_SGD", "SKLEARN_ADAM", "OPTIMIZER_CODES",
           "rms_skip", "rule_numbers", "update_parameters", "update_rank1", "bias_corrections",
           "hyper_parameters",
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
def rms_skip(P, kind, learning_rate, c1, c2, eps):
    """When an RMS rule may skip its division, in P's dtype: ``(below,
    w_min)``, to be taken where |moment| < below and |w| >= w_min.

    The rule's step at w is ``rate d / (sqrt(s) + eps)`` with the dividend d
    the moment scaled (Adam: v / (1 - beta1^t), rate lr; scikit-learn's Adam:
    -lr_t v, rate 1; RMSprop: g, rate lr). A moment below ``below`` makes d
    subnormal, |d| < 2^emin, and sqrt(s) + eps >= eps > 0 bounds the step by
    |rate| 2^emin / eps; w's ulp exceeds |w| 2^-p (p: the significand's
    bits), so the step is under ulp(w) / 8 -- w comes out unchanged either way
    -- from |w| >= (|rate| / eps) 2^(emin + p + 3), taken 2^-20 larger (the
    roundings of this bound and of ``below``) and at least 2^(emin + 60)
    (where the bound underflows, |rate| / eps < 2^-108, the step is under
    2^(emin - 108), far below that floor's ulp). rate and eps as the kernel
    has them, in P's dtype. w_min is NaN (no skip) where the bound is not
    finite (eps rounded to 0, an infinite rate), and where eps c1 is
    subnormal: fastmath compiles the Adams' steps with one division, by
    (sqrt(s) + eps) c1, which then underflows to 0 for s = 0 -- x / 0 is
    +-inf, 0 / 0 NaN. The cython kernels' ``rms_w_min``, the same bound.

    Adam's first moment decays to subnormals (beta1^t) on a feature seen once
    in a while, and a packed division with a subnormal dividend takes several
    times as long on Zen 4 (Adam at B = 1 on digits, float32: 5.9 ms an
    epoch, 4.4 with subnormals flushed). The condition reads the moment, not
    d: the formula itself is compiled as it was without the skip."""
    if P.itemsize == 8:
        emin, p = -1022, 53
    else:
        emin, p = -126, 24
    f = P.dtype.type
    tiny, c1_ = math.ldexp(1.0, emin), abs(float(f(c1)))
    scale, rate, eps_ = 1.0, float(f(learning_rate)), float(f(eps))
    if kind == ADAM:
        scale = 1.0 / c1_
    elif kind == SKLEARN_ADAM:
        scale, rate = abs(float(f(learning_rate * math.sqrt(c2) / c1))), 1.0
    below = f(tiny / scale) if scale > 0 else f(np.inf)
    bound = math.ldexp(abs(rate) / eps_, emin + p + 3)
    if not math.isfinite(bound) or eps_ * min(1.0, c1_) < tiny:
        return below, f(np.nan)
    return below, f(max(bound * (1 + math.ldexp(1.0, -20)), math.ldexp(1.0, emin + 60)))


@njit(**INLINE_OPTS)
def negligible(moment, w, skip):
    """Whether an RMS rule may take ``moment`` as 0 at w (:func:`rms_skip`'s
    pair ``skip``): its step's dividend is subnormal and the step cannot
    change w. The formula then runs on a 0 dividend."""
    return abs(moment) < skip[0] and abs(w) >= skip[1]


@njit(**INLINE_OPTS)
def rule_numbers(P, kind, learning_rate, l2, hyper, c1, c2):
    """A step's numbers in P's dtype (float32 stays float32, as NumPy's weak
    Python scalars): ``(lr, l2, beta1, om1, beta2, om2, eps, b1, b2, rate,
    skip)`` -- hyper's five, Adam's bias corrections b1 = c1 and b2 = c2,
    scikit-learn's Adam's rate lr sqrt(c2) / c1, taken in float64 as its
    Python does (see :func:`update_parameters`), and the RMS rules'
    :func:`rms_skip` (the others never skip)."""
    f = P.dtype.type
    if kind == RMSPROP or kind == ADAM or kind == SKLEARN_ADAM:
        skip = rms_skip(P, kind, learning_rate, c1, c2, hyper[4])
    else:  # no division to skip
        skip = f(0), f(np.nan)
    return (f(learning_rate), f(l2), f(hyper[0]), f(hyper[1]), f(hyper[2]), f(hyper[3]),
            f(hyper[4]), f(c1), f(c2), f(learning_rate * math.sqrt(c2) / c1), skip)


# The rules at one parameter P[e] with its gradient g (state V[e], S[e] as the
# rule has), L2's term included in g: the one home of each rule's formula (the
# table above). The loops of update_parameters and update_rank1 form g their
# ways and step with these, each rule a loop of its own (a switch inside the
# loop is not taken out of it: 60x slower at a batch of one).

@njit(**INLINE_OPTS)
def gd_at(P, e, g, lr):
    P[e] = P[e] - lr * g


@njit(**INLINE_OPTS)
def momentum_at(P, V, e, g, lr, beta, om):
    v = beta * V[e] + om * g
    V[e] = v
    P[e] = P[e] - lr * v


@njit(**INLINE_OPTS)
def rmsprop_at(P, S, e, g, lr, beta, om, eps, skip):
    s = beta * S[e] + om * (g * g)
    S[e] = s
    d = P.dtype.type(0) if negligible(g, P[e], skip) else g
    P[e] = P[e] - lr * (d / (np.sqrt(s) + eps))


@njit(**INLINE_OPTS)
def adam_moments(V, S, e, g, beta1, om1, beta2, om2):
    """Both Adams' moments of element e, stored in V[e], S[e] and returned (v, s)."""
    v = beta1 * V[e] + om1 * g
    s = beta2 * S[e] + om2 * (g * g)
    V[e] = v
    S[e] = s
    return v, s


@njit(**INLINE_OPTS)
def adam_at(P, V, S, e, g, lr, beta1, om1, beta2, om2, eps, b1, b2, skip):
    v, s = adam_moments(V, S, e, g, beta1, om1, beta2, om2)
    v = P.dtype.type(0) if negligible(v, P[e], skip) else v
    P[e] = P[e] - lr * ((v / b1) / (np.sqrt(s / b2) + eps))


@njit(**INLINE_OPTS)
def sklearn_sgd_at(P, V, e, g, lr, mu, nesterov):
    """v = mu v - lr g; P += v, or with Nesterov's momentum P += mu v - lr g."""
    v = mu * V[e] - lr * g
    V[e] = v
    if nesterov:
        P[e] = P[e] + (mu * v - lr * g)
    else:
        P[e] = P[e] + v


@njit(**INLINE_OPTS)
def sklearn_adam_at(P, V, S, e, g, rate, beta1, om1, beta2, om2, eps, skip):
    v, s = adam_moments(V, S, e, g, beta1, om1, beta2, om2)
    v = P.dtype.type(0) if negligible(v, P[e], skip) else v
    P[e] = P[e] + (-rate * v) / (np.sqrt(s) + eps)


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
    The switch sits outside the loops: each is a SIMD loop.
    """
    lr, l2, beta1, om1, beta2, om2, eps, b1, b2, rate, skip = rule_numbers(
        P, kind, learning_rate, l2, hyper, c1, c2)
    if kind == GD:
        for e in range(P.shape[0]):
            gd_at(P, e, G[e] + l2 * P[e], lr)
    elif kind == MOMENTUM:
        for e in range(P.shape[0]):
            momentum_at(P, V, e, G[e] + l2 * P[e], lr, beta1, om1)
    elif kind == RMSPROP:
        for e in range(P.shape[0]):
            rmsprop_at(P, S, e, G[e] + l2 * P[e], lr, beta1, om1, eps, skip)
    elif kind == ADAM:
        for e in range(P.shape[0]):
            adam_at(P, V, S, e, G[e] + l2 * P[e], lr, beta1, om1, beta2, om2, eps, b1, b2,
                    skip)
    elif kind == SKLEARN_SGD and beta2 != 0:  # hyper[2] = 1: Nesterov's momentum
        for e in range(P.shape[0]):
            sklearn_sgd_at(P, V, e, G[e] + l2 * P[e], lr, beta1, True)
    elif kind == SKLEARN_SGD:
        for e in range(P.shape[0]):
            sklearn_sgd_at(P, V, e, G[e] + l2 * P[e], lr, beta1, False)
    else:  # SKLEARN_ADAM
        for e in range(P.shape[0]):
            sklearn_adam_at(P, V, S, e, G[e] + l2 * P[e], rate, beta1, om1, beta2, om2, eps,
                            skip)


@njit(**SERIAL_OPTS)
def update_rank1(P, dz, a_prev, V, S, kind, learning_rate, l2, hyper, c1, c2):
    """:func:`update_parameters` of a W (flat P, (n, n_prev) C-ordered; V, S
    its state, flat alike or empty) at a batch of one, from the gradient dz
    a_prev^T, each element formed where W and its state are stepped (no dW
    to store and read back). dz (n,), a_prev (n_prev,) IN."""
    lr, l2, beta1, om1, beta2, om2, eps, b1, b2, rate, skip = rule_numbers(
        P, kind, learning_rate, l2, hyper, c1, c2)
    n_prev = a_prev.shape[0]
    for j in range(dz.shape[0]):
        d, e0 = dz[j], j * n_prev
        if kind == GD:
            for k in range(n_prev):
                gd_at(P, e0 + k, d * a_prev[k] + l2 * P[e0 + k], lr)
        elif kind == MOMENTUM:
            for k in range(n_prev):
                momentum_at(P, V, e0 + k, d * a_prev[k] + l2 * P[e0 + k], lr, beta1, om1)
        elif kind == RMSPROP:
            for k in range(n_prev):
                rmsprop_at(P, S, e0 + k, d * a_prev[k] + l2 * P[e0 + k], lr, beta1, om1, eps,
                           skip)
        elif kind == ADAM:
            for k in range(n_prev):
                adam_at(P, V, S, e0 + k, d * a_prev[k] + l2 * P[e0 + k], lr, beta1, om1, beta2,
                        om2, eps, b1, b2, skip)
        elif kind == SKLEARN_SGD:
            for k in range(n_prev):
                sklearn_sgd_at(P, V, e0 + k, d * a_prev[k] + l2 * P[e0 + k], lr, beta1,
                               beta2 != 0)
        else:  # SKLEARN_ADAM
            for k in range(n_prev):
                sklearn_adam_at(P, V, S, e0 + k, d * a_prev[k] + l2 * P[e0 + k], rate, beta1,
                                om1, beta2, om2, eps, skip)


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
