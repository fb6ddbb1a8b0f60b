# The three products of a layer on a column chunk [c0, c1) of (., m)
# row-major matrices, one function (product) and one route (route):
#
#   NN   Z = W A          forward
#   NT   dW = dZ A^T      backward, summed over the chunk's examples
#   TN   dA = W^T dZ      backward
#
# Thin products run in the unit-stride loops here; GEMM-shaped ones go to
# fastnn's own packed GEMM (_gemm.h, compiled for this module's ISA) or to
# BLAS (_blas.pxi), as measured best for the path (see fastnn.backends.cython).
# Narrow chunks (a mini-batch: 8 to 64 columns) go to the register-tiled
# small products of _small.h, which pack nothing; a single column (batch
# size 1) to matrix-vector loops.

cdef extern from "_gemm.h" nogil:
    const int FASTNN_OWN_GEMM
    const int FASTNN_GEMM_RELU, FASTNN_GEMM_LEAKY_RELU, FASTNN_GEMM_IDENTITY
    const char* FASTNN_GEMM_KERNEL
    # C (M, N; row stride ldc) OUT = alpha A (M, K) IN B (K, N) IN + beta C, A and B through
    # (row, column) stride pairs; the bias_act twins add bias (M,) IN and write
    # out (M, N; ldo) OUT = act(C). 0, or -1 with nothing written (_gemm.h).
    int fastnn_dgemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double alpha,
                     const double* A, Py_ssize_t rsa, Py_ssize_t csa,
                     const double* B, Py_ssize_t rsb, Py_ssize_t csb,
                     double beta, double* C, Py_ssize_t ldc)
    int fastnn_sgemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, float alpha,
                     const float* A, Py_ssize_t rsa, Py_ssize_t csa,
                     const float* B, Py_ssize_t rsb, Py_ssize_t csb,
                     float beta, float* C, Py_ssize_t ldc)
    int fastnn_dgemm_bias_act(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double alpha,
                              const double* A, Py_ssize_t rsa, Py_ssize_t csa,
                              const double* B, Py_ssize_t rsb, Py_ssize_t csb,
                              double beta, double* C, Py_ssize_t ldc,
                              const double* bias, int act, double slope,
                              double* out, Py_ssize_t ldo)
    int fastnn_sgemm_bias_act(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, float alpha,
                              const float* A, Py_ssize_t rsa, Py_ssize_t csa,
                              const float* B, Py_ssize_t rsb, Py_ssize_t csb,
                              float beta, float* C, Py_ssize_t ldc,
                              const float* bias, int act, float slope,
                              float* out, Py_ssize_t ldo)

cdef extern from "_small.h" nogil:
    const int FASTNN_SMALL_PRODUCTS
    const int FASTNN_SMALL_MAX_COLS
    # sm_nn: C (M, N; row stride ldc) OUT = P (M, K; strides rsp, csp) IN . B (K, N; ldb) IN
    # sm_nt: C (M, N; ldc) OUT = A (M, K; lda) IN . B (N, K; ldb)^T IN    (_small.h)
    void sm_nn_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   const double* P, Py_ssize_t rsp, Py_ssize_t csp,
                   const double* B, Py_ssize_t ldb, double* C, Py_ssize_t ldc)
    void sm_nn_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                   const float* P, Py_ssize_t rsp, Py_ssize_t csp,
                   const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc)
    void sm_nt_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double* A, Py_ssize_t lda,
                   const double* B, Py_ssize_t ldb, double* C, Py_ssize_t ldc)
    void sm_nt_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t lda,
                   const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc)

#: Whether narrow chunks (8 to SMALL_MAX_COLS columns: a mini-batch) go to the
#: register-tiled small products of _small.h (every vectorized module).
HAVE_SMALL_PRODUCTS = bool(FASTNN_SMALL_PRODUCTS)
SMALL_MAX_COLS = FASTNN_SMALL_MAX_COLS

#: Whether this module has fastnn's own GEMM (every vectorized AVX2 or AVX-512
#: module; not the baseline or novec ones), and which micro-kernel.
HAVE_OWN_GEMM = bool(FASTNN_OWN_GEMM)
GEMM_KERNEL = FASTNN_GEMM_KERNEL.decode()

# Where GEMM-shaped products go. AUTO, as measured on the nets' products
# against scipy's OpenBLAS (README, "Performance"): the own GEMM where the
# product is skinny -- a side below OWN_GEMM_SKINNY, like the deep net's 20 x
# 12288 layer, where it ran 1.2-1.6x faster (OpenBLAS pads and packs for wide
# tiles) -- and BLAS for wide products, where OpenBLAS's kernels ran 3-11%
# faster in float64. Skinny products below OWN_GEMM_MIN_MACS multiply-adds go
# to BLAS too: the cython backend sets that floor where OpenBLAS runs kernels
# with small-matrix paths (SkylakeX's), which ran a 5 x 64 output layer's
# products 1.3-2x faster than the own GEMM (paths.py).
cdef enum GemmRoute:
    ROUTE_BLAS = 0
    ROUTE_OWN = 1
    ROUTE_AUTO = 2

cdef enum:
    OWN_GEMM_SKINNY = 64

cdef GemmRoute GEMM_ROUTE = ROUTE_AUTO if HAVE_OWN_GEMM else ROUTE_BLAS
cdef Py_ssize_t OWN_GEMM_MIN_MACS = 0
_ROUTES = {"blas": ROUTE_BLAS, "own": ROUTE_OWN, "auto": ROUTE_AUTO}


def _gemm_route(route):
    """Send GEMM-shaped products to "blas", "own" (every one) or "auto" (the own
    GEMM for skinny ones); None changes nothing. Returns the route in force
    before the call. Without an own GEMM every route is BLAS."""
    global GEMM_ROUTE
    old = {v: k for k, v in _ROUTES.items()}[GEMM_ROUTE]
    if route is not None:
        GEMM_ROUTE = _ROUTES[route] if HAVE_OWN_GEMM else ROUTE_BLAS
    return old


def _own_gemm_min_macs(macs):
    """Set the auto route's floor: skinny products of fewer multiply-adds go to
    BLAS (0: none do); None changes nothing. Returns the floor before the call."""
    global OWN_GEMM_MIN_MACS
    old = OWN_GEMM_MIN_MACS
    if macs is not None:
        OWN_GEMM_MIN_MACS = max(0, int(macs))
    return old


cdef inline bint _own_gemm_for(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    return GEMM_ROUTE == ROUTE_OWN or (GEMM_ROUTE == ROUTE_AUTO and
                                       (M < OWN_GEMM_SKINNY or N < OWN_GEMM_SKINNY) and
                                       M * N * K >= OWN_GEMM_MIN_MACS)


# A product C (M, N) = A (M, K) B (K, N) runs in the loops here, not a GEMM,
# below GEMM_MIN_MACS multiply-adds or when any of M, N, K is below
# GEMM_MIN_DIM: a GEMM packs both operands and pads to its register tile, so a
# thin product -- planar's 4 x 2 layer over 10 000 examples, its dW with 2
# columns -- streams faster in a loop (2.2x at m = 10 000, one thread). 4, not
# 8: a 7 x 20 layer over 5000 examples still gains 1.18x from the GEMM.
cdef enum:
    GEMM_MIN_MACS = 1 << 15
    GEMM_MIN_DIM = 4

#: The activation codes _gemm.h's epilogue takes (forward_in_gemm_epilogue
#: passes the registry's codes straight through; the tests hold these to them).
GEMM_EPILOGUE_CODES = {"relu": FASTNN_GEMM_RELU, "leaky_relu": FASTNN_GEMM_LEAKY_RELU,
                       "identity": FASTNN_GEMM_IDENTITY}


# A chunk of SMALL_MIN_COLS to FASTNN_SMALL_MAX_COLS columns goes to _small.h
# when the operand read across the chunk (K x columns) stays within
# SMALL_MAX_BYTES (L2): below 8 columns a tile is mostly its scalar tail.
cdef enum:
    SMALL_MIN_COLS = 8
    SMALL_MAX_BYTES = 256 << 10


cdef inline bint _small(Py_ssize_t mc, Py_ssize_t k, Py_ssize_t itemsize) noexcept nogil:
    return (FASTNN_SMALL_PRODUCTS and SMALL_MIN_COLS <= mc <= FASTNN_SMALL_MAX_COLS
            and k * mc * itemsize <= SMALL_MAX_BYTES)


cdef inline bint _gemm_shaped(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    return (M * N * K >= GEMM_MIN_MACS and M >= GEMM_MIN_DIM and N >= GEMM_MIN_DIM
            and K >= GEMM_MIN_DIM)


cdef inline void gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, floating alpha,
                      const floating* A, Py_ssize_t rsa, Py_ssize_t csa,  # IN (M, K)
                      const floating* B, Py_ssize_t rsb, Py_ssize_t csb,  # IN (K, N)
                      floating beta,
                      floating* C, Py_ssize_t ldc,                        # OUT (M, N)
                      ) noexcept nogil:
    """Row-major C = alpha A B + beta C, A and B given by (row, column) strides:
    one is 1 and the other spans the contiguous extent. The own GEMM where the
    route says (BLAS if its buffer can't be had)."""
    cdef char ta, tb
    cdef Py_ssize_t lda, ldb
    if _own_gemm_for(M, N, K):
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
    blas_gemm(tb, ta, <int>N, <int>M, <int>K, alpha, <floating*>B, <int>ldb,
              <floating*>A, <int>lda, beta, C, <int>ldc)


cdef inline floating row_dot(const floating* x, const floating* y, Py_ssize_t c0,
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


cdef extern from "_rows.h" nogil:
    # out[j] (j < n) OUT = the sum of x[j * ld + i] IN over [c0, c1), in row_dot's order
    void fastnn_row_sums_f64(Py_ssize_t n, Py_ssize_t ld, const double* x, Py_ssize_t c0,
                             Py_ssize_t c1, double* out)
    void fastnn_row_sums_f32(Py_ssize_t n, Py_ssize_t ld, const float* x, Py_ssize_t c0,
                             Py_ssize_t c1, float* out)


cdef inline void row_sums(Py_ssize_t n, Py_ssize_t ld, const floating* x, Py_ssize_t c0,
                          Py_ssize_t c1, floating* out) noexcept nogil:
    """out[j] = sum of row j of x (row stride ld) over [c0, c1), in row_dot's
    fixed order, four rows side by side (_rows.h)."""
    if floating is double:
        fastnn_row_sums_f64(n, ld, x, c0, c1, out)
    else:
        fastnn_row_sums_f32(n, ld, x, c0, c1, out)


# -- the route: which kernel runs a product, decided in one place ------------------

cdef enum Product:
    # The three products of a layer on a column chunk c = [c0, c1) of (., m)
    # row-major matrices, each C = alpha op(P, Q) + beta C:
    NN   # C[:, c] (n, m) = P (n, k) Q[:, c] (k, m)         forward's W A
    NT   # C (n, k) = P[:, c] (n, m) Q[:, c]^T (k, m)^T      backward's dW = dZ A^T (a sum over c)
    TN   # C[:, c] (k, m) = P^T (n, k)^T Q[:, c] (n, m)      backward's dA = W^T dZ

cdef enum Route:
    VECTOR   # one column (a batch of one): matrix-vector loops
    SMALL    # a narrow chunk (a mini-batch's): _small.h's register tiles, nothing packed
    GEMV     # one output row over a wide chunk (logistic regression): BLAS gemv
    GEMM     # GEMM-shaped: the own GEMM or BLAS (GEMM_ROUTE)
    LOOPS    # thin products: unit-stride loops


cdef inline Route route(Product kind, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t mc,
                        bint plain, Py_ssize_t itemsize) noexcept nogil:
    """The kernel for a product of ``kind`` on a chunk of mc of m columns;
    ``plain``: alpha = 1 and beta = 0 (what VECTOR and SMALL compute)."""
    cdef Py_ssize_t rows = k if kind == TN else n
    cdef Py_ssize_t cols = k if kind == NT else mc
    cdef Py_ssize_t inner = mc if kind == NT else (n if kind == TN else k)
    if plain and m == 1 and mc == 1:
        return VECTOR
    # The small kernels read the chunk of the operand with K rows (NT: none).
    if plain and _small(mc, 0 if kind == NT else inner, itemsize):
        return SMALL
    if kind != TN and n == 1 and k * mc >= GEMM_MIN_MACS:
        return GEMV  # a row vector times a wide block: gemv streams it once
    if _gemm_shaped(rows, cols, inner):
        return GEMM
    return LOOPS


cdef void product(Product kind, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0,
                  Py_ssize_t c1, floating alpha,
                  const floating* P,  # IN  NN, TN: (n, k); NT: (n, m)
                  const floating* Q,  # IN  NN, NT: (k, m); TN: (n, m)
                  floating beta,      # 0 (C is overwritten) or 1 (accumulated into)
                  floating* C,        # OUT NN: (n, m), TN: (k, m), columns c0:c1; NT: (n, k)
                  ) noexcept nogil:
    """C = alpha op(P, Q) + beta C for the chunk's columns (see Product), by
    the kernel :func:`route` picks."""
    cdef Py_ssize_t mc = c1 - c0, e
    cdef floating* y
    cdef Route r = route(kind, n, k, m, mc, alpha == 1 and beta == 0, sizeof(floating))
    if r == GEMM:
        if kind == NN:
            gemm(n, mc, k, alpha, P, k, 1, Q + c0, m, 1, beta, C + c0, m)
        elif kind == NT:  # Q_c^T (mc, k) is Q_c read with row stride 1, column stride m
            gemm(n, k, mc, alpha, P + c0, m, 1, Q + c0, 1, m, beta, C, k)
        else:  # P^T (k, n) is P read with row stride 1, column stride k
            gemm(k, mc, n, alpha, P, 1, k, Q + c0, m, 1, beta, C + c0, m)
    elif r == SMALL:
        if kind == NT:
            if floating is double:
                sm_nt_f64(n, k, mc, P + c0, m, Q + c0, m, C, k)
            else:
                sm_nt_f32(n, k, mc, P + c0, m, Q + c0, m, C, k)
        elif floating is double:  # NN: P (n, k); TN: P^T (k, n), strides (1, k)
            sm_nn_f64(n if kind == NN else k, mc, k if kind == NN else n, P,
                      k if kind == NN else 1, 1 if kind == NN else k, Q + c0, m, C + c0, m)
        else:
            sm_nn_f32(n if kind == NN else k, mc, k if kind == NN else n, P,
                      k if kind == NN else 1, 1 if kind == NN else k, Q + c0, m, C + c0, m)
    elif r == GEMV:
        y = C + c0 if kind == NN else C
        if beta == 0:  # y = 0 * y would keep a NaN left in an uninitialized buffer
            for e in range(mc if kind == NN else k):
                y[e] = 0
        if kind == NN:
            blas_gemv(c'N', <int>mc, <int>k, alpha, <floating*>Q + c0, <int>m, <floating*>P,
                      beta, C + c0)
        else:
            blas_gemv(c'T', <int>mc, <int>k, alpha, <floating*>Q + c0, <int>m,
                      <floating*>P + c0, beta, C)
    elif r == VECTOR:
        _vector(kind, n, k, P, Q, C)
    elif kind == NN:
        _loops_nn(n, k, m, c0, c1, alpha, P, Q, beta, C)
    elif kind == NT:
        _loops_nt(n, k, m, c0, c1, alpha, P, Q, beta, C)
    else:
        _loops_tn(n, k, m, c0, c1, alpha, P, Q, beta, C)


cdef void _vector(Product kind, Py_ssize_t n, Py_ssize_t k,
                  const floating* P,  # IN  as product's, m = 1
                  const floating* Q,  # IN
                  floating* C,        # OUT
                  ) noexcept nogil:
    """product for one column (m = 1), alpha = 1, beta = 0."""
    cdef Py_ssize_t j, kk
    cdef floating s
    cdef floating* row
    cdef const floating* p
    if kind == NN:  # n dot products
        for j in range(n):
            C[j] = row_dot(P + j * k, Q, 0, k)
    elif kind == NT:  # an outer product
        for j in range(n):
            s = P[j]
            row = C + j * k
            for kk in range(k):
                row[kk] = s * Q[kk]
    else:  # the rows of P, weighted, summed in order
        s = Q[0]
        for kk in range(k):
            C[kk] = s * P[kk]
        for j in range(1, n):
            s = Q[j]
            p = P + j * k
            for kk in range(k):
                C[kk] += s * p[kk]


cdef void _loops_nn(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                    floating alpha, const floating* W, const floating* A, floating beta,
                    floating* Z) noexcept nogil:
    """product NN in unit-stride row passes (arguments as product's)."""
    cdef Py_ssize_t j, kk, i
    cdef floating w
    cdef floating* z
    cdef const floating* a
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


cdef void _loops_nt(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                    floating alpha, const floating* dZ, const floating* A, floating beta,
                    floating* dW) noexcept nogil:
    """product NT as row dot products (arguments as product's)."""
    cdef Py_ssize_t j, kk
    cdef floating s
    for j in range(n):
        for kk in range(k):
            s = alpha * row_dot(dZ + j * m, A + kk * m, c0, c1)
            if beta == 0:
                dW[j * k + kk] = s
            else:
                dW[j * k + kk] = beta * dW[j * k + kk] + s


cdef void _loops_tn(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                    floating alpha, const floating* W, const floating* dZ, floating beta,
                    floating* dA) noexcept nogil:
    """product TN in unit-stride row passes (arguments as product's)."""
    cdef Py_ssize_t j, kk, i
    cdef floating w
    cdef floating* d
    cdef const floating* z
    for kk in range(k):
        d = dA + kk * m
        j = 0
        if beta == 0:
            w = alpha * W[kk]
            for i in range(c0, c1):
                d[i] = w * dZ[i]
            j = 1
        while j < n:
            w = alpha * W[j * k + kk]
            z = dZ + j * m
            for i in range(c0, c1):
                d[i] += w * z[i]
            j += 1


cdef bint forward_in_gemm_epilogue(int code, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m,
                                   Py_ssize_t c0, Py_ssize_t c1,
                                   const floating* W,       # IN (n, k)
                                   const floating* A_prev,  # IN (k, m); rows: its rows (m, k)
                                   const floating* b,       # IN (n,)
                                   floating* Z,             # OUT (n, m), columns c0:c1
                                   floating* A,             # OUT (n, m), columns c0:c1
                                   bint rows=False,
                                   ) noexcept nogil:
    """Z = W A_prev + b and A = g(Z) with the bias and a piecewise-linear g
    applied as the own GEMM stores each tile (bitwise what product and
    linear_activation_forward give, one pass over Z fewer). False, with
    nothing written, where that does not apply: the caller does both steps.
    ``rows``: A_prev is given transposed, one example a row (a gathered
    batch's input, see _batches.pxi)."""
    cdef Py_ssize_t mc = c1 - c0
    cdef const floating* B = A_prev + c0 * k if rows else A_prev + c0
    cdef Py_ssize_t rsb = 1 if rows else m, csb = k if rows else 1
    if not (route(NN, n, k, m, mc, True, sizeof(floating)) == GEMM and _own_gemm_for(n, mc, k)
            and n > 1 and (code == RELU or code == LEAKY_RELU or code == IDENTITY)):
        return False
    if floating is double:
        return fastnn_dgemm_bias_act(n, mc, k, 1, W, k, 1, B, rsb, csb, 0, Z + c0, m,
                                     b, code, LEAKY_SLOPE, A + c0, m) == 0
    return fastnn_sgemm_bias_act(n, mc, k, 1, W, k, 1, B, rsb, csb, 0, Z + c0, m,
                                 b, code, <float>LEAKY_SLOPE, A + c0, m) == 0


# The module's gemm (its route included) as C function pointers, for
# fastnn_ext._testing to run on operands of a test's choosing: the validation
# of such operands lives there, outside the kernel modules.
cdef void _gemm_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double alpha,
                    const double* A, Py_ssize_t rsa, Py_ssize_t csa,
                    const double* B, Py_ssize_t rsb, Py_ssize_t csb,
                    double beta, double* C, Py_ssize_t ldc) noexcept nogil:
    gemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc)


cdef void _gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, float alpha,
                    const float* A, Py_ssize_t rsa, Py_ssize_t csa,
                    const float* B, Py_ssize_t rsb, Py_ssize_t csb,
                    float beta, float* C, Py_ssize_t ldc) noexcept nogil:
    gemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc)


GEMM_CAPSULES = {"float64": PyCapsule_New(<void*>_gemm_f64, b"fastnn_ext.gemm_f64", NULL),
                 "float32": PyCapsule_New(<void*>_gemm_f32, b"fastnn_ext.gemm_f32", NULL)}
