"""The ``numba`` backend's elementwise math: e^x, tanh and sigmoid that LLVM vectorizes.

PyPI's Numba has no SVML, so ``math.exp`` in a loop stays a scalar libm call per
element. ``_exp`` is a Cody-Waite range reduction ``x = n ln2 + r, |r| <= ln2/2``
with a degree-12 Taylor polynomial (truncation < 2e-16) and ``2**n`` built from
its bits: only adds, multiplies, floor, compares and selects, all of which have
packed AVX2 and AVX-512 forms. tanh goes through an ``expm1`` built the same way
(so tanh of a tiny z keeps full relative precision), sigmoid through ``_exp``.
float32 gets the same algorithms in single precision (degree 7), twice the lanes.

``exp``, ``sigmoid`` and ``tanh`` pick the precision of their argument at compile time;
``exp_array``/``tanh_array``/``sigmoid_array`` apply them to a 1-D array (the
accuracy tests and the SIMD evidence use them).
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from .config import EXACT_INLINE_OPTS, EXACT_OPTS, SERIAL_OPTS

__all__ = ["exp", "sigmoid", "tanh", "exp_array", "tanh_array", "sigmoid_array"]

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 with its low bits zeroed: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10
EXP_OVERFLOW = 709.782712893384  # exp(x) > DBL_MAX above this
EXP_UNDERFLOW = -745.1332191019412  # exp(x) rounds to 0 below this
C2, C3, C4, C5, C6 = 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720
C7, C8, C9, C10 = 1 / 5040, 1 / 40320, 1 / 362880, 1 / 3628800
C11, C12 = 1 / 39916800, 1 / 479001600


@intrinsic
def _bits_to_float(typingctx, bits):
    """Reinterpret an int64's (int32's) bits as a float64 (float32): a register
    move, vectorizable."""
    wide = bits.bitwidth == 64
    sig = (types.float64 if wide else types.float32)(bits)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType() if wide else ir.FloatType())

    return sig, codegen


@njit(**EXACT_INLINE_OPTS)
def _pow2(k):
    """2.0**k for integer k in [-1022, 1023], from the exponent bits."""
    return _bits_to_float((k + 1023) << 52)


@njit(**EXACT_INLINE_OPTS)
def _expm1_poly(r):
    """e^r - 1 for |r| <= ln2/2, degree-12 Taylor, error < 2e-16 relative (Horner)."""
    return r * (1.0 + r * (C2 + r * (C3 + r * (C4 + r * (C5 + r * (C6 + r * (C7 + r * (
        C8 + r * (C9 + r * (C10 + r * (C11 + r * C12)))))))))))


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


@njit(**EXACT_INLINE_OPTS)
def _pow2_f32(k):
    return _bits_to_float(np.int32((k + 127) << 23))  # int32 arithmetic widens in Numba


@njit(**EXACT_INLINE_OPTS)
def _expm1_poly_f32(r):
    return r * (F_C1 + r * (F_C2 + r * (F_C3 + r * (F_C4 + r * (F_C5 + r * (F_C6 + r * F_C7))))))


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


def exp(x):
    """e^x in the precision of x: dispatched at compile time by :func:`_exp_overload`."""


def sigmoid(z):
    """sigmoid in the precision of z: dispatched at compile time by :func:`_sigmoid_overload`."""


def tanh(z):
    """tanh in the precision of z."""


@overload(exp, jit_options=dict(EXACT_OPTS), inline="always")
def _exp_overload(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: _exp_f32(x)
    return lambda x: _exp(x)


@overload(sigmoid, jit_options=dict(EXACT_OPTS))
def _sigmoid_overload(z):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def sigmoid_f32(z):
            return F_ONE / (F_ONE + _exp_f32(-z))
        return sigmoid_f32
    return lambda z: _sigmoid(z)


@overload(tanh, jit_options=dict(EXACT_OPTS))
def _tanh_overload(z):
    if isinstance(z, types.Float) and z.bitwidth == 32:
        def tanh_f32(z):
            u = _expm1_neg_f32(np.float32(-2.0) * abs(z))
            t = -u / (F_TWO + u)
            t = t if z >= F_ZERO else -t
            return z if z != z else t
        return tanh_f32
    return lambda z: _tanh(z)


# ------------------------------------------------------ 1-D kernels (tests, SIMD evidence)


@njit(**SERIAL_OPTS)
def exp_array(x, out):
    """out = e^x elementwise (1-D): the kernel the SIMD tests disassemble."""
    for j in range(x.shape[0]):
        out[j] = _exp(x[j])


@njit(**SERIAL_OPTS)
def tanh_array(x, out):
    for j in range(x.shape[0]):
        out[j] = tanh(x[j])


@njit(**SERIAL_OPTS)
def sigmoid_array(x, out):
    for j in range(x.shape[0]):
        out[j] = sigmoid(x[j])
