# Design
# ------
# The whole lecture -- forward, cost, backward, update -- for an L-layer net,
# for float32 and float64 (fused ``floating``), with the training loop itself
# in C. This file is included by two extension modules that differ only in
# compile flags: ``_kernels`` (gcc -O3, activation loops vectorized through
# glibc's libmvec) and ``_kernels_novec`` (auto-vectorization off, scalar
# libm), so the SIMD ablation compares the same source.
#
# * Layout: every matrix is C-contiguous (n_l, m): examples along rows, so an
#   activation loop over one row is a unit-stride loop gcc vectorizes.
# * Threads: examples are split into T contiguous column chunks, one per
#   OpenMP thread. Forward and backward are column-independent, except
#   dW = dZ A_prev^T and db, which each thread sums over its own chunk into a
#   private buffer; the buffers are added in thread order 0..T-1 afterwards,
#   so results are bitwise reproducible for a given dtype and T.
# * GEMM-shaped work goes to fastnn's own packed AVX-512 GEMM (_gemm.h),
#   called single-threaded inside each chunk. It measures faster here than
#   the BLAS scipy ships: OpenBLAS runs its AVX2 kernels when the environment
#   pins OPENBLAS_CORETYPE=Haswell, as this project's machines do. CPUs
#   without AVX-512 (and the novec build) use scipy's BLAS instead (function
#   pointers taken from scipy.linalg.cython_blas at import, so building needs
#   no scipy), as does a row vector times a matrix (gemv). Tiny products (the
#   planar 2-4-1 net, the 7-5-1 tail) use the unit-stride loops below, which
#   beat any call.
# * One-pass mode (layer 1 with a small output, huge X, few iterations): the
#   update dW1 = dZ1 X^T / m and the next forward's W1 X walk X together, in
#   cache-sized row blocks, each thread its own rows -- X is read once per
#   iteration instead of twice.
# * Gram mode (layer 1 with n_0 > m, e.g. 12288 -> 20 with m = 209): since
#   W1 X after the update is W1 X - (lr/m) dZ1 (X^T X), the trainer keeps
#   Zlin = W1 X and G = X^T X (m x m, computed once), and W1 itself is only
#   materialized at the end as W1_0 - (lr/m) (sum of dZ1) X^T. Exact in real
#   arithmetic; per iteration it touches X zero times instead of twice. The
#   backend picks it when G's one-off cost pays back over num_iterations. G
#   and the first W1 X are computed here too, in column chunks per thread, so
#   `threads` and bitwise reproducibility cover them.
# * Kernels assume validated C-contiguous input of one dtype (fastnn.Network
#   guarantees it); the Python-facing functions only build the plan.

cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, tanh, tanhf, log1p, fabs
from libc.stdlib cimport malloc, free
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_GetName

import numpy as np

cdef extern from "_simd.h" nogil:
    const char* FASTNN_COMPILE_FLAGS
    const char* FASTNN_VARIANT
    const int FASTNN_HAVE_OPENMP
    int fastnn_max_threads()

#: Flags this module was compiled with (set by setup.py), for reports.
COMPILE_FLAGS = FASTNN_COMPILE_FLAGS.decode()
#: "vec" or "novec".
VARIANT = FASTNN_VARIANT.decode()
#: Whether OpenMP was available at build time (else prange runs serially).
HAVE_OPENMP = bool(FASTNN_HAVE_OPENMP)

# Activation / loss codes: fastnn.activations.CODES, fastnn.losses.CODES.
cdef enum:
    SIGMOID = 0
    TANH = 1
    RELU = 2
    LEAKY_RELU = 3
    IDENTITY = 4
    CROSS_ENTROPY = 0
    MSE = 1

cdef double LEAKY_SLOPE = 0.01

# The codes as this build compiled them, for the tests to hold against
# fastnn.activations.CODES / fastnn.losses.CODES.
ACTIVATION_CODES = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU,
                    "leaky_relu": LEAKY_RELU, "identity": IDENTITY}
LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "mse": MSE}
LEAKY_RELU_SLOPE = LEAKY_SLOPE

# --------------------------------------------------------------------------
# BLAS from scipy, by function pointer
# --------------------------------------------------------------------------
ctypedef void (*dgemm_t)(char*, char*, int*, int*, int*, double*, double*, int*,
                         double*, int*, double*, double*, int*) noexcept nogil
ctypedef void (*sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*,
                         float*, int*, float*, float*, int*) noexcept nogil

ctypedef void (*dgemv_t)(char*, int*, int*, double*, double*, int*, double*, int*, double*,
                         double*, int*) noexcept nogil
ctypedef void (*sgemv_t)(char*, int*, int*, float*, float*, int*, float*, int*, float*,
                         float*, int*) noexcept nogil

cdef dgemm_t _dgemm = NULL
cdef sgemm_t _sgemm = NULL
cdef dgemv_t _dgemv = NULL
cdef sgemv_t _sgemv = NULL


def _load_blas():
    global _dgemm, _sgemm, _dgemv, _sgemv
    import scipy.linalg.cython_blas as cb
    capi = cb.__pyx_capi__
    _dgemm = <dgemm_t>PyCapsule_GetPointer(capi["dgemm"], PyCapsule_GetName(capi["dgemm"]))
    _sgemm = <sgemm_t>PyCapsule_GetPointer(capi["sgemm"], PyCapsule_GetName(capi["sgemm"]))
    _dgemv = <dgemv_t>PyCapsule_GetPointer(capi["dgemv"], PyCapsule_GetName(capi["dgemv"]))
    _sgemv = <sgemv_t>PyCapsule_GetPointer(capi["sgemv"], PyCapsule_GetName(capi["sgemv"]))


_load_blas()

# A product C (M, N) = A (M, K) B (K, N) runs in the loops here, not _gemm,
# below GEMM_MIN_MACS multiply-adds or when any of M, N, K is below
# GEMM_MIN_DIM: a GEMM packs both operands and pads to its register tile
# (8 x 24 in the own kernel), so a thin product -- planar's 4 x 2 layer over
# 10 000 examples, its dW with 2 columns -- streams faster in a loop (2.2x at
# m = 10 000, one thread). 4, not 8: a 7 x 20 layer over 5000 examples still
# gains 1.18x from the GEMM.
cdef Py_ssize_t GEMM_MIN_MACS = 1 << 15
cdef Py_ssize_t GEMM_MIN_DIM = 4


def _tune(Py_ssize_t gemm_min_macs, Py_ssize_t gemm_min_dim):
    """Set the GEMM thresholds (for tuning experiments); returns the old ones."""
    global GEMM_MIN_MACS, GEMM_MIN_DIM
    old = (GEMM_MIN_MACS, GEMM_MIN_DIM)
    GEMM_MIN_MACS, GEMM_MIN_DIM = gemm_min_macs, gemm_min_dim
    return old


cdef inline bint _big(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    """Whether the product (M, K) x (K, N) goes to _gemm rather than the loops."""
    return (M * N * K >= GEMM_MIN_MACS and M >= GEMM_MIN_DIM and N >= GEMM_MIN_DIM
            and K >= GEMM_MIN_DIM)


cdef inline void _blas_gemm(char ta, char tb, int M, int N, int K, floating alpha,
                            floating* A, int lda,  # IN
                            floating* B, int ldb,  # IN
                            floating beta,
                            floating* C, int ldc,  # OUT
                            ) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C."""
    if floating is double:
        _dgemm(&ta, &tb, &M, &N, &K, &alpha, A, &lda, B, &ldb, &beta, C, &ldc)
    else:
        _sgemm(&ta, &tb, &M, &N, &K, &alpha, A, &lda, B, &ldb, &beta, C, &ldc)


cdef extern from "_gemm.h" nogil:
    const int FASTNN_OWN_GEMM
    int fastnn_gemm_cpu_ok()
    int fastnn_dgemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double alpha,
                     const double* A, Py_ssize_t rsa, Py_ssize_t csa,
                     const double* B, Py_ssize_t rsb, Py_ssize_t csb,
                     double beta, double* C, Py_ssize_t ldc)
    int fastnn_sgemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, float alpha,
                     const float* A, Py_ssize_t rsa, Py_ssize_t csa,
                     const float* B, Py_ssize_t rsb, Py_ssize_t csb,
                     float beta, float* C, Py_ssize_t ldc)

#: Whether this build has fastnn's own GEMM (not the novec build) and this
#: CPU can run it (AVX-512).
HAVE_OWN_GEMM = bool(FASTNN_OWN_GEMM and fastnn_gemm_cpu_ok())
cdef bint USE_OWN_GEMM = HAVE_OWN_GEMM


def _use_own_gemm(on):
    """Route GEMMs to fastnn's own kernel (True, if built) or BLAS (False);
    None changes nothing. Returns the setting in force before the call."""
    global USE_OWN_GEMM
    old = bool(USE_OWN_GEMM)
    if on is not None:
        USE_OWN_GEMM = bool(on) and HAVE_OWN_GEMM
    return old


cdef inline void _gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, floating alpha,
                       const floating* A, Py_ssize_t rsa, Py_ssize_t csa,  # IN (M, K)
                       const floating* B, Py_ssize_t rsb, Py_ssize_t csb,  # IN (K, N)
                       floating beta,
                       floating* C, Py_ssize_t ldc,                        # OUT (M, N)
                       ) noexcept nogil:
    """Row-major C = alpha A B + beta C, A and B given by (row, column) strides:
    one is 1 and the other spans the contiguous extent (as _gemm_check checks).
    Own GEMM when on (BLAS if its buffer can't be had)."""
    cdef char ta, tb
    cdef Py_ssize_t lda, ldb
    if USE_OWN_GEMM:
        if floating is double:
            if fastnn_dgemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc) == 0:
                return
        else:
            if fastnn_sgemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc) == 0:
                return
    # Row-major C is column-major C^T = B^T A^T; a row-major operand is its own
    # transpose in column-major terms ('N'), a column-major one needs 'T'. An
    # operand with one row or column may have both strides 1: take the reading
    # whose leading dimension BLAS accepts (>= the contiguous extent).
    if csb == 1 and rsb >= max(1, N):
        tb, ldb = c'N', rsb
    else:
        tb, ldb = c'T', csb
    if csa == 1 and rsa >= max(1, K):
        ta, lda = c'N', rsa
    else:
        ta, lda = c'T', csa
    _blas_gemm(tb, ta, <int>N, <int>M, <int>K, alpha, <floating*>B, <int>ldb,
               <floating*>A, <int>lda, beta, C, <int>ldc)


def _gemm_check(A, B, C, double alpha, double beta):
    """C = alpha A B + beta C through the kernels' _gemm (own kernel or BLAS, per
    _use_own_gemm), for tests. A and B: 2-D float64/float32 arrays (views and
    transposes welcome) with one unit stride; C: C-contiguous, written in place."""
    dtype = C.dtype
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"C must be float64 or float32, got {dtype}")
    if A.dtype != dtype or B.dtype != dtype:
        raise TypeError(f"A, B and C must share one dtype, got {A.dtype}, {B.dtype}, {dtype}")
    if A.ndim != 2 or B.ndim != 2 or C.ndim != 2:
        raise ValueError("A, B and C must be 2-D")
    M, K = A.shape
    if B.shape[0] != K or C.shape != (M, B.shape[1]):
        raise ValueError(f"shapes {A.shape} x {B.shape} -> {C.shape} do not chain")
    if not C.flags.c_contiguous or not C.flags.writeable:
        raise ValueError("C must be C-contiguous and writeable")
    item = dtype.itemsize
    if any(st % item or st < 0 for st in A.strides + B.strides):
        raise ValueError("A and B need non-negative strides in whole elements")
    cdef Py_ssize_t m_ = M, n_ = C.shape[1], k_ = K, ldc = max(1, C.shape[1])
    cdef Py_ssize_t rsa = A.strides[0] // item, csa = A.strides[1] // item
    cdef Py_ssize_t rsb = B.strides[0] // item, csb = B.strides[1] // item
    # An empty operand is never read: give it row-major strides.
    if A.size == 0:
        rsa, csa = max(1, k_), 1
    if B.size == 0:
        rsb, csb = max(1, n_), 1
    # One unit stride, and the other spanning the contiguous side (what BLAS needs).
    if not ((csa == 1 and rsa >= max(1, k_)) or (rsa == 1 and csa >= max(1, m_))):
        raise ValueError(f"A must be row- or column-major (a view of one), got strides {A.strides}")
    if not ((csb == 1 and rsb >= max(1, n_)) or (rsb == 1 and csb >= max(1, k_))):
        raise ValueError(f"B must be row- or column-major (a view of one), got strides {B.strides}")
    if M == 0 or C.shape[1] == 0:
        return
    cdef Py_ssize_t a0 = A.__array_interface__["data"][0]
    cdef Py_ssize_t b0 = B.__array_interface__["data"][0]
    cdef Py_ssize_t c0 = C.__array_interface__["data"][0]
    if dtype == np.float64:
        with nogil:
            _gemm(m_, n_, k_, alpha, <const double*>a0, rsa, csa, <const double*>b0, rsb, csb,
                  beta, <double*>c0, ldc)
    else:
        with nogil:
            _gemm(m_, n_, k_, <float>alpha, <const float*>a0, rsa, csa, <const float*>b0, rsb,
                  csb, <float>beta, <float*>c0, ldc)


cdef inline void _blas_gemv(char ta, int M, int N, floating alpha,
                            floating* A, int lda,  # IN
                            floating* x,           # IN
                            floating beta,
                            floating* y,           # OUT
                            ) noexcept nogil:
    """Column-major y = alpha op(A) x + beta y (unit strides)."""
    cdef int one = 1
    if floating is double:
        _dgemv(&ta, &M, &N, &alpha, A, &lda, x, &one, &beta, y, &one)
    else:
        _sgemv(&ta, &M, &N, &alpha, A, &lda, x, &one, &beta, y, &one)


# --------------------------------------------------------------------------
# Products on a column chunk [c0, c1) of (., m) row-major matrices
# --------------------------------------------------------------------------
cdef void _gemm_nn(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                   floating alpha,
                   const floating* W,  # IN (n, k)
                   const floating* A,  # IN (k, m)
                   floating beta,
                   floating* Z,        # OUT (n, m), columns c0:c1
                   ) noexcept nogil:
    """Z[:, c] = alpha W @ A[:, c] + beta Z[:, c]."""
    cdef Py_ssize_t j, kk, i, mc = c1 - c0
    cdef floating w
    cdef floating* z
    cdef const floating* a
    if n == 1 and k * mc >= GEMM_MIN_MACS:
        # A row vector times a wide block (logistic regression): gemv streams A once.
        if beta == 0:  # y = 0 * y would keep a NaN left in an uninitialized buffer
            for i in range(c0, c1):
                Z[i] = 0
        _blas_gemv(c'N', <int>mc, <int>k, alpha, <floating*>A + c0, <int>m, <floating*>W,
                   beta, Z + c0)
        return
    if _big(n, mc, k):
        _gemm(n, mc, k, alpha, W, k, 1, A + c0, m, 1, beta, Z + c0, m)
        return
    for j in range(n):
        z = Z + j * m
        kk = 0
        if beta == 0:
            # The first term initializes the row (0 + w a == w a exactly).
            w = alpha * W[j * k]
            for i in range(c0, c1):
                z[i] = w * A[i]
            kk = 1
        while kk < k:
            w = alpha * W[j * k + kk]
            a = A + kk * m
            for i in range(c0, c1):
                z[i] += w * a[i]
            kk += 1


cdef inline floating _dot(const floating* x, const floating* y, Py_ssize_t c0,
                          Py_ssize_t c1) noexcept nogil:
    """Sum x[i] y[i] over [c0, c1) with 8 fixed partial sums (vectorizable
    without reassociation flags, and the same order in every build)."""
    cdef floating s[8]
    cdef floating t
    cdef Py_ssize_t i, u, end = c0 + ((c1 - c0) // 8) * 8
    for u in range(8):
        s[u] = 0
    for i in range(c0, end, 8):
        for u in range(8):
            s[u] += x[i + u] * y[i + u]
    t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
    for i in range(end, c1):
        t += x[i] * y[i]
    return t


cdef inline floating _sum(const floating* x, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef floating s[8]
    cdef floating t
    cdef Py_ssize_t i, u, end = c0 + ((c1 - c0) // 8) * 8
    for u in range(8):
        s[u] = 0
    for i in range(c0, end, 8):
        for u in range(8):
            s[u] += x[i + u]
    t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
    for i in range(end, c1):
        t += x[i]
    return t


cdef void _gemm_nt(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                   floating alpha,
                   const floating* dZ,  # IN (n, m)
                   const floating* A,   # IN (k, m)
                   floating beta,
                   floating* dW,        # OUT (n, k)
                   ) noexcept nogil:
    """dW = alpha dZ[:, c] @ A[:, c]^T + beta dW (a sum over the chunk's examples)."""
    cdef Py_ssize_t j, kk, mc = c1 - c0
    cdef floating s
    if n == 1 and k * mc >= GEMM_MIN_MACS:
        if beta == 0:  # y = 0 * y would keep a NaN left in an uninitialized buffer
            for kk in range(k):
                dW[kk] = 0
        _blas_gemv(c'T', <int>mc, <int>k, alpha, <floating*>A + c0, <int>m, <floating*>dZ + c0,
                   beta, dW)
        return
    if _big(n, k, mc):
        # A_c^T (mc, k) is A_c read with row stride 1, column stride m.
        _gemm(n, k, mc, alpha, dZ + c0, m, 1, A + c0, 1, m, beta, dW, k)
        return
    for j in range(n):
        for kk in range(k):
            s = alpha * _dot(dZ + j * m, A + kk * m, c0, c1)
            if beta == 0:
                dW[j * k + kk] = s
            else:
                dW[j * k + kk] = beta * dW[j * k + kk] + s


cdef void _gemm_tn(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                   const floating* W,   # IN (n, k)
                   const floating* dZ,  # IN (n, m)
                   floating* dA,        # OUT (k, m), columns c0:c1
                   ) noexcept nogil:
    """dA[:, c] = W^T @ dZ[:, c]."""
    cdef Py_ssize_t j, kk, i, mc = c1 - c0
    cdef floating w
    cdef floating* d
    cdef const floating* z
    if _big(k, mc, n):
        # W^T (k, n) is W read with row stride 1, column stride k.
        _gemm(k, mc, n, <floating>1, W, 1, k, dZ + c0, m, 1, <floating>0, dA + c0, m)
        return
    for kk in range(k):
        d = dA + kk * m
        w = W[kk]
        for i in range(c0, c1):
            d[i] = w * dZ[i]
        for j in range(1, n):
            w = W[j * k + kk]
            z = dZ + j * m
            for i in range(c0, c1):
                d[i] += w * z[i]


# --------------------------------------------------------------------------
# Activations: forward (fused with the bias) and derivative, side by side.
# Each loop is unit stride with the switch hoisted out, so gcc vectorizes it
# (exp/tanh through libmvec in the vec build).
# --------------------------------------------------------------------------
cdef void _bias_act(int code, Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                    const floating* S,  # IN (n, m): W A_prev (may alias Z)
                    const floating* b,  # IN (n,)
                    floating* Z,        # OUT (n, m)
                    floating* A,        # OUT (n, m)
                    ) noexcept nogil:
    cdef Py_ssize_t j, i
    cdef floating bj, z
    cdef const floating* s
    cdef floating* zr
    cdef floating* ar
    cdef floating slope = <floating>LEAKY_SLOPE
    for j in range(n):
        bj = b[j]
        s = S + j * m
        zr = Z + j * m
        ar = A + j * m
        for i in range(c0, c1):
            zr[i] = s[i] + bj
        if code == SIGMOID:
            # 1/(1+e^-z): e^1000 = inf gives exactly 0, e^-1000 = 0 gives 1.
            for i in range(c0, c1):
                if floating is double:
                    ar[i] = 1.0 / (1.0 + exp(-zr[i]))
                else:
                    ar[i] = 1.0 / (1.0 + expf(-zr[i]))
        elif code == TANH:
            for i in range(c0, c1):
                if floating is double:
                    ar[i] = tanh(zr[i])
                else:
                    ar[i] = tanhf(zr[i])
        elif code == RELU:
            for i in range(c0, c1):
                z = zr[i]
                ar[i] = z if z > 0 else 0
        elif code == LEAKY_RELU:
            for i in range(c0, c1):
                z = zr[i]
                ar[i] = z if z >= 0 else slope * z
        else:
            for i in range(c0, c1):
                ar[i] = zr[i]


cdef void _times_derivative(int code, Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                            const floating* Z,  # IN (n, m)
                            const floating* A,  # IN (n, m)
                            floating* D,        # IN/OUT (n, m): D *= g'(Z)
                            ) noexcept nogil:
    cdef Py_ssize_t j, i
    cdef floating a
    cdef const floating* zr
    cdef const floating* ar
    cdef floating* dr
    cdef floating slope = <floating>LEAKY_SLOPE
    if code == IDENTITY:
        return
    for j in range(n):
        zr = Z + j * m
        ar = A + j * m
        dr = D + j * m
        if code == SIGMOID:       # g' = a (1 - a)
            for i in range(c0, c1):
                a = ar[i]
                dr[i] = dr[i] * (a * (1 - a))
        elif code == TANH:        # g' = 1 - a^2
            for i in range(c0, c1):
                a = ar[i]
                dr[i] = dr[i] * (1 - a * a)
        elif code == RELU:        # g'(0) = 1 by the lecture's convention
            for i in range(c0, c1):
                dr[i] = dr[i] if zr[i] >= 0 else 0
        elif code == LEAKY_RELU:
            for i in range(c0, c1):
                dr[i] = dr[i] if zr[i] >= 0 else dr[i] * slope


cdef double _cost(int loss, Py_ssize_t n, Py_ssize_t m,
                  const floating* Z,  # IN (n, m) logits
                  const floating* A,  # IN (n, m)
                  const floating* Y,  # IN (n, m)
                  ) noexcept nogil:
    """J = (1/m) sum L, in float64, serial fixed order (only at recorded iterations)."""
    cdef Py_ssize_t e
    cdef double z, y, d, s = 0
    for e in range(n * m):
        z = Z[e]
        y = Y[e]
        if loss == CROSS_ENTROPY:   # softplus(z) - y z, never log(0)
            s += (z if z > 0 else 0.0) + log1p(exp(-fabs(z))) - y * z
        else:
            d = <double>A[e] - y
            s += 0.5 * d * d
    return s / m


# --------------------------------------------------------------------------
# The plan: pointers to every buffer, built in Python, used without the GIL
# --------------------------------------------------------------------------
cdef struct Plan:
    int L                 # layers
    Py_ssize_t m          # examples
    int T                 # threads = column chunks
    Py_ssize_t* n         # n[0..L]
    int* act              # act[l], l = 1..L
    int loss
    void** W              # W[l] (n_l, n_{l-1}), l = 1..L
    void** b              # b[l] (n_l,)
    void** Z              # Z[l] (n_l, m)
    void** A              # A[0] = X, A[l] (n_l, m)
    void** dZ             # dZ[l] (n_l, m)
    void** dWp            # dWp[t * (L+1) + l] per-thread partial sums of dZ A^T
    void** dbp            # dbp[t * (L+1) + l]
    void* Y               # (n_L, m)
    int gram              # layer 1 mode: 0 direct, 1 Gram, 2 one pass over X
    Py_ssize_t kb         # one-pass mode: rows of X per cache block
    void* scratch         # one-pass mode: T blocks (n_1, kb)
    void* Zpart           # one-pass mode: T partial sums (n_1, m) of W1 X
    bint last             # this update is training's last: no next forward needed
    void* G               # (m, m) X^T X
    void* Zlin            # (n_1, m) W1 X
    void* S               # (n_1, m) sum of dZ1 over iterations


cdef inline Py_ssize_t _c0(Plan* p, int t) noexcept nogil:
    return p.m * t // p.T


cdef void _forward_chunk(Plan* p, floating* tag, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef int l
    cdef floating** W = <floating**>p.W
    cdef floating** b = <floating**>p.b
    cdef floating** Z = <floating**>p.Z
    cdef floating** A = <floating**>p.A
    cdef Py_ssize_t m = p.m
    for l in range(1, p.L + 1):
        if l == 1 and p.gram:
            _bias_act(p.act[1], p.n[1], m, c0, c1, <floating*>p.Zlin, b[1], Z[1], A[1])
        else:
            _gemm_nn(p.n[l], p.n[l - 1], m, c0, c1, 1, W[l], A[l - 1], 0, Z[l])
            _bias_act(p.act[l], p.n[l], m, c0, c1, Z[l], b[l], Z[l], A[l])


cdef void _backward_chunk(Plan* p, floating* tag, int t, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Per-thread partial dW, db of the chunk's examples (not yet / m)."""
    cdef int l, L = p.L
    cdef Py_ssize_t j, i, m = p.m
    cdef floating** W = <floating**>p.W
    cdef floating** Z = <floating**>p.Z
    cdef floating** A = <floating**>p.A
    cdef floating** dZ = <floating**>p.dZ
    cdef floating** dWp = <floating**>p.dWp + t * (L + 1)
    cdef floating** dbp = <floating**>p.dbp + t * (L + 1)
    cdef floating* Y = <floating*>p.Y
    cdef floating* d
    cdef floating* a
    cdef floating* y
    # Output layer: dZ_L = A_L - Y, times g'(Z_L) for mse on a non-identity output
    # (cross_entropy only pairs with sigmoid, where A_L - Y is exact).
    for j in range(p.n[L]):
        d = dZ[L] + j * m
        a = A[L] + j * m
        y = Y + j * m
        for i in range(c0, c1):
            d[i] = a[i] - y[i]
    if p.loss == MSE:
        _times_derivative(p.act[L], p.n[L], m, c0, c1, Z[L], A[L], dZ[L])
    for l in range(L, 0, -1):
        if not (l == 1 and p.gram):
            _gemm_nt(p.n[l], p.n[l - 1], m, c0, c1, 1, dZ[l], A[l - 1], 0, dWp[l])
        for j in range(p.n[l]):
            dbp[l][j] = _sum(dZ[l] + j * m, c0, c1)
        if l > 1:
            _gemm_tn(p.n[l], p.n[l - 1], m, c0, c1, W[l], dZ[l], dZ[l - 1])
            _times_derivative(p.act[l - 1], p.n[l - 1], m, c0, c1, Z[l - 1], A[l - 1], dZ[l - 1])


cdef void _forward(Plan* p, floating* tag) noexcept nogil:
    cdef int t
    if p.T == 1:
        _forward_chunk(p, tag, 0, p.m)
        return
    for t in prange(p.T, num_threads=p.T, schedule="static", chunksize=1):
        _forward_chunk(p, tag, _c0(p, t), _c0(p, t + 1))


cdef void _backward(Plan* p, floating* tag) noexcept nogil:
    cdef int t
    if p.T == 1:
        _backward_chunk(p, tag, 0, 0, p.m)
        return
    for t in prange(p.T, num_threads=p.T, schedule="static", chunksize=1):
        _backward_chunk(p, tag, t, _c0(p, t), _c0(p, t + 1))


cdef void _reduce(Plan* p, floating* tag, floating scale, int l, bint is_b,
                  floating* out,  # OUT: out = scale * sum_t partial_t   (or out += when update)
                  bint update) noexcept nogil:
    """Combine the T partial sums of layer l in thread order 0..T-1."""
    cdef Py_ssize_t e, size = p.n[l] if is_b else p.n[l] * p.n[l - 1]
    cdef int t
    cdef floating s
    cdef floating** part = <floating**>(p.dbp if is_b else p.dWp)
    cdef int stride = p.L + 1
    for e in range(size):
        s = part[l][e]
        for t in range(1, p.T):
            s = s + part[t * stride + l][e]
        if update:
            out[e] = out[e] - scale * (s / p.m)
        else:
            out[e] = s / p.m


cdef void _onepass_rows(Plan* p, floating* tag, floating lr, int t) noexcept nogil:
    """Layer 1 in one pass over X, for thread t's rows k0:k1 of X (features).

    Per cache block of rows: dW1[:, blk] = dZ1 X[blk]^T (all m examples, so no
    cross-thread sum), W1[:, blk] -= lr dW1/m, and -- while X[blk] is still in
    cache -- Zpart_t += W1_new[:, blk] X[blk] for the next forward.
    """
    cdef Py_ssize_t n1 = p.n[1], n0 = p.n[0], m = p.m
    cdef Py_ssize_t k0 = n0 * t // p.T, k1 = n0 * (t + 1) // p.T, kk, j, e, w
    cdef floating* X = (<floating**>p.A)[0]
    cdef floating* W1 = (<floating**>p.W)[1]
    cdef floating* dZ1 = (<floating**>p.dZ)[1]
    cdef floating* blk = <floating*>p.scratch + t * n1 * p.kb
    cdef floating* Zp = <floating*>p.Zpart + t * n1 * m
    for e in range(n1 * m):
        Zp[e] = 0
    kk = k0
    while kk < k1:
        w = min(p.kb, k1 - kk)
        _gemm_nt(n1, w, m, 0, m, 1, dZ1, X + kk * m, 0, blk)
        for j in range(n1):
            for e in range(w):
                W1[j * n0 + kk + e] = W1[j * n0 + kk + e] - lr * (blk[j * w + e] / m)
                blk[j * w + e] = W1[j * n0 + kk + e]
        if not p.last:
            _gemm_nn(n1, w, m, 0, m, 1, blk, X + kk * m, 1, Zp)
        kk += w


cdef void _update(Plan* p, floating* tag, floating lr) noexcept nogil:
    """W -= lr * dW, b -= lr * db; in Gram mode Zlin -= (lr/m) dZ1 G, S += dZ1;
    in one-pass mode layer 1's update and next W1 X share one read of X."""
    cdef int l, t
    cdef Py_ssize_t e, m = p.m
    cdef floating* S
    cdef floating* d1
    cdef floating* Zl
    cdef floating* Zp
    for l in range(1, p.L + 1):
        if not (l == 1 and p.gram):
            _reduce(p, tag, lr, l, False, (<floating**>p.W)[l], True)
        _reduce(p, tag, lr, l, True, (<floating**>p.b)[l], True)
    if p.gram == 2:
        if p.T == 1:
            _onepass_rows(p, tag, lr, 0)
        else:
            for t in prange(p.T, num_threads=p.T, schedule="static", chunksize=1):
                _onepass_rows(p, tag, lr, t)
        if p.last:
            return
        # Zlin = sum of the per-thread partials, in thread order.
        Zl = <floating*>p.Zlin
        Zp = <floating*>p.Zpart
        for e in range(p.n[1] * m):
            Zl[e] = Zp[e]
        for t in range(1, p.T):
            Zp = <floating*>p.Zpart + t * p.n[1] * m
            for e in range(p.n[1] * m):
                Zl[e] = Zl[e] + Zp[e]
    elif p.gram == 1:
        d1 = (<floating**>p.dZ)[1]
        if p.T == 1:
            _gemm_nn(p.n[1], m, m, 0, m, -lr / m, d1, <floating*>p.G, 1, <floating*>p.Zlin)
        else:
            for t in prange(p.T, num_threads=p.T, schedule="static", chunksize=1):
                _gemm_nn(p.n[1], m, m, _c0(p, t), _c0(p, t + 1), -lr / m, d1,
                         <floating*>p.G, 1, <floating*>p.Zlin)
        S = <floating*>p.S
        for e in range(p.n[1] * m):
            S[e] = S[e] + d1[e]


cdef void _layer1_setup_chunk(Plan* p, floating* tag, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Zlin[:, c] = W1 X[:, c]; in Gram mode also G[:, c] = X^T X[:, c]."""
    cdef floating* X = (<floating**>p.A)[0]
    _gemm_nn(p.n[1], p.n[0], p.m, c0, c1, 1, (<floating**>p.W)[1], X, 0, <floating*>p.Zlin)
    if p.gram == 1:
        _gemm_tn(p.n[0], p.m, p.m, c0, c1, X, X, <floating*>p.G)


cdef void _layer1_setup(Plan* p, floating* tag) noexcept nogil:
    cdef int t
    if p.T == 1:
        _layer1_setup_chunk(p, tag, 0, p.m)
        return
    for t in prange(p.T, num_threads=p.T, schedule="static", chunksize=1):
        _layer1_setup_chunk(p, tag, _c0(p, t), _c0(p, t + 1))


cdef void _run(Plan* p, floating* tag, floating lr, Py_ssize_t count, bint last) noexcept nogil:
    """Backward + update of the current iteration, then count - 1 full iterations,
    each followed by the next iteration's forward -- except after the very last
    update of training (``last``), whose forward nobody would read."""
    cdef Py_ssize_t it
    for it in range(count):
        p.last = last and it == count - 1
        _backward(p, tag)
        _update(p, tag, lr)
        if not p.last:
            _forward(p, tag)
    p.last = False


# --------------------------------------------------------------------------
# Python-facing: build a plan from arrays, run it
# --------------------------------------------------------------------------
cdef void* _addr(object a) except NULL:
    # const views accept read-only arrays (a user's X or Y, memory-mapped data);
    # the kernels only write through the pointers of arrays _Net or Network own.
    cdef const double[:, ::1] d
    cdef const float[:, ::1] f
    if a.dtype == np.float64:
        d = a
        return <void*>&d[0, 0]
    f = a
    return <void*>&f[0, 0]


cdef class _Net:
    """Owns a Plan and the arrays its pointers point into.

    ``Zs``/``As`` (optional) are caller arrays to use as the layers' Z and A
    buffers (backward from given caches); otherwise they are allocated.
    """
    cdef Plan p
    cdef list keep
    cdef object dtype
    cdef public object X
    cdef public list Ws, bs, Zs, As
    cdef object _gram

    def __cinit__(self):
        self.p.n = NULL
        self.p.act = NULL
        self.p.W = self.p.b = self.p.Z = self.p.A = self.p.dZ = NULL
        self.p.dWp = self.p.dbp = NULL

    def __init__(self, list Ws, list bs, list act_codes, object X, int threads,
                 list Zs=None, list As=None):
        cdef int L = len(Ws), l, t, T = threads
        cdef Py_ssize_t m = X.shape[1]
        self.dtype = X.dtype
        self.X, self.Ws, self.bs = X, Ws, bs
        self.keep = []
        self.p.L = L
        self.p.m = m
        self.p.T = T
        self.p.gram = 0
        self.p.last = False
        self.p.loss = 0
        self.p.Y = NULL
        self.p.n = <Py_ssize_t*>malloc((L + 1) * sizeof(Py_ssize_t))
        self.p.act = <int*>malloc((L + 1) * sizeof(int))
        self.p.W = <void**>malloc((L + 1) * sizeof(void*))
        self.p.b = <void**>malloc((L + 1) * sizeof(void*))
        self.p.Z = <void**>malloc((L + 1) * sizeof(void*))
        self.p.A = <void**>malloc((L + 1) * sizeof(void*))
        self.p.dZ = <void**>malloc((L + 1) * sizeof(void*))
        self.p.dWp = <void**>malloc(T * (L + 1) * sizeof(void*))
        self.p.dbp = <void**>malloc(T * (L + 1) * sizeof(void*))
        if (self.p.n == NULL or self.p.act == NULL or self.p.W == NULL or self.p.b == NULL
                or self.p.Z == NULL or self.p.A == NULL or self.p.dZ == NULL
                or self.p.dWp == NULL or self.p.dbp == NULL):
            raise MemoryError()
        self.p.n[0] = X.shape[0]
        self.p.A[0] = _addr(X)
        if Zs is None:
            Zs = [np.empty((W.shape[0], m), self.dtype) for W in Ws]
        if As is None:
            As = [np.empty((W.shape[0], m), self.dtype) for W in Ws]
        self.Zs, self.As = Zs, As
        for l in range(1, L + 1):
            W = Ws[l - 1]
            self.p.n[l] = W.shape[0]
            self.p.act[l] = act_codes[l - 1]
            self.p.W[l] = _addr(W)
            self.p.b[l] = _addr(bs[l - 1])
            self.p.Z[l] = _addr(Zs[l - 1])
            self.p.A[l] = _addr(As[l - 1])
            dZ = np.empty((W.shape[0], m), self.dtype)
            self.keep.append(dZ)
            self.p.dZ[l] = _addr(dZ)
            for t in range(T):
                dWp = np.empty(W.shape, self.dtype)
                dbp = np.empty((W.shape[0], 1), self.dtype)
                self.keep += [dWp, dbp]
                self.p.dWp[t * (L + 1) + l] = _addr(dWp)
                self.p.dbp[t * (L + 1) + l] = _addr(dbp)

    def __dealloc__(self):
        free(self.p.n); free(self.p.act); free(self.p.W); free(self.p.b)
        free(self.p.Z); free(self.p.A); free(self.p.dZ); free(self.p.dWp); free(self.p.dbp)

    def set_Y(self, Y):
        self.keep.append(Y)
        self.p.Y = _addr(Y)

    def enable_gram(self):
        """Layer 1 through G = X^T X (see Design). Call before forward()."""
        X, W1 = self.X, self.Ws[0]
        m = self.p.m
        G = np.empty((m, m), self.dtype)              # X^T X, once
        Zlin = np.empty((W1.shape[0], m), self.dtype)
        S = np.zeros_like(Zlin)
        self._gram = (G, Zlin, S, W1.copy())
        self.p.G = _addr(G)
        self.p.Zlin = _addr(Zlin)
        self.p.S = _addr(S)
        self.p.gram = 1
        self._layer1_setup()

    def _layer1_setup(self):
        if self.dtype == np.float64:
            with nogil:
                _layer1_setup(&self.p, <double*>NULL)
        else:
            with nogil:
                _layer1_setup(&self.p, <float*>NULL)

    def enable_onepass(self, Py_ssize_t block_bytes=1 << 20):
        """Layer 1 in one pass over X per iteration (see _onepass_rows)."""
        X, W1 = self.X, self.Ws[0]
        n1, m, T = W1.shape[0], self.p.m, self.p.T
        self.p.kb = max(8, min(X.shape[0], block_bytes // (X.itemsize * m)))
        Zlin = np.empty((n1, m), self.dtype)
        scratch = np.empty((T * n1, self.p.kb), self.dtype)
        Zpart = np.empty((T * n1, m), self.dtype)
        self._gram = (Zlin, scratch, Zpart)
        self.p.Zlin = _addr(Zlin)
        self.p.scratch = _addr(scratch)
        self.p.Zpart = _addr(Zpart)
        self.p.gram = 2
        self._layer1_setup()

    def finish_gram(self, double learning_rate):
        """Materialize W1 = W1_0 - (lr/m) S X^T into the caller's W1."""
        if self.p.gram != 1:
            return
        G, Zlin, S, W10 = self._gram
        self.Ws[0][...] = W10 - (learning_rate / self.p.m) * (S @ self.X.T)

    def forward(self):
        if self.dtype == np.float64:
            with nogil:
                _forward(&self.p, <double*>NULL)
        else:
            with nogil:
                _forward(&self.p, <float*>NULL)

    def backward_into(self, int loss, list dWs, list dbs):
        """dW_l = (dZ_l A_{l-1}^T)/m, db_l likewise, for the current forward."""
        cdef int l
        self.p.loss = loss
        if self.dtype == np.float64:
            with nogil:
                _backward(&self.p, <double*>NULL)
            for l in range(1, self.p.L + 1):
                _reduce(&self.p, <double*>NULL, 0, l, False, <double*>_addr(dWs[l - 1]), False)
                _reduce(&self.p, <double*>NULL, 0, l, True, <double*>_addr(dbs[l - 1]), False)
        else:
            with nogil:
                _backward(&self.p, <float*>NULL)
            for l in range(1, self.p.L + 1):
                _reduce(&self.p, <float*>NULL, 0, l, False, <float*>_addr(dWs[l - 1]), False)
                _reduce(&self.p, <float*>NULL, 0, l, True, <float*>_addr(dbs[l - 1]), False)

    def cost(self, int loss):
        """J of the current forward (needs set_Y)."""
        cdef int L = self.p.L
        if self.dtype == np.float64:
            return _cost(loss, self.p.n[L], self.p.m, <double*>self.p.Z[L],
                         <double*>self.p.A[L], <double*>self.p.Y)
        return _cost(loss, self.p.n[L], self.p.m, <float*>self.p.Z[L], <float*>self.p.A[L],
                     <float*>self.p.Y)

    def run(self, int loss, double learning_rate, Py_ssize_t count, bint last=False):
        """count x (backward + update + forward), all without the GIL."""
        self.p.loss = loss
        if self.dtype == np.float64:
            with nogil:
                _run(&self.p, <double*>NULL, learning_rate, count, last)
        else:
            with nogil:
                _run(&self.p, <float*>NULL, <float>learning_rate, count, last)


def max_threads():
    """OpenMP's default thread count (1 without OpenMP)."""
    return fastnn_max_threads()
