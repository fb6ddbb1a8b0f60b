# The engine room: how the page's kernels are scheduled for speed.
#
# * State, split by concern: a Net (the network and its buffers, what every
#   mode shares), a Layer1 (how layer 1 trains) and, per call, a Pass (the
#   columns of this pass, the loss, the learning rate, whether the update is
#   training's last, a batch's examples). Nothing of a call is left in the
#   plan: each Pass is built on the stack of the call that runs it.
# * Threads: examples are split into T contiguous column chunks, one per
#   OpenMP thread (_parallel runs a stage on each). Forward and backward are
#   column-independent, except dW = dZ A_prev^T and db, which each thread sums
#   over its own chunk into a private buffer; the buffers are added in thread
#   order 0..T-1 afterwards (_reduce), so results are bitwise reproducible for
#   a given dtype and T. Products inside a chunk are single-threaded. The
#   update is a stage too (STAGE_UPDATE, from PARALLEL_UPDATE_MIN parameters
#   on): each thread sums and steps its own line-aligned share of every W and
#   b's elements, which no other element's result depends on.
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
# * Mini-batches (_epochs, in _batches.pxi): a Net sized for one batch,
#   whose A[0] and Y are gather buffers. For each batch of each epoch, each thread copies its
#   chunk's examples (the shuffled order's next indices) into the buffers'
#   columns, from X^T and Y^T (one example a contiguous row, so a gathered
#   example is a few cache lines, not n_0 of them) -- or, where layer 1's
#   products are all GEMMs (Pass.rows, input_rows), copies the rows whole
#   into A[0] read as (m, n_0), which the GEMMs take transposed for free --
#   then forward, backward and
#   update run as for a full batch with the Pass's m the batch's size (the
#   last one smaller): every buffer is rewritten per batch, so a smaller batch
#   simply reads them as (n, m_b). On two or more threads each thread's
#   columns of a batch are a block of their own, (n, c1 - c0) at n * c0
#   (Pass.blocked, _blocked_stage): column ranges of shared rows made the
#   cores fetch each other's lines. Whole epochs run in one call without the
#   GIL; nothing is allocated per batch.
# * Weights (sample_weight, net.w): output_dZ scales dZ_L's columns by them
#   and every mean -- dW, db, the loss, L2's terms -- is over Pass.S, their
#   sum (a serial float64 sum: no thread count changes it), in place of m.
# * Dtype: the fused (float64/float32) functions take the typed arrays or the
#   learning rate they compute with; the engine's entry points (run_stage,
#   run_iterations at the end, run_epochs in _batches.pxi) are not fused: they pick the
#   plan's dtype from Net.f64, once per call.
# * The course's second part (_course2.pxi, the page): each update's rule
#   and numbers (an Update: the optimizer, L2, the decayed learning rate,
#   Adam's bias corrections at update t) are made once per update
#   (_update_at), and _reduce applies them where it has summed a layer's dW
#   -- each parameter and its optimizer state read and written once, by
#   elementwise loops, so nothing but the partial sums' count depends on the
#   thread count. Dropout's masks
#   are hashed per unit in the forward's chunk (_dropout.h) and kept (uint8,
#   one byte a unit) for the backward; with dropout every update runs its own
#   masked forward and the recorded cost's forward has none. GRAM trains
#   plain gradient descent only (its rewrite is linear in the steps); the
#   Python side routes the rest to DIRECT.

cdef extern from "_first_layer.h" nogil:
    const bint FASTNN_FUSED_FIRST_LAYER
    # fl_dw:  G (n1, w) OUT = dZ (n1, m) IN . Xb (w, m; row stride m) IN ^T
    # fl_fwd: Zp (n1, m) IN/OUT += Wt (w, n1) IN ^T . Xb (w, m) IN    (_first_layer.h)
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

cdef enum DropMode:
    DROP_NONE = 0     # no dropout in this pass
    DROP_HASH = 1     # the masks of update Pass.t, hashed into Dropout.D
    DROP_GIVEN = 2    # the masks already in Dropout.D (Network.forward's, a cache's)

cdef enum Stage:
    STAGE_FORWARD
    STAGE_BACKWARD
    STAGE_ONEPASS
    STAGE_GRAM_UPDATE
    STAGE_LAYER1_SETUP
    STAGE_BATCH_FORWARD
    STAGE_UPDATE


cdef struct Optim:
    # The fit's update rule (fastnn.optimizers) and the optimizer's state.
    # kind OPT_GD with lambd 0 is the first course's gradient descent.
    int kind              # OPT_* (_course2.pxi)
    double lambd, beta1, beta2, epsilon
    bint nesterov         # SklearnSGD's Nesterov momentum (beta1 is its mu)
    double decay_rate     # the learning rate's decay (Schedule.learning_rate_at)
    Py_ssize_t time_interval
    void** vW             # vW[l], vb[l], sW[l], sb[l]: shaped as W[l], b[l], or NULL
    void** vb             # (v: Momentum's and Adam's, s: RMSprop's and Adam's)
    void** sW
    void** sb


cdef struct Dropout:
    # Inverted dropout on the hidden layers (fastnn.regularization).
    bint on               # some layer has a mask: fits hash them per update
    uint64_t key          # the fit's mask key (Fit.dropout_key)
    unsigned char** D     # D[l] (n_l, m): layer l's 0/1 mask, or NULL: no dropout there
    double* keep_prob     # keep_prob[l]
    uint64_t* threshold   # threshold[l] = mask_threshold(keep_prob[l])


cdef struct Net:
    # The network and its buffers (row-major; a buffer's row stride is the
    # current Pass's m). Pointers into arrays _Net owns or is given.
    bint f64              # float64 (else float32) arrays
    int L                 # layers
    int T                 # threads = column chunks
    int g0                # ReLU'(0) and leaky ReLU'(0): 1, or 0 (the left-hand derivative)
    Py_ssize_t* n         # n[0..L]: the layers' widths, n[0] = n_x
    int* act              # act[l], l = 1..L: activation codes (_codes.pxi)
    void** W              # W[l] (n_l, n_{l-1}), l = 1..L
    void** b              # b[l] (n_l,)
    void** Z              # Z[l] (n_l, m)
    void** A              # A[0] = X (n_0, m), A[l] (n_l, m)
    void** dZ             # dZ[l] (n_l, m)
    void** dWp            # dWp[t * (L+1) + l] (n_l, n_{l-1}): thread t's partial sum of dZ A^T
    void** dbp            # dbp[t * (L+1) + l] (n_l,)
    void* Y               # (n_L, m)
    void* w               # (m,) the examples' weights (sample_weight), or NULL: unweighted
    void** view           # T * 4 * (L+1): thread t's Z, A, dZ, D pointers in a blocked pass
    Optim opt
    Dropout drop


cdef struct Layer1:
    # How layer 1 trains; only its mode's buffers are set.
    Layer1Mode mode
    Py_ssize_t kb         # ONEPASS: rows of X per cache block
    void* scratch         # ONEPASS: T pairs of blocks (n_1, kb): dW1 and W1 transposed
    void* Zpart           # ONEPASS: T partial sums (n_1, m) of W1 X
    void* Zlin            # ONEPASS, GRAM: (n_1, m) W1 X
    void* G               # GRAM: (m, m) X^T X
    void* S               # GRAM: (n_1, m) sum of dZ1 over iterations


cdef struct Pass:
    # One call's arguments, on the stack of the call that runs it.
    Py_ssize_t m          # columns of this pass: all m examples, or one batch's
    double S              # the means' denominator: m, or the pass's weights' sum (net.w)
    int loss              # the loss code (_codes.pxi), for backward
    double lr             # the learning rate, for updates
    bint last             # this update is training's last: no next forward
    const int64_t* idx    # batch forward: the batch's m example indices into XT, YT
    const void* XT        # batch forward: the whole X^T (m_src, n_0), one example a row
    const void* YT        # batch forward: the whole Y^T (m_src, n_L)
    const void* WS        # batch forward: the whole sample_weight (m_src,), or NULL
    bint rows             # batch: A[0] holds the batch as rows (m, n_0), not columns (input_rows)
    bint blocked          # batch, T > 1: each thread's columns a block of its own (_blocked_stage)
    Py_ssize_t col0       # a block's first column in the batch (the masks' positions)
    Py_ssize_t m_all      # the batch's columns (the masks' positions); 0: m
    int dropout           # DropMode of this forward and backward
    uint64_t t            # the updates taken so far (the current one's number, once counted)
    Py_ssize_t i          # runs: the iteration (epoch) the call starts at (the decay's clock)
    const Update* u       # update stages: this update's rule and numbers


cdef void _forward_chunk(const Net* net, const Layer1* l1, const Pass* ps, Py_ssize_t m,
                         Py_ssize_t c0, Py_ssize_t c1,
                         floating** A,  # IN A[0] (n_0, m); OUT A[l] (n_l, m), columns c0:c1
                         ) noexcept nogil:
    """Z[l] = W[l] A[l-1] + b[l], A[l] = g(Z[l]) for the chunk's columns, layer by
    layer; layer 1 from Zlin (W1 X kept up to date) unless DIRECT; a masked
    layer's A then dropped out (ps.dropout)."""
    cdef int l
    cdef uint64_t base = 0
    cdef floating** W = <floating**>net.W
    cdef floating** b = <floating**>net.b
    cdef floating** Z = <floating**>net.Z
    for l in range(1, net.L + 1):
        if l == 1 and l1.mode != DIRECT:
            linear_activation_forward(net.act[1], net.n[1], m, c0, c1, <floating*>l1.Zlin, b[1],
                                      Z[1], A[1])
        elif not forward_in_gemm_epilogue(net.act[l], net.n[l], net.n[l - 1], m, c0, c1, W[l],
                                          A[l - 1], b[l], Z[l], A[l], l == 1 and ps.rows):
            if l == 1 and ps.rows:
                product_rows(NN, net.n[1], net.n[0], m, c0, c1, W[1], A[0], Z[1])
            else:
                product(NN, net.n[l], net.n[l - 1], m, c0, c1, 1, W[l], A[l - 1], 0, Z[l])
            linear_activation_forward(net.act[l], net.n[l], m, c0, c1, Z[l], b[l], Z[l], A[l])
        if ps.dropout != DROP_NONE and net.drop.D[l] != NULL:
            if ps.dropout == DROP_HASH:
                base = fastnn_mask_base(net.drop.key, ps.t, l)
            dropout_forward(net.n[l], m, c0, c1, ps.m_all if ps.m_all else m, ps.col0, base,
                            net.drop.threshold[l], ps.dropout == DROP_HASH,
                            <floating>net.drop.keep_prob[l], net.drop.D[l], A[l])


cdef void _backward_chunk(const Net* net, const Layer1* l1, const Pass* ps, Py_ssize_t m,
                          int t, Py_ssize_t c0, Py_ssize_t c1,
                          floating** dZ,  # OUT dZ[l] (n_l, m), columns c0:c1
                          ) noexcept nogil:
    """Thread t's partial dW, db (dWp, dbp; not yet / m) over its chunk's
    examples, from the forward in Z, A; dW1 too unless layer 1 is not DIRECT
    (from A[0]'s rows where ps.rows);
    a masked layer's dA through its mask (ps.dropout) before g'."""
    cdef int l, L = net.L
    cdef Py_ssize_t j, rows, r0, r1
    cdef floating** Z = <floating**>net.Z
    cdef floating** A = <floating**>net.A
    cdef floating** dWp = <floating**>net.dWp + t * (L + 1)
    cdef floating** dbp = <floating**>net.dbp + t * (L + 1)
    output_dZ(ps.loss, net.act[L], net.g0, net.n[L], m, c0, c1, Z[L], A[L], <floating*>net.Y,
              <floating*>net.w, dZ[L])
    for l in range(L, 0, -1):
        linear_backward(net.n[l], net.n[l - 1], m, c0, c1, (<floating**>net.W)[l], dZ[l],
                        NULL if l == 1 and (l1.mode != DIRECT or ps.rows) else A[l - 1],
                        dWp[l], dbp[l], dZ[l - 1] if l > 1 else NULL)
        if l == 1 and ps.rows:
            product_rows(NT, net.n[1], net.n[0], m, c0, c1, dZ[1], A[0], dWp[1])
        if l == 1:
            continue
        # The chunk's columns of each row; one thread's chunk is the whole
        # block, walked as one row (no loop start and tail per row).
        rows, r0, r1 = net.n[l - 1], c0, c1
        if c0 == 0 and c1 == m:
            rows, r0, r1 = 1, 0, net.n[l - 1] * m
        if ps.dropout != DROP_NONE and net.drop.D[l - 1] != NULL:
            for j in range(rows):
                dropout_backward(net.act[l - 1], net.g0, <floating>net.drop.keep_prob[l - 1],
                                 net.drop.D[l - 1] + j * m, Z[l - 1] + j * m, A[l - 1] + j * m,
                                 dZ[l - 1] + j * m, r0, r1)
        else:
            for j in range(rows):
                activation_backward(net.act[l - 1], net.g0, Z[l - 1] + j * m, A[l - 1] + j * m,
                                    dZ[l - 1] + j * m, r0, r1)


cdef void _onepass_rows(const Net* net, const Layer1* l1, const Update* u, Py_ssize_t m,
                        double S, bint last, int t, floating lr) noexcept nogil:
    """Layer 1 in one pass over X, for thread t's rows k0:k1 of X (features).

    Per cache block of rows: dW1[:, blk] = dZ1 X[blk]^T (all m examples, so no
    cross-thread sum), W1[:, blk] steps (IN/OUT W1), and -- while X[blk] is
    still in cache, unless ``last`` -- Zpart_t += W1_new[:, blk] X[blk] for the
    next forward (OUT Zpart's slice t, (n_1, m)). The step is u's
    (update_parameters, W1's optimizer state alongside) unless plain; S is
    the mean's denominator (m, or the weights' sum).
    """
    cdef Py_ssize_t n1 = net.n[1], n0 = net.n[0]
    cdef Py_ssize_t k0 = n0 * t // net.T, k1 = n0 * (t + 1) // net.T, kk, j, e, w
    cdef floating* X = (<floating**>net.A)[0]
    cdef floating* W1 = (<floating**>net.W)[1]
    cdef floating* dZ1 = (<floating**>net.dZ)[1]
    cdef floating* blk = <floating*>l1.scratch + 2 * t * n1 * l1.kb
    cdef floating* blkT = blk + n1 * l1.kb   # the stepped W1[:, blk], transposed (w, n1)
    cdef floating* Zp = <floating*>l1.Zpart + t * n1 * m
    cdef floating step, lr_m = lr / <floating>S if S > 0 else 0
    cdef floating* vW1 = <floating*>net.opt.vW[1]
    cdef floating* sW1 = <floating*>net.opt.sW[1]
    # One unit (logistic regression): BLAS's gemv streams X faster than a tile
    # of one row (measured: 450 vs 400 us per iteration on the logreg workload).
    cdef bint fused = FASTNN_FUSED_FIRST_LAYER and n1 > 1
    for e in range(n1 * m):
        Zp[e] = 0
    kk = k0
    while kk < k1:
        w = min(l1.kb, k1 - kk)
        # blk = dZ1 X[blk]^T: a thin product (n1 rows) needs no packing
        if not fused:
            product(NT, n1, w, m, 0, m, 1, dZ1, X + kk * m, 0, blk)
        elif floating is double:
            fl_dw_f64(n1, w, m, dZ1, X + kk * m, blk)
        else:
            fl_dw_f32(n1, w, m, dZ1, X + kk * m, blk)
        for j in range(n1):
            if not u.plain:
                update_parameters(u, w, S, W1 + j * n0 + kk, blk + j * w, True,
                                  NULL if vW1 == NULL else vW1 + j * n0 + kk,
                                  NULL if sW1 == NULL else sW1 + j * n0 + kk)
                for e in range(w):
                    step = W1[j * n0 + kk + e]
                    blk[j * w + e] = step
                    blkT[e * n1 + j] = step
                continue
            for e in range(w):
                step = gradient_step(W1[j * n0 + kk + e], lr_m, blk[j * w + e])
                W1[j * n0 + kk + e] = step
                blk[j * w + e] = step
                blkT[e * n1 + j] = step
        if not last:
            if not fused:
                product(NN, n1, w, m, 0, m, 1, blk, X + kk * m, 1, Zp)
            elif floating is double:
                fl_fwd_f64(n1, w, m, blkT, X + kk * m, Zp)
            else:
                fl_fwd_f32(n1, w, m, blkT, X + kk * m, Zp)
        kk += w


cdef inline Py_ssize_t chunk_start(Py_ssize_t m, int t, int T, Py_ssize_t itemsize) noexcept nogil:
    """Where thread t's columns of an (n, m) row-major matrix start (t = T: m).
    Where each row is whole 64-byte lines the even split is rounded to a line,
    so that no line of a line-aligned buffer is written by two threads (a
    blocked batch's blocks end to end share at most the line at each edge)."""
    cdef Py_ssize_t lanes = 64 // itemsize, c = m * t // T
    if t == 0 or t >= T or (m * itemsize) % 64 != 0 or m < 2 * lanes * T:
        return m if t >= T else c
    return (c + lanes // 2) // lanes * lanes


def _line_aligned(shape, dtype):
    """An empty C-contiguous array starting on a 64-byte line. numpy's start
    where malloc puts them, a large one 16 bytes into a line: a thread's
    columns would then share lines with the next thread's however the
    columns are split."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + 64, np.uint8)
    start = -buf.ctypes.data % 64
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def _column_chunks(Py_ssize_t m, int T, Py_ssize_t itemsize):
    """The T threads' column chunks of an (n, m) matrix, [(c0, c1), ...], as
    the kernels split them (chunk_start; for tests)."""
    return [(chunk_start(m, t, T, itemsize), chunk_start(m, t + 1, T, itemsize))
            for t in range(T)]


cdef void _stage(const Net* net, const Layer1* l1, const Pass* ps, Stage stage, int t,
                 floating lr) noexcept nogil:
    """Thread t's share of one stage: its column chunk (or, ONEPASS, its rows of
    X); lr is ps.lr in the plan's dtype."""
    cdef Py_ssize_t m = ps.m
    cdef Py_ssize_t c0 = chunk_start(m, t, net.T, sizeof(floating))
    cdef Py_ssize_t c1 = chunk_start(m, t + 1, net.T, sizeof(floating))
    cdef floating** A = <floating**>net.A
    if ps.blocked and (stage == STAGE_BATCH_FORWARD or stage == STAGE_BACKWARD):
        _blocked_stage(net, l1, ps, stage, t, c0, c1, lr)  # lr: the plan's dtype
        return
    if stage == STAGE_FORWARD:
        _forward_chunk(net, l1, ps, m, c0, c1, A)
    elif stage == STAGE_BACKWARD:
        _backward_chunk(net, l1, ps, m, t, c0, c1, <floating**>net.dZ)
    elif stage == STAGE_ONEPASS:
        _onepass_rows(net, l1, ps.u, m, ps.S, ps.last, t, lr)
    elif stage == STAGE_GRAM_UPDATE:  # Zlin[:, c] -= (lr/S) dZ1 G[:, c] (S = m unweighted)
        product(NN, net.n[1], m, m, c0, c1, -lr / <floating>ps.S, (<floating**>net.dZ)[1],
                <floating*>l1.G, 1, <floating*>l1.Zlin)
    elif stage == STAGE_LAYER1_SETUP:  # Zlin[:, c] = W1 X[:, c]; GRAM: G[:, c] = X^T X[:, c]
        product(NN, net.n[1], net.n[0], m, c0, c1, 1, (<floating**>net.W)[1], A[0], 0,
                <floating*>l1.Zlin)
        if l1.mode == GRAM:
            product(TN, net.n[0], m, m, c0, c1, 1, A[0], A[0], 0, <floating*>l1.G)
    elif stage == STAGE_BATCH_FORWARD:  # the thread's columns of the batch, then forward
        _gather_chunk(net, ps, c0, c1, A[0], <floating*>net.Y)
        _forward_chunk(net, l1, ps, m, c0, c1, A)
    elif stage == STAGE_UPDATE:  # the thread's share of every parameter's sum and step
        _update_share(net, l1, ps, t, lr)


cdef void _parallel(const Net* net, const Layer1* l1, const Pass* ps, Stage stage,
                    floating lr) noexcept nogil:
    """Run a stage on every thread's share: inline for one thread (no OpenMP
    region to start), else one OpenMP thread each."""
    cdef int t
    if net.T == 1:
        _stage(net, l1, ps, stage, 0, lr)
        return
    for t in prange(net.T, num_threads=net.T, schedule="static", chunksize=1):
        _stage(net, l1, ps, stage, t, lr)


cdef void _run(const Net* net, const Layer1* l1, Pass ps, Py_ssize_t count, bint last,
               double* losses,  # OUT (count,) each iteration's loss, or NULL: none
               floating dtype) noexcept nogil:
    """Backward + update of the current iteration, then count - 1 full iterations,
    each followed by the next iteration's forward -- except after the very last
    update of training (``last``), whose forward nobody would read. With
    dropout each update runs its own masked forward first instead (ps.lr is
    the undecayed rate, ps.t the updates before the call)."""
    cdef Py_ssize_t it
    cdef double learning_rate0 = ps.lr
    cdef Update u
    for it in range(count):
        ps.last = last and it == count - 1
        ps.t += 1
        u = _update_at(net, learning_rate0, ps.i + it, ps.t)
        ps.u, ps.lr = &u, u.lr
        if net.drop.on:
            ps.dropout = DROP_HASH
            _parallel(net, l1, &ps, STAGE_FORWARD, <floating>u.lr)
        if losses != NULL:
            losses[it] = _batch_loss(net, &ps, dtype)
        _parallel(net, l1, &ps, STAGE_BACKWARD, <floating>u.lr)
        _update(net, l1, &ps, <floating>u.lr)
        if not ps.last and not net.drop.on:
            _parallel(net, l1, &ps, STAGE_FORWARD, <floating>u.lr)


# -- the entry points: one call's work in the plan's dtype (Net.f64) ---------------

cdef void run_stage(const Net* net, const Layer1* l1, const Pass* ps, Stage stage) noexcept nogil:
    """One stage over every thread's share (forward, backward, layer-1 setup)."""
    if net.f64:
        _parallel(net, l1, ps, stage, <double>ps.lr)
    else:
        _parallel(net, l1, ps, stage, <float>ps.lr)


cdef void run_iterations(const Net* net, const Layer1* l1, Pass ps, Py_ssize_t count,
                         bint last, double* losses) noexcept nogil:
    """:func:`_run`: count full-batch iterations from the current forward."""
    if net.f64:
        _run(net, l1, ps, count, last, losses, <double>ps.lr)
    else:
        _run(net, l1, ps, count, last, losses, <float>ps.lr)
