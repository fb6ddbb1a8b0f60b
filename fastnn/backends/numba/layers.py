"""The ``numba`` backend's lecture page: one ``@njit`` kernel per formula.

Read top to bottom, this is the course's L-layer network::

    forward    Z = W A_prev + b, A = g(Z)          linear_forward (g: activation_forward,
                                                   or softmax over each column of Z_L)
    cost       J = (1/m) sum L(A_L, Y)             costs.cost (:mod:`.costs`, the page's
                                                   costs; costs.softmax_cost: a softmax's
                                                   from its forward's column sums)
    output     dZ_L = A_L - Y                       output_dZ
    backward   dW = (1/m) dZ A_prev^T               linear_backward
               db = (1/m) sum_j dZ                  bias_gradient
               dZ_prev = W^T dZ * g'(Z_prev)        dZ_prev (g': activation_backward,
                                                   g'(0) of ReLU per relu_grad_at_zero)
    update     W -= learning_rate dW, same for b   update

With per-example weights w (``sw``, the batch's S = sum_j w_j) the same
kernels compute the weighted objective: J = (1/S) sum_j w_j L_j, dZ_L's column
j times w_j, and 1/S (``scale``) in place of 1/m (0 when S == 0: that batch
learns nothing); without them (None) each kernel is exactly the unweighted
one (Numba prunes the other branch before typing). The ``exp`` output with
the ``poisson`` loss (half Poisson deviance, L = y log(y/a) - y + a) has
dZ_L = A_L - Y as well.

``Network.forward``/``backward`` (:mod:`fastnn.backends.numba`) and the compiled
training loops (:mod:`.engine_room`, the engine room) call these same kernels; the
engine room adds only the fused first-layer pass (:mod:`.first_layer`), which
is tested against them.

Design
------
* Activations arrive as the integer codes of :data:`fastnn.activations.CODES`
  (losses as :data:`fastnn.losses.CODES`), at run time: one compilation per
  dtype serves every network. The switch on the code sits outside each loop
  over examples, so every branch is a plain loop LLVM vectorizes (the
  exp/tanh polynomials of :mod:`.simd_math` included).
* Softmax normalizes each column (one example) over the units; it runs a row
  at a time like everything else -- column maxima, then e^(z - max) and the
  column sums, then the division -- so each pass is a SIMD loop over examples
  with the polynomial exp. Its two rows of column maxima and sums live in a
  caller's ``work`` buffer (2, m): nothing is allocated in a training loop.
* ``relu_grad_at_zero`` (g0: 1 or 0) reaches the kernels as an argument, never
  a global, so one compilation serves both conventions.
* Kernels work a row (one unit, all m examples) at a time: bias and g in one
  pass over Z; dZ_prev's row is multiplied by g' while it is still in L1.
  ``activation_forward`` updates z in place and writes a separate a: a version
  reading z from a third array called with that array == z made LLVM's
  run-time overlap check fail and run its scalar loop, 5x slower.
* Products big enough to be GEMM-bound (:data:`BLAS_MIN_MACS`) go through
  ``np.dot`` (SciPy's BLAS; a transposed operand is a transpose flag, no copy);
  smaller ones are hand loops over four rows at a time.
"""

import numpy as np
from numba import njit

from ... import activations as _act
from ... import losses as _loss
from .config import BLAS_MIN_MACS, INLINE_OPTS, SERIAL_OPTS
from .costs import cost, softmax_cost  # noqa: F401 -- the page's costs, in a file of their own
from .intrinsics import dot_into
from .simd_math import exp
from .simd_math import sigmoid as _sigmoid
from .simd_math import tanh as _tanh

# The registry's codes and slope, frozen into the machine code as constants.
SIGMOID, TANH, RELU, LEAKY_RELU, IDENTITY, SOFTMAX, EXP = (
    _act.CODES[name]
    for name in ("sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax", "exp"))
CROSS_ENTROPY, MSE, POISSON = (_loss.CODES[name] for name in ("cross_entropy", "mse", "poisson"))
LEAKY_SLOPE = _act.LEAKY_SLOPE

# ------------------------------------------------- g and g', side by side
# g' takes (z, a) and uses what the lecture does: sigma' = a (1 - a),
# tanh' = 1 - a^2 and exp' = a from the stored A. ReLU, leaky ReLU and the identity are one
# family, z for z >= 0 and slope * z below (slope 0, LEAKY_SLOPE, 1), with
# g'(0) = 1 as in the lecture (g0 = 1) or the slope below (g0 = 0).


@njit(**INLINE_OPTS)
def sigmoid(z):
    return _sigmoid(z)


@njit(**INLINE_OPTS)
def sigmoid_prime(z, a):
    return a * (1.0 - a)


@njit(**INLINE_OPTS)
def tanh(z):
    return _tanh(z)


@njit(**INLINE_OPTS)
def tanh_prime(z, a):
    return 1.0 - a * a


@njit(**INLINE_OPTS)
def exp_prime(z, a):
    return a


@njit(**INLINE_OPTS)
def slope_below_zero(code):
    """The slope of relu (0), leaky relu (LEAKY_SLOPE) or identity (1) for z < 0."""
    return 0.0 if code == RELU else (LEAKY_SLOPE if code == LEAKY_RELU else 1.0)


@njit(**INLINE_OPTS)
def piecewise_linear(z, slope):
    return z if z >= 0.0 else slope * z


@njit(**INLINE_OPTS)
def piecewise_linear_prime(z, slope, g0):
    """1 above 0, slope below; at 0, 1 if g0 else slope (see relu_grad_at_zero)."""
    return 1.0 if z > 0.0 or (g0 and z == 0.0) else slope


@njit(**SERIAL_OPTS)
def activation_forward(code, b, z, a):
    """One row: ``z += b``, then ``a = g(z)``, in one pass. z (m,) IN/OUT, a (m,)
    OUT; code the activation's code, b the unit's bias."""
    m = z.shape[0]
    if code == SIGMOID:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = sigmoid(v)
    elif code == TANH:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = tanh(v)
    elif code == EXP:  # the polynomial e^x of simd_math: a SIMD loop, as sigmoid's
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = exp(v)
    else:
        slope = slope_below_zero(code)
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = piecewise_linear(v, slope)


@njit(**SERIAL_OPTS)
def activation_backward(code, d, z, a, g0):
    """One row: ``d *= g'(z)`` (dA to dZ), given ``a = g(z)``. d (m,) IN/OUT, z and
    a (m,) IN; g0 is ReLU's and leaky ReLU's g'(0) convention (1 or 0)."""
    m = d.shape[0]
    if code == SIGMOID:
        for j in range(m):
            d[j] *= sigmoid_prime(z[j], a[j])
    elif code == TANH:
        for j in range(m):
            d[j] *= tanh_prime(z[j], a[j])
    elif code == EXP:
        for j in range(m):
            d[j] *= exp_prime(z[j], a[j])
    elif code != IDENTITY:
        slope = slope_below_zero(code)
        for j in range(m):
            d[j] *= piecewise_linear_prime(z[j], slope, g0)


@njit(**SERIAL_OPTS)
def softmax(Z, A, work):
    """``A[:, j] = e^(Z[:, j] - max) / sum_k e^(Z[k, j] - max)`` for every example j.

    Subtracting each column's max changes nothing in exact arithmetic and keeps
    every e^z in (0, 1]: no overflow, and the sum is at least 1. Z, A (n, m);
    work (2, m) scratch for the column maxima and sums.
    """
    n, m = Z.shape
    top, total = work[0], work[1]
    z = Z[0]
    for j in range(m):
        top[j] = z[j]
        total[j] = 0.0
    for i in range(1, n):
        z = Z[i]
        for j in range(m):
            top[j] = z[j] if z[j] > top[j] else top[j]
    for i in range(n):
        z, a = Z[i], A[i]
        for j in range(m):
            e = exp(z[j] - top[j])
            a[j] = e
            total[j] += e
    for i in range(n):
        a = A[i]
        for j in range(m):
            a[j] /= total[j]


# ------------------------------------------------------------ products


@njit(**INLINE_OPTS)
def blas_sized(n, n_prev, m):
    """Whether an (n, n_prev) x (n_prev, m) product goes through BLAS."""
    return n * n_prev * m >= BLAS_MIN_MACS


@njit(**SERIAL_OPTS)
def row_product(W, B, i, out, transpose):
    """``out = sum_k W[i, k] B[k]`` (``W[k, i]`` if transpose): row i of W B (or W^T B).

    W (n, n_prev) (or (n_prev, n) if transpose) and B (rows, m) IN; out (m,) OUT.

    Four rows of B per sweep load and store ``out`` a quarter as often; the
    first sweep writes instead of accumulating, so ``out`` needs no zeroing.
    Callers pass ``transpose`` as ``np.bool_``: a literal True/False would
    compile this kernel once per value, for a branch taken once per sweep.
    """
    n_in = B.shape[0]
    m = out.shape[0]
    k = 0
    while k + 4 <= n_in:
        if transpose:
            w0, w1, w2, w3 = W[k, i], W[k + 1, i], W[k + 2, i], W[k + 3, i]
        else:
            w0, w1, w2, w3 = W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3]
        b0, b1, b2, b3 = B[k], B[k + 1], B[k + 2], B[k + 3]
        if k == 0:
            for j in range(m):
                out[j] = w0 * b0[j] + w1 * b1[j] + w2 * b2[j] + w3 * b3[j]
        else:
            for j in range(m):
                out[j] += w0 * b0[j] + w1 * b1[j] + w2 * b2[j] + w3 * b3[j]
        k += 4
    while k < n_in:
        w0 = W[k, i] if transpose else W[i, k]
        b0 = B[k]
        if k == 0:
            for j in range(m):
                out[j] = w0 * b0[j]
        else:
            for j in range(m):
                out[j] += w0 * b0[j]
        k += 1


# ------------------------------------------------------------- forward


@njit(**INLINE_OPTS)
def add_bias(b, z):
    """One row: ``z += b``; z (m,) IN/OUT."""
    for j in range(z.shape[0]):
        z[j] += b


@njit(**SERIAL_OPTS)
def bias_activation(code, b, Z, A, work):
    """``Z += b``, ``A = g(Z)`` for every row: Z (n, m) IN/OUT holds ``W A_prev``
    on entry; b (n, 1) IN; A (n, m) OUT; work (2, m): softmax's scratch, or
    None in a network without softmax (then no softmax code is compiled: Numba
    drops the branch on ``work is not None`` before typing)."""
    if work is not None:
        if code == SOFTMAX:
            for i in range(Z.shape[0]):
                add_bias(b[i, 0], Z[i])
            softmax(Z, A, work)
            return
    for i in range(Z.shape[0]):
        activation_forward(code, b[i, 0], Z[i], A[i])


@njit(**INLINE_OPTS)
def linear_forward(W, b, A_prev, Z, A, code, work):
    """``Z = W A_prev + b``, ``A = g(Z)``.

    W (n, n_prev), b (n, 1), A_prev (n_prev, m); Z and A (n, m), written;
    work (2, m): softmax's scratch, untouched by the element-wise activations
    (None in a network without softmax, see :func:`bias_activation`).
    """
    n, n_prev = W.shape
    if blas_sized(n, n_prev, A_prev.shape[1]):
        dot_into(W, A_prev, Z)
        bias_activation(code, b, Z, A, work)
    elif code == SOFTMAX:  # g needs whole columns: every row of Z first
        for i in range(n):
            row_product(W, A_prev, i, Z[i], np.bool_(False))
        bias_activation(code, b, Z, A, work)
    else:
        for i in range(n):  # each row of Z finished (bias, g) while it is in L1
            row_product(W, A_prev, i, Z[i], np.bool_(False))
            activation_forward(code, b[i, 0], Z[i], A[i])


# ------------------------------------------------------------ backward


@njit(**INLINE_OPTS)
def output_dZ(AL, Y, ZL, code, loss, g0, dZ, sw=None):
    """``dZ_L = A_L - Y`` (sigmoid or softmax + cross-entropy, identity + mse,
    exp + poisson), times g'(Z_L) for mse with another output activation (g0:
    a ReLU output's g'(0)); with weights sw (m,), column j times w_j. All
    (n_L, m); dZ written. :func:`fastnn.losses.output_delta` is the oracles'
    version.
    """
    n, m = AL.shape
    for i in range(n):
        d, a, y = dZ[i], AL[i], Y[i]
        for j in range(m):
            d[j] = a[j] - y[j]
        if loss == MSE:
            activation_backward(code, d, ZL[i], a, g0)
        if sw is not None:
            for j in range(m):
                d[j] *= sw[j]


@njit(**INLINE_OPTS)
def scaled(s, m, scale):
    """``s / m``, or ``s * scale`` (a weighted batch's 1/S, see :func:`inverse_weight`)."""
    if scale is None:
        return s / m
    return s * scale


@njit(**INLINE_OPTS)
def bias_gradient(dZ, db, scale=None):
    """``db = (1/m) sum_j dZ[:, j]`` (``scale`` in place of 1/m when not None):
    dZ (n, m), db (n, 1) written."""
    n, m = dZ.shape
    for i in range(n):
        d = dZ[i]
        s = d.dtype.type(0)
        for j in range(m):
            s += d[j]
        db[i, 0] = scaled(s, m, scale)


@njit(**SERIAL_OPTS)
def linear_backward(dZ, A_prev, dW, db, scale=None):
    """``dW = (1/m) dZ A_prev^T`` and ``db = (1/m) sum_j dZ``.

    dZ (n, m), A_prev (n_prev, m); dW (n, n_prev) and db (n, 1) written.
    ``scale`` (float64 or None): a weighted batch's 1/S in place of 1/m.
    """
    n, m = dZ.shape
    n_prev = A_prev.shape[0]
    bias_gradient(dZ, db, scale)
    if blas_sized(n, n_prev, m):
        dot_into(dZ, A_prev.T, dW)
        # float64, as NumPy's dW *= 1.0 / m (float32 rounds once, at the store)
        inv_m = 1.0 / m if scale is None else scale
        for i in range(n):  # a loop, not an array expression: no ufunc machinery to compile
            for k in range(n_prev):
                dW[i, k] = dW[i, k] * inv_m
        return
    zero = dZ.dtype.type(0)  # float32 sums stay float32: twice the SIMD lanes
    for i in range(n):
        d = dZ[i]
        k = 0
        while k + 4 <= n_prev:  # four dot products per sweep over d
            a0, a1, a2, a3 = A_prev[k], A_prev[k + 1], A_prev[k + 2], A_prev[k + 3]
            s0 = s1 = s2 = s3 = zero
            for j in range(m):
                dj = d[j]
                s0 += dj * a0[j]
                s1 += dj * a1[j]
                s2 += dj * a2[j]
                s3 += dj * a3[j]
            dW[i, k], dW[i, k + 1] = scaled(s0, m, scale), scaled(s1, m, scale)
            dW[i, k + 2], dW[i, k + 3] = scaled(s2, m, scale), scaled(s3, m, scale)
            k += 4
        while k < n_prev:
            a0 = A_prev[k]
            s0 = zero
            for j in range(m):
                s0 += d[j] * a0[j]
            dW[i, k] = scaled(s0, m, scale)
            k += 1


@njit(**INLINE_OPTS)
def dZ_prev(W, dZ, Z_prev, A_prev, code_prev, g0, out, D=None, keep_prob=1.0):
    """``out = dZ_prev = (W^T dZ) * g'(Z_prev)``: dA_prev and the layer below's g'.

    W (n, n_prev), dZ (n, m); Z_prev, A_prev and out (n_prev, m); g0 ReLU's
    g'(0) (1 or 0). Uses W before its update. Each row of W^T dZ is multiplied
    by g' while it is in L1. ``D`` (n_prev, m): inverted dropout's mask of
    the layer below (the course's second part), applied to dA_prev before g'
    (``dA D / keep_prob``); None (the first course): pruned at compile time.
    """
    n, n_prev = W.shape
    blas = blas_sized(n, n_prev, dZ.shape[1])
    if blas:
        dot_into(W.T, dZ, out)
    for k in range(n_prev):
        if not blas:
            row_product(W, dZ, k, out[k], np.bool_(True))
        if D is not None:
            o, d = out[k], D[k]
            for j in range(o.shape[0]):
                o[j] = (o[j] * d[j]) / keep_prob
        activation_backward(code_prev, out[k], Z_prev[k], A_prev[k], g0)


# -------------------------------------------------------------- update


@njit(**SERIAL_OPTS)
def update(P, dP, learning_rate):
    """``P -= learning_rate * dP`` for a W (n, n_prev) or a b (n, 1)."""
    # 2-D indexing, no row views: a view costs an atomic reference count pair,
    # more than a short row's arithmetic (a b has rows of one).
    for i in range(P.shape[0]):
        for k in range(P.shape[1]):
            P[i, k] -= learning_rate * dP[i, k]
