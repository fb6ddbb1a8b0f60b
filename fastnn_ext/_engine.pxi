# The engine room: how the page's kernels are scheduled for speed.
#
# * Threads: examples are split into T contiguous column chunks, one per
#   OpenMP thread (_parallel runs a stage on each). Forward and backward are
#   column-independent, except dW = dZ A_prev^T and db, which each thread sums
#   over its own chunk into a private buffer; the buffers are added in thread
#   order 0..T-1 afterwards (_reduce), so results are bitwise reproducible for
#   a given dtype and T. Products inside a chunk are single-threaded.
# * Layer 1 has three modes (Layer1Mode), all the same math:
#   - DIRECT: the lecture as written, W1 X and dZ1 X^T every iteration.
#   - ONEPASS (layer 1 with a small output, X too big for the caches): the
#     update dW1 = dZ1 X^T / m and the next forward's W1 X walk X together, in
#     cache-sized row blocks, each thread its own rows -- X is read once per
#     iteration instead of twice.
#   - GRAM (n_0 > m, e.g. 12288 -> 20 with m = 209): since W1 X after the
#     update is W1 X - (lr/m) dZ1 (X^T X), the trainer keeps Zlin = W1 X and
#     G = X^T X (m x m, computed once), and W1 itself is only materialized at
#     the end as W1_0 - (lr/m) (sum of dZ1) X^T. Exact in real arithmetic; per
#     iteration it touches X zero times instead of twice. fastnn's Network
#     calls this gram=True; gram=False never uses it.
# * Mini-batches (_epochs): a plan sized for one batch, whose A[0] and Y are
#   gather buffers. For each batch of each epoch, each thread copies its
#   chunk's examples (the shuffled order's next batch_size indices) into the
#   buffers' columns, from X^T and Y^T (one example a contiguous row, so a
#   gathered example is a few cache lines, not n_0 of them), then forward, backward and update run as for a full
#   batch with p.m set to the batch's size (the last one smaller): every
#   buffer is rewritten per batch, so a smaller batch simply reads them as
#   (n, m_b). Whole epochs run in one call without the GIL; nothing is
#   allocated per batch.

cdef extern from "_first_layer.h" nogil:
    const bint FASTNN_FUSED_FIRST_LAYER
    void fl_dw_f64(Py_ssize_t n1, Py_ssize_t w, Py_ssize_t m, const double* dZ, const double* Xb,
                   double* G)
    void fl_dw_f32(Py_ssize_t n1, Py_ssize_t w, Py_ssize_t m, const float* dZ, const float* Xb,
                   float* G)
    void fl_fwd_f64(Py_ssize_t n1, Py_ssize_t w, Py_ssize_t m, const double* Wt,
                    const double* Xb, double* Zp)
    void fl_fwd_f32(Py_ssize_t n1, Py_ssize_t w, Py_ssize_t m, const float* Wt,
                    const float* Xb, float* Zp)


cdef enum Layer1Mode:
    DIRECT = 0
    GRAM = 1
    ONEPASS = 2

cdef enum Stage:
    STAGE_FORWARD
    STAGE_BACKWARD
    STAGE_ONEPASS
    STAGE_GRAM_UPDATE
    STAGE_LAYER1_SETUP
    STAGE_BATCH_FORWARD


cdef struct Plan:
    int L                 # layers
    Py_ssize_t m          # examples
    int T                 # threads = column chunks
    Py_ssize_t* n         # n[0..L]
    int* act              # act[l], l = 1..L
    int loss
    int g0                # relu_grad_at_zero: ReLU'(0) and leaky ReLU'(0) is 1, or 0 (left-hand)
    void** W              # W[l] (n_l, n_{l-1}), l = 1..L
    void** b              # b[l] (n_l,)
    void** Z              # Z[l] (n_l, m)
    void** A              # A[0] = X, A[l] (n_l, m)
    void** dZ             # dZ[l] (n_l, m)
    void** dWp            # dWp[t * (L+1) + l] per-thread partial sums of dZ A^T
    void** dbp            # dbp[t * (L+1) + l]
    void* Y               # (n_L, m)
    Layer1Mode layer1
    bint last             # this update is training's last: no next forward needed
    Py_ssize_t kb         # ONEPASS: rows of X per cache block
    void* scratch         # ONEPASS: T pairs of blocks (n_1, kb): dW1 and W1 transposed
    void* Zpart           # ONEPASS: T partial sums (n_1, m) of W1 X
    void* G               # GRAM: (m, m) X^T X
    void* Zlin            # ONEPASS, GRAM: (n_1, m) W1 X
    void* S               # GRAM: (n_1, m) sum of dZ1 over iterations
    void** dW             # Network.backward's outputs: mean dW[l], db[l]
    void** db
    const int64_t* batch  # mini-batches: the current batch's columns of Xsrc, Ysrc
    void* Xsrc            # mini-batches: the whole X^T (m_src, n_0) and Y^T (m_src, n_L)
    void* Ysrc
    Py_ssize_t m_src


cdef inline Py_ssize_t _c0(Plan* p, int t) noexcept nogil:
    return p.m * t // p.T


cdef void _forward_chunk(Plan* p, floating* tag, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef int l
    cdef floating** W = <floating**>p.W
    cdef floating** b = <floating**>p.b
    cdef floating** Z = <floating**>p.Z
    cdef floating** A = <floating**>p.A
    for l in range(1, p.L + 1):
        if l == 1 and p.layer1 != DIRECT:  # W1 X is kept up to date in Zlin
            linear_activation_forward(p.act[1], p.n[1], p.m, c0, c1, <floating*>p.Zlin, b[1],
                                      Z[1], A[1])
        elif not forward_in_gemm_epilogue(p.act[l], p.n[l], p.n[l - 1], p.m, c0, c1, W[l],
                                          A[l - 1], b[l], Z[l], A[l]):
            product_nn(p.n[l], p.n[l - 1], p.m, c0, c1, 1, W[l], A[l - 1], 0, Z[l])
            linear_activation_forward(p.act[l], p.n[l], p.m, c0, c1, Z[l], b[l], Z[l], A[l])


cdef void _backward_chunk(Plan* p, floating* tag, int t, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Thread t's partial dW, db over its chunk's examples (not yet / m)."""
    cdef int l, L = p.L
    cdef Py_ssize_t j, m = p.m
    cdef floating** Z = <floating**>p.Z
    cdef floating** A = <floating**>p.A
    cdef floating** dZ = <floating**>p.dZ
    cdef floating** dWp = <floating**>p.dWp + t * (L + 1)
    cdef floating** dbp = <floating**>p.dbp + t * (L + 1)
    output_dZ(p.loss, p.act[L], p.g0, p.n[L], m, c0, c1, Z[L], A[L], <floating*>p.Y, dZ[L])
    for l in range(L, 0, -1):
        linear_backward(p.n[l], p.n[l - 1], m, c0, c1, (<floating**>p.W)[l], dZ[l],
                        NULL if l == 1 and p.layer1 != DIRECT else A[l - 1],  # ONEPASS, GRAM: dW1 elsewhere
                        dWp[l], dbp[l], dZ[l - 1] if l > 1 else NULL)
        if l > 1:
            for j in range(p.n[l - 1]):
                activation_backward(p.act[l - 1], p.g0, Z[l - 1] + j * m, A[l - 1] + j * m,
                                    dZ[l - 1] + j * m, c0, c1)


cdef void _reduce(Plan* p, floating* tag, floating lr, int l, bint is_b,
                  floating* out,  # OUT: the mean gradient, or (update) the parameter stepped
                  bint update) noexcept nogil:
    """Combine the T partial sums of layer l's dW (or db) in thread order 0..T-1
    (into thread 0's buffer, which the next backward overwrites), then the
    mean or the step: flat unit-stride loops, vectorized."""
    cdef Py_ssize_t e, size = p.n[l] if is_b else p.n[l] * p.n[l - 1], m = p.m
    cdef int t
    cdef floating** part = <floating**>(p.dbp if is_b else p.dWp)
    cdef int stride = p.L + 1
    cdef floating* s = part[l]
    cdef floating* other
    cdef floating step = lr / m
    for t in range(1, p.T):
        other = part[t * stride + l]
        for e in range(size):
            s[e] = s[e] + other[e]
    if update:
        for e in range(size):
            out[e] = gradient_step(out[e], step, s[e])
    else:
        for e in range(size):
            out[e] = s[e] / m


cdef void _onepass_rows(Plan* p, floating* tag, floating lr, int t) noexcept nogil:
    """Layer 1 in one pass over X, for thread t's rows k0:k1 of X (features).

    Per cache block of rows: dW1[:, blk] = dZ1 X[blk]^T (all m examples, so no
    cross-thread sum), W1[:, blk] steps, and -- while X[blk] is still in cache
    -- Zpart_t += W1_new[:, blk] X[blk] for the next forward.
    """
    cdef Py_ssize_t n1 = p.n[1], n0 = p.n[0], m = p.m
    cdef Py_ssize_t k0 = n0 * t // p.T, k1 = n0 * (t + 1) // p.T, kk, j, e, w
    cdef floating* X = (<floating**>p.A)[0]
    cdef floating* W1 = (<floating**>p.W)[1]
    cdef floating* dZ1 = (<floating**>p.dZ)[1]
    cdef floating* blk = <floating*>p.scratch + 2 * t * n1 * p.kb
    cdef floating* blkT = blk + n1 * p.kb   # the stepped W1[:, blk], transposed (w, n1)
    cdef floating* Zp = <floating*>p.Zpart + t * n1 * m
    cdef floating step, lr_m = lr / m
    # One unit (logistic regression): BLAS's gemv streams X faster than a tile
    # of one row (measured: 450 vs 400 us per iteration on the logreg workload).
    cdef bint fused = FASTNN_FUSED_FIRST_LAYER and n1 > 1
    for e in range(n1 * m):
        Zp[e] = 0
    kk = k0
    while kk < k1:
        w = min(p.kb, k1 - kk)
        # blk = dZ1 X[blk]^T: a thin product (n1 rows) needs no packing
        if not fused:
            product_nt(n1, w, m, 0, m, 1, dZ1, X + kk * m, 0, blk)
        elif floating is double:
            fl_dw_f64(n1, w, m, dZ1, X + kk * m, blk)
        else:
            fl_dw_f32(n1, w, m, dZ1, X + kk * m, blk)
        for j in range(n1):
            for e in range(w):
                step = gradient_step(W1[j * n0 + kk + e], lr_m, blk[j * w + e])
                W1[j * n0 + kk + e] = step
                blk[j * w + e] = step
                blkT[e * n1 + j] = step
        if p.last:
            pass
        elif not fused:
            product_nn(n1, w, m, 0, m, 1, blk, X + kk * m, 1, Zp)
        elif floating is double:
            fl_fwd_f64(n1, w, m, blkT, X + kk * m, Zp)
        else:
            fl_fwd_f32(n1, w, m, blkT, X + kk * m, Zp)
        kk += w


cdef void _layer1_setup_chunk(Plan* p, floating* tag, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Zlin[:, c] = W1 X[:, c]; in GRAM mode also G[:, c] = X^T X[:, c]."""
    cdef floating* X = (<floating**>p.A)[0]
    product_nn(p.n[1], p.n[0], p.m, c0, c1, 1, (<floating**>p.W)[1], X, 0, <floating*>p.Zlin)
    if p.layer1 == GRAM:
        product_tn(p.n[0], p.m, p.m, c0, c1, X, X, <floating*>p.G)


cdef void _gather_chunk(Plan* p, floating* tag, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Columns c0:c1 of the batch buffers A[0] and Y (row stride p.m): the
    examples p.batch[c0:c1], rows of the whole X^T and Y^T."""
    cdef Py_ssize_t r, i, m = p.m, n0 = p.n[0], nL = p.n[p.L]
    cdef floating* X = (<floating**>p.A)[0]
    cdef floating* Y = <floating*>p.Y
    cdef const floating* x
    cdef const floating* y
    for i in range(c0, c1):
        x = <floating*>p.Xsrc + p.batch[i] * n0
        y = <floating*>p.Ysrc + p.batch[i] * nL
        for r in range(n0):
            X[r * m + i] = x[r]
        for r in range(nL):
            Y[r * m + i] = y[r]


cdef void _stage(Plan* p, floating* tag, Stage stage, int t, floating lr) noexcept nogil:
    """Thread t's share of one stage: its column chunk (or, ONEPASS, its rows of X)."""
    cdef Py_ssize_t c0 = _c0(p, t), c1 = _c0(p, t + 1)
    if stage == STAGE_FORWARD:
        _forward_chunk(p, tag, c0, c1)
    elif stage == STAGE_BACKWARD:
        _backward_chunk(p, tag, t, c0, c1)
    elif stage == STAGE_ONEPASS:
        _onepass_rows(p, tag, lr, t)
    elif stage == STAGE_GRAM_UPDATE:  # Zlin[:, c] -= (lr/m) dZ1 G[:, c]
        product_nn(p.n[1], p.m, p.m, c0, c1, -lr / p.m, (<floating**>p.dZ)[1],
                   <floating*>p.G, 1, <floating*>p.Zlin)
    elif stage == STAGE_LAYER1_SETUP:
        _layer1_setup_chunk(p, tag, c0, c1)
    elif stage == STAGE_BATCH_FORWARD:  # the thread's columns of the batch, then forward
        _gather_chunk(p, tag, c0, c1)
        _forward_chunk(p, tag, c0, c1)


cdef void _parallel(Plan* p, floating* tag, Stage stage, floating lr) noexcept nogil:
    """Run a stage on every thread's share: inline for one thread (no OpenMP
    region to start), else one OpenMP thread each."""
    cdef int t
    if p.T == 1:
        _stage(p, tag, stage, 0, lr)
        return
    for t in prange(p.T, num_threads=p.T, schedule="static", chunksize=1):
        _stage(p, tag, stage, t, lr)


cdef void _update(Plan* p, floating* tag, floating lr) noexcept nogil:
    """W -= lr dW, b -= lr db; layer 1 as its mode says."""
    cdef int l, t
    cdef Py_ssize_t e, size = p.n[1] * p.m
    cdef floating* acc
    cdef floating* part
    for l in range(1, p.L + 1):
        if not (l == 1 and p.layer1 != DIRECT):
            _reduce(p, tag, lr, l, False, (<floating**>p.W)[l], True)
        _reduce(p, tag, lr, l, True, (<floating**>p.b)[l], True)
    if p.layer1 == ONEPASS:
        _parallel(p, tag, STAGE_ONEPASS, lr)
        if p.last:
            return
        # Zlin = the per-thread partials of W1 X, summed in thread order.
        acc = <floating*>p.Zlin
        part = <floating*>p.Zpart
        for e in range(size):
            acc[e] = part[e]
        for t in range(1, p.T):
            part = <floating*>p.Zpart + t * size
            for e in range(size):
                acc[e] = acc[e] + part[e]
    elif p.layer1 == GRAM:
        _parallel(p, tag, STAGE_GRAM_UPDATE, lr)
        acc = <floating*>p.S
        part = (<floating**>p.dZ)[1]
        for e in range(size):
            acc[e] = acc[e] + part[e]


cdef void _run(Plan* p, floating* tag, floating lr, Py_ssize_t count, bint last) noexcept nogil:
    """Backward + update of the current iteration, then count - 1 full iterations,
    each followed by the next iteration's forward -- except after the very last
    update of training (``last``), whose forward nobody would read."""
    cdef Py_ssize_t it
    for it in range(count):
        p.last = last and it == count - 1
        _parallel(p, tag, STAGE_BACKWARD, lr)
        _update(p, tag, lr)
        if not p.last:
            _parallel(p, tag, STAGE_FORWARD, lr)
    p.last = False


cdef void _backward_step_one(Plan* p, floating* tag, floating lr) noexcept nogil:
    """Backward and update of a batch of one example on one thread, fused: each
    W -= lr dz a_prev^T is a rank-1 update, W read and written once, with no
    dW buffer to write and read back; dA_prev = W^T dz is taken before W
    changes."""
    cdef int l, L = p.L
    cdef Py_ssize_t j, k, n, n_prev
    cdef floating** Z = <floating**>p.Z
    cdef floating** A = <floating**>p.A
    cdef floating** dZ = <floating**>p.dZ
    cdef floating* W
    cdef floating* b
    cdef const floating* a_prev
    cdef floating s
    output_dZ(p.loss, p.act[L], p.g0, p.n[L], 1, 0, 1, Z[L], A[L], <floating*>p.Y, dZ[L])
    for l in range(L, 0, -1):
        n, n_prev = p.n[l], p.n[l - 1]
        W, b, a_prev = (<floating**>p.W)[l], (<floating**>p.b)[l], A[l - 1]
        if l > 1:
            product_tn(n, n_prev, 1, 0, 1, W, dZ[l], dZ[l - 1])
            for j in range(n_prev):
                activation_backward(p.act[l - 1], p.g0, Z[l - 1] + j, A[l - 1] + j,
                                    dZ[l - 1] + j, 0, 1)
        for j in range(n):
            s = lr * dZ[l][j]
            b[j] = b[j] - s
            for k in range(n_prev):
                W[j * n_prev + k] = W[j * n_prev + k] - s * a_prev[k]


cdef void _epochs(Plan* p, floating* tag, floating lr, const int64_t* orders,
                  Py_ssize_t count) noexcept nogil:
    """``count`` epochs of mini-batch gradient descent, one row of ``orders``
    (count, m_src) each: batches of the plan's size p.m (the last smaller),
    each gathered, forward, backward and an update with its own mean."""
    cdef Py_ssize_t e, k, size = p.m, ms = p.m_src
    for e in range(count):
        k = 0
        while k < ms:
            p.m = min(size, ms - k)
            p.batch = orders + e * ms + k
            _parallel(p, tag, STAGE_BATCH_FORWARD, lr)
            if p.m == 1 and p.T == 1:
                _backward_step_one(p, tag, lr)
            else:
                _parallel(p, tag, STAGE_BACKWARD, lr)
                _update(p, tag, lr)
            k += size
    p.m = size
    p.batch = NULL
