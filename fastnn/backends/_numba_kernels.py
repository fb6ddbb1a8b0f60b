"""The ``numba`` backend's compiled kernels.

Design
------
* Activation math is written so LLVM vectorizes it. PyPI's Numba has no SVML,
  so ``math.exp`` in a loop stays a scalar libm call per element. ``_exp`` is a
  Cody-Waite range reduction ``x = n ln2 + r, |r| <= ln2/2`` with a degree-12
  Taylor polynomial (truncation < 2e-16) and ``2**n`` built from its bits:
  only adds, multiplies, floor, compares and selects, all of which have packed
  AVX-512 forms. tanh goes through an ``expm1`` built the same way (so tanh of a
  tiny z keeps full relative precision), sigmoid through ``_exp``.
* Activations are passed as the integer codes of :data:`fastnn.activations.CODES`
  at run time, not as compile-time constants: one compilation per dtype serves
  every network. The switch on the code sits outside each inner loop.
* Bias + activation are one pass over Z; dZ of a hidden layer is produced in the
  same pass as ``W^T dZ`` (the derivative multiplies the row while it is hot);
  dW and db come out of one pass over each row of dZ.
* ``train_chunk`` runs the whole loop of gradient descent. The first layer's
  backward, update and the *next* iteration's forward share one pass over X
  (row blocks of X stay in L1 while dW, the update and Z += W X use them), so a
  layer with a huge input and few units -- logistic regression, the deep
  net's 12288 -> 20 -- reads X once per iteration. With several threads each
  thread owns a fixed range of X's rows and the per-thread partial sums of Z are
  added in thread order: bitwise reproducible for a given thread count.
* Layers big enough to be GEMM-bound go through ``np.dot`` (SciPy's BLAS).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ._numba_config import (
    BLAS_MIN_MACS,
    EXACT_OPTS,
    FUSED_MAX_UNITS,
    PARALLEL_OPTS,
    SERIAL_OPTS,
)

SIGMOID, TANH, RELU, LEAKY_RELU, IDENTITY = 0, 1, 2, 3, 4
CROSS_ENTROPY, MSE = 0, 1
LEAKY_SLOPE = 0.01

# ---------------------------------------------------------------- exp, tanh

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 with its low bits zeroed: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10
EXP_OVERFLOW = 709.782712893384  # exp(x) > DBL_MAX above this
EXP_UNDERFLOW = -745.1332191019412  # exp(x) rounds to 0 below this
C2, C3, C4, C5, C6 = 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720
C7, C8, C9, C10 = 1 / 5040, 1 / 40320, 1 / 362880, 1 / 3628800
C11, C12 = 1 / 39916800, 1 / 479001600


@intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret an int64's bits as a float64 (a register move, vectorizable)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(**EXACT_OPTS)
def _pow2(k):
    """2.0**k for integer k in [-1022, 1023], from the exponent bits."""
    return _bits_to_float64((k + 1023) << 52)


@njit(**EXACT_OPTS)
def _expm1_poly(r):
    """e^r - 1 for |r| <= ln2/2, degree-12 Taylor, error < 2e-16 relative."""
    p = C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    p = p * r + 1.0
    return p * r


@njit(**EXACT_OPTS)
def _exp(x):
    """e^x to ~2 ulp for every float64, branch-free so loops of it vectorize.

    Returns inf above ~709.78, 0 below ~-745.13 and NaN for NaN, like np.exp.
    """
    xc = x if x > -746.0 else -746.0  # also maps NaN to a finite value: no poison int
    xc = xc if xc < 710.0 else 710.0
    n = np.floor(xc * LOG2E + 0.5)
    r = (xc - n * LN2_HI) - n * LN2_LO
    p = 1.0 + _expm1_poly(r)
    # 2^n as two factors so that subnormal results (n down to -1075) and
    # n = 1024 (just below overflow) both have representable scale factors.
    k = np.int64(n)
    k1 = k >> 1
    y = (p * _pow2(k1)) * _pow2(k - k1)
    y = np.inf if x > EXP_OVERFLOW else y
    y = 0.0 if x < EXP_UNDERFLOW else y
    return x if x != x else y


@njit(**EXACT_OPTS)
def _expm1_neg(x):
    """e^x - 1 for x <= 0, accurate relative to the result even for tiny |x|."""
    xc = x if x > -60.0 else -60.0  # e^-60 - 1 == -1 in float64
    n = np.floor(xc * LOG2E + 0.5)
    r = (xc - n * LN2_HI) - n * LN2_LO
    s = _pow2(np.int64(n))
    # n == 0 gives exactly q: no cancellation near 0.
    return s * _expm1_poly(r) + (s - 1.0)


@njit(**EXACT_OPTS)
def _sigmoid(z):
    # 1 / (1 + e^-z): e^1000 -> inf gives exactly 0, e^-1000 -> 0 gives 1.
    return 1.0 / (1.0 + _exp(-z))


@njit(**EXACT_OPTS)
def _tanh(z):
    # tanh|z| = (1 - e^-2|z|) / (1 + e^-2|z|) = -u / (2 + u), u = expm1(-2|z|).
    u = _expm1_neg(-2.0 * abs(z))
    t = -u / (2.0 + u)
    t = t if z >= 0.0 else -t
    return z if z != z else t


# float32: the same algorithms in single precision, 16 lanes per zmm register.
# Degree 7 suffices for |r| <= ln2/2 at float32 (truncation < 2e-8 relative).
F_LN2_HI = np.float32(0.693145751953125)  # 12 significant bits: n * F_LN2_HI exact
F_LN2_LO = np.float32(1.428606765330187e-06)
F_LOG2E = np.float32(LOG2E)
F_C = [np.float32(c) for c in (1.0, C2, C3, C4, C5, C6, C7)]
F_C1, F_C2, F_C3, F_C4, F_C5, F_C6, F_C7 = F_C
F_ONE, F_TWO, F_HALF, F_ZERO = np.float32(1), np.float32(2), np.float32(0.5), np.float32(0)
F_EXP_OVERFLOW = np.float32(88.72283)
F_EXP_UNDERFLOW = np.float32(-103.97208)
F_LO, F_HI = np.float32(-104.0), np.float32(89.0)
F_NEG_LIMIT = np.float32(-20.0)  # e^-20 - 1 == -1 in float32


@intrinsic
def _bits_to_float32(typingctx, bits):
    """Reinterpret an int32's bits as a float32."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(**EXACT_OPTS)
def _pow2_f32(k):
    return _bits_to_float32((k + np.int32(127)) << np.int32(23))


@njit(**EXACT_OPTS)
def _expm1_poly_f32(r):
    p = F_C7
    p = p * r + F_C6
    p = p * r + F_C5
    p = p * r + F_C4
    p = p * r + F_C3
    p = p * r + F_C2
    p = p * r + F_C1
    return p * r


@njit(**EXACT_OPTS)
def _exp_f32(x):
    xc = x if x > F_LO else F_LO
    xc = xc if xc < F_HI else F_HI
    n = np.floor(xc * F_LOG2E + F_HALF)
    r = (xc - n * F_LN2_HI) - n * F_LN2_LO
    p = F_ONE + _expm1_poly_f32(r)
    k = np.int32(n)
    k1 = k >> np.int32(1)
    y = (p * _pow2_f32(k1)) * _pow2_f32(k - k1)
    y = np.float32(np.inf) if x > F_EXP_OVERFLOW else y
    y = F_ZERO if x < F_EXP_UNDERFLOW else y
    return x if x != x else y


@njit(**EXACT_OPTS)
def _expm1_neg_f32(x):
    xc = x if x > F_NEG_LIMIT else F_NEG_LIMIT
    n = np.floor(xc * F_LOG2E + F_HALF)
    r = (xc - n * F_LN2_HI) - n * F_LN2_LO
    s = _pow2_f32(np.int32(n))
    return s * _expm1_poly_f32(r) + (s - F_ONE)


def _sigmoid_any(z):
    """sigmoid in the precision of z: dispatched at compile time by :func:`_sigmoid_overload`."""


def _tanh_any(z):
    """tanh in the precision of z."""


@overload(_sigmoid_any, jit_options=dict(EXACT_OPTS))
def _sigmoid_overload(z):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def sigmoid_f32(z):
            return F_ONE / (F_ONE + _exp_f32(-z))
        return sigmoid_f32
    return lambda z: _sigmoid(z)


@overload(_tanh_any, jit_options=dict(EXACT_OPTS))
def _tanh_overload(z):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def tanh_f32(z):
            u = _expm1_neg_f32(np.float32(-2.0) * abs(z))
            t = -u / (F_TWO + u)
            t = t if z >= F_ZERO else -t
            return z if z != z else t
        return tanh_f32
    return lambda z: _tanh(z)


# --------------------------------------------------- elementwise row kernels


@njit(**SERIAL_OPTS)
def exp_array(x, out):
    """out = e^x elementwise (1-D): the kernel the SIMD tests disassemble."""
    for j in range(x.shape[0]):
        out[j] = _exp(x[j])


@njit(**SERIAL_OPTS)
def tanh_array(x, out):
    for j in range(x.shape[0]):
        out[j] = _tanh_any(x[j])


@njit(**SERIAL_OPTS)
def sigmoid_array(x, out):
    for j in range(x.shape[0]):
        out[j] = _sigmoid_any(x[j])


@njit(**SERIAL_OPTS)
def bias_activate(code, b, z_in, z, a):
    """z = z_in + b, then a = g(z), over one row: bias and activation in one pass.

    ``z_in`` and ``z`` must not overlap (use :func:`bias_activate_inplace`):
    LLVM guards the SIMD loop with a run-time overlap check and would fall back
    to its scalar loop, 5x slower.
    """
    m = z.shape[0]
    if code == SIGMOID:
        for j in range(m):
            v = z_in[j] + b
            z[j] = v
            a[j] = _sigmoid_any(v)
    elif code == TANH:
        for j in range(m):
            v = z_in[j] + b
            z[j] = v
            a[j] = _tanh_any(v)
    elif code == RELU:
        for j in range(m):
            v = z_in[j] + b
            z[j] = v
            a[j] = 0.0 if v < 0.0 else v
    elif code == LEAKY_RELU:
        for j in range(m):
            v = z_in[j] + b
            z[j] = v
            a[j] = LEAKY_SLOPE * v if v < 0.0 else v
    else:
        for j in range(m):
            v = z_in[j] + b
            z[j] = v
            a[j] = v


@njit(**SERIAL_OPTS)
def bias_activate_inplace(code, b, z, a):
    """z += b, then a = g(z), over one row, in one pass."""
    m = z.shape[0]
    if code == SIGMOID:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = _sigmoid_any(v)
    elif code == TANH:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = _tanh_any(v)
    elif code == RELU:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = 0.0 if v < 0.0 else v
    elif code == LEAKY_RELU:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = LEAKY_SLOPE * v if v < 0.0 else v
    else:
        for j in range(m):
            v = z[j] + b
            z[j] = v
            a[j] = v


@njit(**SERIAL_OPTS)
def times_derivative(code, d, z, a):
    """d *= g'(z) over one row, g' from the stored a where the lecture does."""
    m = d.shape[0]
    if code == SIGMOID:
        for j in range(m):
            d[j] *= a[j] * (1.0 - a[j])
    elif code == TANH:
        for j in range(m):
            d[j] *= 1.0 - a[j] * a[j]
    elif code == RELU:
        for j in range(m):
            d[j] = d[j] if z[j] >= 0.0 else 0.0  # g'(0) = 1
    elif code == LEAKY_RELU:
        for j in range(m):
            d[j] = d[j] if z[j] >= 0.0 else LEAKY_SLOPE * d[j]


@njit(**SERIAL_OPTS)
def times_derivative_sum(code, d, z, a):
    """d *= g'(z) over one row, returning the row's new sum (db) from the same pass."""
    m = d.shape[0]
    s = d.dtype.type(0)
    if code == SIGMOID:
        for j in range(m):
            v = d[j] * (a[j] * (1.0 - a[j]))
            d[j] = v
            s += v
    elif code == TANH:
        for j in range(m):
            v = d[j] * (1.0 - a[j] * a[j])
            d[j] = v
            s += v
    elif code == RELU:
        for j in range(m):
            v = d[j] if z[j] >= 0.0 else 0.0
            d[j] = v
            s += v
    elif code == LEAKY_RELU:
        for j in range(m):
            v = d[j] if z[j] >= 0.0 else LEAKY_SLOPE * d[j]
            d[j] = v
            s += v
    else:
        for j in range(m):
            s += d[j]
    return s


# ------------------------------------------------------------- layer kernels


@njit(**SERIAL_OPTS)
def _row_times_W(W, B, i, out, transpose):
    """out = sum_k W[i, k] B[k] (or W[k, i] B[k] if transpose), four rows of B per sweep.

    Four rows per sweep load and store ``out`` a quarter as often; the first
    sweep writes instead of accumulating so ``out`` needs no zeroing pass.
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


@njit(**SERIAL_OPTS)
def dense_forward(W, b, A_prev, Z, A, code):
    """Z = W A_prev + b, A = g(Z). W (n, n_prev), A_prev (n_prev, m), Z/A (n, m)."""
    n, n_prev = W.shape
    m = A_prev.shape[1]
    if n * n_prev * m >= BLAS_MIN_MACS:
        np.dot(W, A_prev, Z)
        for i in range(n):
            bias_activate_inplace(code, b[i, 0], Z[i], A[i])
    else:
        for i in range(n):  # each row of Z finished (bias, activation) while in L1
            _row_times_W(W, A_prev, i, Z[i], False)
            bias_activate_inplace(code, b[i, 0], Z[i], A[i])


@njit(**SERIAL_OPTS)
def row_means(dZ, db):
    """db[i] = mean of row i of dZ (summed in float64, whatever dZ's dtype)."""
    n, m = dZ.shape
    for i in range(n):
        s = 0.0
        d = dZ[i]
        for j in range(m):
            s += d[j]
        db[i, 0] = s / m


@njit(**SERIAL_OPTS)
def dense_grads(dZ, A_prev, dW, db):
    """dW = dZ A_prev^T / m, db = row sums of dZ / m."""
    weight_grads(dZ, A_prev, dW)
    row_means(dZ, db)


@njit(**SERIAL_OPTS)
def dense_delta_prev(W, dZ, Z_prev, A_prev, code_prev, dZ_prev):
    """dZ_prev = (W^T dZ) * g'(Z_prev), the derivative fused into the same row pass."""
    n, n_prev = W.shape
    m = dZ.shape[1]
    if n * n_prev * m >= BLAS_MIN_MACS:
        np.dot(W.T, dZ, dZ_prev)
        for k in range(n_prev):
            times_derivative(code_prev, dZ_prev[k], Z_prev[k], A_prev[k])
    else:
        for k in range(n_prev):
            _row_times_W(W, dZ, k, dZ_prev[k], True)
            times_derivative(code_prev, dZ_prev[k], Z_prev[k], A_prev[k])


@njit(**SERIAL_OPTS)
def output_delta(AL, Y, ZL, code, loss, dZ):
    """dZ_L = A_L - Y (canonical pairs), times g'(Z_L) for mse with a non-identity output."""
    n, m = AL.shape
    for i in range(n):
        d = dZ[i]
        a = AL[i]
        y = Y[i]
        for j in range(m):
            d[j] = a[j] - y[j]
        if loss == MSE and code != IDENTITY:
            times_derivative(code, d, ZL[i], a)


@njit(**SERIAL_OPTS)
def cost(AL, ZL, Y, loss):
    """J = (1/m) sum of L, from the logits for cross-entropy (never log(0))."""
    n, m = AL.shape
    total = 0.0
    for i in range(n):
        for j in range(m):
            if loss == CROSS_ENTROPY:
                z = ZL[i, j]
                # softplus(z) - y z, softplus(z) = max(z, 0) + log1p(e^-|z|)
                total += (max(z, 0.0) + math.log1p(math.exp(-abs(z)))) - Y[i, j] * z
            else:
                e = AL[i, j] - Y[i, j]
                total += 0.5 * e * e
    return total / m


# --------------------------------------------------------- the training loop


@njit(**SERIAL_OPTS)
def _tile_4x4(W, dZ, Zp, x0, x1, x2, x3, i, k, scale):
    """Units i..i+3 x inputs k..k+3 (rows x0..x3 of X): gradient, update, next Z.

    16 dot products in one sweep over the examples keep 16 SIMD accumulators in
    registers and load each of dZ's and X's vectors once for 4 FMAs.
    """
    d0, d1, d2, d3 = dZ[i], dZ[i + 1], dZ[i + 2], dZ[i + 3]
    zero = dZ.dtype.type(0)  # float32 sums stay float32: twice the SIMD lanes
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for j in range(d0.shape[0]):
        a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
        e = d0[j]
        s00 += e * a0
        s01 += e * a1
        s02 += e * a2
        s03 += e * a3
        e = d1[j]
        s10 += e * a0
        s11 += e * a1
        s12 += e * a2
        s13 += e * a3
        e = d2[j]
        s20 += e * a0
        s21 += e * a1
        s22 += e * a2
        s23 += e * a3
        e = d3[j]
        s30 += e * a0
        s31 += e * a1
        s32 += e * a2
        s33 += e * a3
    w00 = W[i, k] - scale * s00
    w01 = W[i, k + 1] - scale * s01
    w02 = W[i, k + 2] - scale * s02
    w03 = W[i, k + 3] - scale * s03
    w10 = W[i + 1, k] - scale * s10
    w11 = W[i + 1, k + 1] - scale * s11
    w12 = W[i + 1, k + 2] - scale * s12
    w13 = W[i + 1, k + 3] - scale * s13
    w20 = W[i + 2, k] - scale * s20
    w21 = W[i + 2, k + 1] - scale * s21
    w22 = W[i + 2, k + 2] - scale * s22
    w23 = W[i + 2, k + 3] - scale * s23
    w30 = W[i + 3, k] - scale * s30
    w31 = W[i + 3, k + 1] - scale * s31
    w32 = W[i + 3, k + 2] - scale * s32
    w33 = W[i + 3, k + 3] - scale * s33
    W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3] = w00, w01, w02, w03
    W[i + 1, k], W[i + 1, k + 1], W[i + 1, k + 2], W[i + 1, k + 3] = w10, w11, w12, w13
    W[i + 2, k], W[i + 2, k + 1], W[i + 2, k + 2], W[i + 2, k + 3] = w20, w21, w22, w23
    W[i + 3, k], W[i + 3, k + 1], W[i + 3, k + 2], W[i + 3, k + 3] = w30, w31, w32, w33
    z0, z1, z2, z3 = Zp[i], Zp[i + 1], Zp[i + 2], Zp[i + 3]
    for j in range(d0.shape[0]):
        a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
        z0[j] += w00 * a0 + w01 * a1 + w02 * a2 + w03 * a3
        z1[j] += w10 * a0 + w11 * a1 + w12 * a2 + w13 * a3
        z2[j] += w20 * a0 + w21 * a1 + w22 * a2 + w23 * a3
        z3[j] += w30 * a0 + w31 * a1 + w32 * a2 + w33 * a3


@njit(**SERIAL_OPTS)
def _tile_1x4(W, dZ, Zp, x0, x1, x2, x3, i, k, scale):
    """One unit x 4 inputs: the remainder of _tile_4x4 (and all of logistic regression)."""
    d = dZ[i]
    s0 = s1 = s2 = s3 = dZ.dtype.type(0)
    for j in range(d.shape[0]):
        e = d[j]
        s0 += e * x0[j]
        s1 += e * x1[j]
        s2 += e * x2[j]
        s3 += e * x3[j]
    w0 = W[i, k] - scale * s0
    w1 = W[i, k + 1] - scale * s1
    w2 = W[i, k + 2] - scale * s2
    w3 = W[i, k + 3] - scale * s3
    W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3] = w0, w1, w2, w3
    z = Zp[i]
    for j in range(d.shape[0]):
        z[j] += w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j]


@njit(**SERIAL_OPTS)
def _first_layer_block(W, dZ, X, Zp, k0, k1, scale):
    """For X's rows k0..k1: W[:, k] -= scale * dZ X[k]^T, then Zp = W[:, k0:k1] X[k0:k1].

    Each block of 4 rows of X serves the gradient, the update and the next
    forward while it sits in L1: one pass over X.
    """
    n, m = dZ.shape
    Zp[:] = 0.0
    k = k0
    while k + 4 <= k1:
        x0, x1, x2, x3 = X[k], X[k + 1], X[k + 2], X[k + 3]
        i = 0
        while i + 4 <= n:
            _tile_4x4(W, dZ, Zp, x0, x1, x2, x3, i, k, scale)
            i += 4
        while i < n:
            _tile_1x4(W, dZ, Zp, x0, x1, x2, x3, i, k, scale)
            i += 1
        k += 4
    while k < k1:
        x0 = X[k]
        for i in range(n):
            d = dZ[i]
            s0 = dZ.dtype.type(0)
            for j in range(m):
                s0 += d[j] * x0[j]
            w0 = W[i, k] - scale * s0
            W[i, k] = w0
            z = Zp[i]
            for j in range(m):
                z[j] += w0 * x0[j]
        k += 1


@njit(**PARALLEL_OPTS)
def _first_layer_pass(W, dZ, X, Zacc, Zparts, scale):
    """Update W (first layer) and set Zacc = W_new X in one pass over X.

    With T = Zparts.shape[0] > 1 threads, thread t owns rows [k_t, k_t+1) of X
    and writes its partial W X into Zparts[t]; the partials are then added in
    thread order, so the result depends only on T.
    """
    T = Zparts.shape[0]
    n0 = X.shape[0]
    if T == 1:
        _first_layer_block(W, dZ, X, Zacc, 0, n0, scale)
        return
    for t in prange(T):
        _first_layer_block(W, dZ, X, Zparts[t], (n0 * t) // T, (n0 * (t + 1)) // T, scale)
    Zacc[:] = Zparts[0]
    for t in range(1, T):
        Zacc += Zparts[t]


@njit(**SERIAL_OPTS)
def fused_first_layer(n1, n0, m):
    """Whether the first layer runs the one-pass-over-X kernel (else two GEMMs)."""
    return n1 <= FUSED_MAX_UNITS or n1 * n0 * m < BLAS_MIN_MACS


@njit(**SERIAL_OPTS)
def first_layer_forward(W, X, Zacc, Zparts):
    """Zacc = W X (no bias) before the first iteration."""
    n, n0 = W.shape
    if not fused_first_layer(n, n0, X.shape[1]):
        np.dot(W, X, Zacc)
    else:
        # the fused pass with a zero gradient leaves W as it is
        _first_layer_pass(W, np.zeros_like(Zacc), X, Zacc, Zparts, X.dtype.type(0))


@njit(**SERIAL_OPTS)
def _view(flat, offset, rows, cols):
    """A (rows, cols) C-contiguous view into a flat buffer (no copy, no call)."""
    return flat[offset:offset + rows * cols].reshape((rows, cols))


# Row passes over a whole layer stay serial, even at 256 x 10000: spread over
# two threads with prange they made the wide net's iteration 30% *slower*
# (132 vs 100 ms, 2 cores), the OpenMP workers and OpenBLAS's worker threads
# each spin-waiting on the core the other needs between GEMMs.


@njit(**SERIAL_OPTS)
def bias_activate_rows(code, b, Zin, Z, A, inplace):
    """Z = Zin + b (or Z += b if inplace), A = g(Z), every row."""
    for i in range(Z.shape[0]):
        if inplace:
            bias_activate_inplace(code, b[i, 0], Z[i], A[i])
        else:
            bias_activate(code, b[i, 0], Zin[i], Z[i], A[i])


@njit(**SERIAL_OPTS)
def delta_prev_and_db(W, dZ, Z_prev, A_prev, code_prev, dZ_prev, db_prev):
    """dZ_prev = (W^T dZ) * g'(Z_prev) and db_prev = its row sums / m, in one row pass.

    Through BLAS, W^T (W is C-contiguous, so W.T is Fortran order: a transpose
    flag, no copy) times dZ first, then one pass that applies the derivative
    and sums each row.
    """
    n, n_prev = W.shape
    m = dZ.shape[1]
    blas = n * n_prev * m >= BLAS_MIN_MACS
    if blas:
        np.dot(W.T, dZ, dZ_prev)
    for k in range(n_prev):
        d = dZ_prev[k]
        if not blas:
            _row_times_W(W, dZ, k, d, True)
        db_prev[k, 0] = times_derivative_sum(code_prev, d, Z_prev[k], A_prev[k]) / m


@njit(**SERIAL_OPTS)
def weight_grads(dZ, A_prev, dW):
    """dW = dZ A_prev^T / m (db comes from the pass that produced dZ)."""
    n, m = dZ.shape
    n_prev = A_prev.shape[0]
    if n * n_prev * m >= BLAS_MIN_MACS:
        np.dot(dZ, A_prev.T, dW)  # A_prev.T is Fortran order: a dgemm transpose flag
        dW *= 1.0 / m
        return
    zero = dZ.dtype.type(0)
    for i in range(n):
        d = dZ[i]
        k = 0
        while k + 4 <= n_prev:
            a0, a1, a2, a3 = A_prev[k], A_prev[k + 1], A_prev[k + 2], A_prev[k + 3]
            s0 = s1 = s2 = s3 = zero
            for j in range(m):
                dj = d[j]
                s0 += dj * a0[j]
                s1 += dj * a1[j]
                s2 += dj * a2[j]
                s3 += dj * a3[j]
            dW[i, k] = s0 / m
            dW[i, k + 1] = s1 / m
            dW[i, k + 2] = s2 / m
            dW[i, k + 3] = s3 / m
            k += 4
        while k < n_prev:
            a0 = A_prev[k]
            s0 = zero
            for j in range(m):
                s0 += d[j] * a0[j]
            dW[i, k] = s0 / m
            k += 1


@njit(**SERIAL_OPTS)
def train_chunk(W_flat, b_flat, dims, codes, loss, X, Y, learning_rate, i0, i1, num_iterations,
                cost_every, forward_done, Zacc, Zparts, Z_flat, A_flat, dZ_flat, dW_flat,
                db_flat, costs):
    """Run gradient descent for iterations i0 .. i1-1, updating W_flat, b_flat in place.

    Layer l's W is ``W_flat``'s next dims[l+1]*dims[l] values, its b the next
    dims[l+1] of ``b_flat``; Z, A, dZ of layer l are (dims[l+1], m) blocks of
    their flat buffers. Flat buffers rather than lists of arrays: a typed-list
    lookup costs ~40 ns, which for the planar net is a third of an iteration.

    ``Zacc`` holds W1 X (without b1) for iteration i0 on entry and for i1 on
    exit (when the first layer goes through BLAS it *is* layer 1's block of
    ``Z_flat``, and b1 is added in place). If ``i1 < num_iterations`` the
    forward pass and cost of iteration i1 are also computed, without its
    update, so the caller can report that cost before any parameter changes;
    the next chunk is then called with ``forward_done`` and starts from the
    Z and A buffers instead of computing that forward pass again.
    costs[i // cost_every] receives each recorded cost. On the BLAS path the
    product W1 X for an iteration that will not run is never computed; the
    fused one-pass kernel still accumulates it in its last pass (one pass in
    num_iterations; skipping it would need a second kernel variant).
    """
    L = dims.shape[0] - 1
    m = X.shape[1]
    w_off = np.zeros(L + 1, np.int64)
    n_off = np.zeros(L + 1, np.int64)
    for l in range(L):
        w_off[l + 1] = w_off[l] + dims[l + 1] * dims[l]
        n_off[l + 1] = n_off[l] + dims[l + 1]
    n1, n0 = dims[1], dims[0]
    W1 = _view(W_flat, 0, n1, n0)
    b1 = _view(b_flat, 0, n1, 1)
    fused = fused_first_layer(n1, n0, m)
    scale = X.dtype.type(learning_rate / m)  # keeps float32 kernels float32
    for it in range(i0, min(i1 + 1, num_iterations)):
        # forward: layer 1 from Zacc, then the others
        if not (forward_done and it == i0):
            Z = _view(Z_flat, 0, n1, m)
            A = _view(A_flat, 0, n1, m)
            bias_activate_rows(codes[0], b1, Zacc, Z, A, not fused)
            for l in range(1, L):
                n, n_prev = dims[l + 1], dims[l]
                A_prev = A
                Z = _view(Z_flat, n_off[l] * m, n, m)
                A = _view(A_flat, n_off[l] * m, n, m)
                W = _view(W_flat, w_off[l], n, n_prev)
                if n * n_prev * m >= BLAS_MIN_MACS:
                    np.dot(W, A_prev, Z)
                    bias_activate_rows(codes[l], _view(b_flat, n_off[l], n, 1), Z, Z, A, True)
                else:
                    dense_forward(W, _view(b_flat, n_off[l], n, 1), A_prev, Z, A, codes[l])
            if it % cost_every == 0:
                costs[it // cost_every] = cost(A, Z, Y, loss)
            if it == i1:
                break
        else:
            Z = _view(Z_flat, n_off[L - 1] * m, dims[L], m)
            A = _view(A_flat, n_off[L - 1] * m, dims[L], m)
        # backward + update, last layer first; db of each layer comes from the
        # pass that produced its dZ
        dZ = _view(dZ_flat, n_off[L - 1] * m, dims[L], m)
        output_delta(A, Y, Z, codes[L - 1], loss, dZ)
        row_means(dZ, _view(db_flat, n_off[L - 1], dims[L], 1))
        for l in range(L - 1, 0, -1):
            n, n_prev = dims[l + 1], dims[l]
            W = _view(W_flat, w_off[l], n, n_prev)
            dW = _view(dW_flat, w_off[l], n, n_prev)
            A_prev = _view(A_flat, n_off[l - 1] * m, n_prev, m)
            Z_prev = _view(Z_flat, n_off[l - 1] * m, n_prev, m)
            dZ_prev = _view(dZ_flat, n_off[l - 1] * m, n_prev, m)
            weight_grads(dZ, A_prev, dW)
            # dZ of the layer below needs this layer's W before its update
            delta_prev_and_db(W, dZ, Z_prev, A_prev, codes[l - 1], dZ_prev,
                              _view(db_flat, n_off[l - 1], n_prev, 1))
            for q in range(w_off[l], w_off[l + 1]):
                W_flat[q] -= learning_rate * dW_flat[q]
            for q in range(n_off[l], n_off[l + 1]):
                b_flat[q] -= learning_rate * db_flat[q]
            dZ = dZ_prev
        for q in range(n1):  # db1: from the output delta's pass when L == 1
            b_flat[q] -= learning_rate * db_flat[q]
        # first layer: dW1 + update + next forward in one pass over X
        if fused:
            _first_layer_pass(W1, dZ, X, Zacc, Zparts, scale)
        else:
            dW1 = _view(dW_flat, 0, n1, n0)
            np.dot(dZ, X.T, dW1)  # X.T is Fortran order: a dgemm transpose flag, no copy
            for q in range(n1 * n0):
                W_flat[q] -= scale * dW_flat[q]
            if it + 1 < num_iterations:
                np.dot(W1, X, Zacc)
