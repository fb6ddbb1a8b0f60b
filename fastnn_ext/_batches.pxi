# Mini-batch epochs (the engine room's, see _engine.pxi): a Net sized for one
# batch over gather buffers, whole epochs per call without the GIL; a batch
# of one example on one thread takes the fused rank-1 step (_step_one).
# Epoch losses (Schedule.epoch_loss), here and in _run: given a losses
# array, each batch's loss is read off the forward its step trains on
# (_batch_loss: compute_cost on the output layer's Z, A and the batch's Y,
# plus L2's term at the weights before the update), serially between the
# forward and the backward; given NULL, none of it runs.
# A weighted fit (sample_weight) gathers each batch's weights with its
# columns and sums them serially (S, the batch's means' denominator).

cdef double _batch_loss(const Net* net, const Pass* ps, floating dtype) noexcept nogil:
    """J of the forward in Z, A (ps.m columns, against net.Y, weighted by net.w)
    plus L2's lambd / (2 ps.S) sum ||W||^2 at the parameters it ran on (S:
    ps.m, or the batch's weights' sum; 0 for S = 0): a batch's term of its
    epoch's loss (Schedule.epoch_loss), before its update."""
    cdef int L = net.L, t
    cdef Py_ssize_t c0, c1, o
    cdef double J = 0
    cdef floating* w = <floating*>net.w
    if not ps.blocked:
        J = compute_cost(ps.loss, net.act[L], net.n[L], ps.m, (<floating**>net.Z)[L],
                         (<floating**>net.A)[L], <floating*>net.Y, w, ps.S)
    else:  # each thread's columns a block of their own (_blocked_stage), added in order
        for t in range(net.T):
            c0 = chunk_start(ps.m, t, net.T, sizeof(floating))
            c1 = chunk_start(ps.m, t + 1, net.T, sizeof(floating))
            o = net.n[L] * c0
            J += compute_cost(ps.loss, net.act[L], net.n[L], c1 - c0,
                              (<floating**>net.Z)[L] + o, (<floating**>net.A)[L] + o,
                              <floating*>net.Y + o, NULL if w == NULL else w + c0, ps.S)
    if net.opt.lambd != 0 and ps.S > 0:
        J += net.opt.lambd / (2 * ps.S) * l2_cost_sum(L, net.n, <floating**>net.W)
    return J


#: How many examples ahead of the one it copies the gather asks for rows (into
#: L2: fastnn_prefetch_span). Measured on a Zen 4, one thread, float32 and
#: float64 epochs at B = 200 over 50 000 x 100 examples: 3-4 % faster than 8
#: examples ahead into L1 (8 ahead into L2: about half of that); level on two
#: threads and where X fits in L2.
cdef enum:
    GATHER_AHEAD = 32
    BLOCKED_MIN_COLUMNS = 8  # a thread's columns from which a batch's are blocked

cdef bint BLOCKED_BATCHES = True


def _blocked_batches(on):
    """Whether two or more threads run each batch's columns as blocks of their
    own (_blocked_stage) or in place, as column ranges of shared rows; None
    changes nothing. Returns the setting before the call (for tests)."""
    global BLOCKED_BATCHES
    old = bool(BLOCKED_BATCHES)
    if on is not None:
        BLOCKED_BATCHES = bool(on)
    return old


cdef inline void _prefetch_example(const Net* net, const Pass* ps, Py_ssize_t i) noexcept nogil:
    """Ask for example ps.idx[i]'s rows of X^T and Y^T (and its weight)."""
    cdef Py_ssize_t j = ps.idx[i], n0 = net.n[0], nL = net.n[net.L]
    cdef size_t size = sizeof(double) if net.f64 else sizeof(float)
    fastnn_prefetch_span(<const char*>ps.XT + j * n0 * size, n0 * size)
    fastnn_prefetch_span(<const char*>ps.YT + j * nL * size, nL * size)
    if ps.WS != NULL:
        fastnn_prefetch_span(<const char*>ps.WS + j * size, size)


cdef bint input_rows(const Net* net, const Layer1* l1, const Pass* ps) noexcept nogil:
    """Whether a batch's input is gathered as rows: A[0] read as (m, n_0), each
    example's row of X^T copied whole. Only where every thread's layer-1
    products (the forward's W1 X, the backward's dZ1 X^T) are GEMMs -- a GEMM
    packs its operands and takes either layout at the same speed -- so that
    no thread's chunk of A[0] is laid out differently from another's.
    Copying rows to columns wrote one element to each of n_0 rows of the
    buffer per example (7 % of an Adam epoch at batch size 200, one thread);
    the rows' copy is a memcpy each."""
    cdef Py_ssize_t t, mc, n1 = net.n[1], n0 = net.n[0], m = ps.m
    cdef Py_ssize_t size = sizeof(double) if net.f64 else sizeof(float)
    if ps.idx == NULL or l1.mode != DIRECT:
        return False
    for t in range(net.T):
        mc = chunk_start(m, t + 1, net.T, size) - chunk_start(m, t, net.T, size)
        if (route(NN, n1, n0, m, mc, True, size) != GEMM
                or route(NT, n1, n0, m, mc, True, size) != GEMM):
            return False
    return True


cdef void product_rows(Product kind, Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t c0,
                       Py_ssize_t c1,
                       const floating* P,  # IN  NN: (n, k); NT: (n, m)
                       const floating* R,  # IN  Q's rows: Q^T (m, k), row-major
                       floating* C,        # OUT NN: (n, m), columns c0:c1; NT: (n, k)
                       ) noexcept nogil:
    """product(kind, ..., 1, P, Q, 0, C) for NN or NT with Q (k, m) given by
    its rows, R = Q^T: the chunk's rows R[c0:c1] are Q's columns, read by the
    GEMM with their strides swapped. GEMM-routed products only (input_rows)."""
    cdef Py_ssize_t mc = c1 - c0
    if kind == NN:  # C[:, c] = P Q[:, c]: Q[:, c] (k, mc) is R[c] with row stride 1
        gemm(n, mc, k, 1, P, k, 1, R + c0 * k, 1, k, 0, C + c0, m)
    else:  # NT: C = P[:, c] Q[:, c]^T, Q[:, c]^T (mc, k) being R[c] itself
        gemm(n, k, mc, 1, P + c0, m, 1, R + c0 * k, k, 1, 0, C, k)


cdef void _blocked_stage(const Net* net, const Layer1* l1, const Pass* ps, Stage stage, int t,
                         Py_ssize_t c0, Py_ssize_t c1, floating dtype) noexcept nogil:
    """A batch stage of thread t on its columns c0:c1 laid out as a block of
    their own: every (n, m) buffer of the batch holds thread t's columns at
    n * c0, as an (n, c1 - c0) matrix. Two threads' column ranges of shared
    rows ran the passes over them 6-20x slower (README, "Every core"): the
    cores fetched each other's lines. The same kernels run on a view of the
    plan (its buffers at the block, m = c1 - c0), so each thread computes
    what it computed on its columns before; the hashed masks keep their
    positions in the batch (ps.col0, ps.m_all)."""
    cdef Net v = net[0]
    cdef Pass p = ps[0]
    cdef int l, L = net.L
    cdef Py_ssize_t mc = c1 - c0, size = sizeof(floating)
    cdef void** Zt = net.view + 4 * (L + 1) * t
    cdef void** At = Zt + (L + 1)
    cdef void** dZt = At + (L + 1)
    cdef unsigned char** Dt = <unsigned char**>(dZt + (L + 1))
    for l in range(L + 1):
        At[l] = <char*>net.A[l] + net.n[l] * c0 * size
        Zt[l] = NULL if l == 0 else <char*>net.Z[l] + net.n[l] * c0 * size
        dZt[l] = NULL if l == 0 else <char*>net.dZ[l] + net.n[l] * c0 * size
        Dt[l] = NULL if net.drop.D[l] == NULL else net.drop.D[l] + net.n[l] * c0
    v.Z, v.A, v.dZ, v.drop.D = Zt, At, dZt, Dt
    v.Y = <char*>net.Y + net.n[L] * c0 * size
    v.w = NULL if net.w == NULL else <char*>net.w + c0 * size
    p.m, p.idx, p.col0, p.m_all, p.blocked = mc, ps.idx + c0, c0, ps.m, False
    if stage == STAGE_BATCH_FORWARD:
        _gather_chunk(&v, &p, 0, mc, <floating*>At[0], <floating*>v.Y)
        _forward_chunk(&v, l1, &p, mc, 0, mc, <floating**>At)
    else:
        _backward_chunk(&v, l1, &p, mc, t, 0, mc, <floating**>dZt)


cdef void _gather_chunk(const Net* net, const Pass* ps, Py_ssize_t c0, Py_ssize_t c1,
                        floating* X,  # OUT the batch buffer A[0], examples c0:c1:
                                      # columns of (n_0, m), or rows of (m, n_0) (ps.rows)
                        floating* Y,  # OUT (n_L, m): the batch's Y, columns c0:c1
                        ) noexcept nogil:
    """The examples ps.idx[c0:c1], rows of the whole X^T and Y^T, as columns
    (X as rows, where ps.rows); their weights (ps.WS) into net.w[c0:c1] in a
    weighted fit. The rows are picked at random from arrays larger than the
    L2 cache, so each example's are asked for GATHER_AHEAD examples before
    they are copied (within the batch: ps.idx is read no further than its m
    indices): copied as they come, each row's first line stalled the copy
    for a whole L3 (or DRAM) round trip -- 12 % of an epoch at batch size
    200 in float32."""
    cdef Py_ssize_t r, i, m = ps.m, n0 = net.n[0], nL = net.n[net.L]
    cdef const floating* x
    cdef const floating* y
    cdef floating* w = <floating*>net.w
    for i in range(c0, min(c0 + GATHER_AHEAD, c1)):
        _prefetch_example(net, ps, i)
    for i in range(c0, c1):
        if i + GATHER_AHEAD < c1:
            _prefetch_example(net, ps, i + GATHER_AHEAD)
        if ps.WS != NULL:
            w[i] = (<const floating*>ps.WS)[ps.idx[i]]
        x = <const floating*>ps.XT + ps.idx[i] * n0
        y = <const floating*>ps.YT + ps.idx[i] * nL
        if ps.rows:
            memcpy(X + i * n0, x, n0 * sizeof(floating))
        else:
            for r in range(n0):
                X[r * m + i] = x[r]
        for r in range(nL):
            Y[r * m + i] = y[r]


cdef void _step_one(const Net* net, const Pass* ps, floating lr) noexcept nogil:
    """Backward and update of a batch of one example on one thread, fused: each
    W -= lr dz a_prev^T is a rank-1 update, W read and written once, with no
    dW buffer to write and read back; dA_prev = W^T dz is taken before W
    changes. Another rule (ps.u not plain) is the same rank-1 pass with the
    rule in it (update_rank1: each element of dz a_prev^T formed where W, v,
    s are stepped), the rule's numbers taken once per layer. IN the
    forward's Z, A (one column), Y; OUT every W, b, dZ. Unweighted only: a
    weighted batch of one takes the general path (_epochs)."""
    cdef int l, L = net.L
    cdef Py_ssize_t j, k, n, n_prev
    cdef floating** Z = <floating**>net.Z
    cdef floating** A = <floating**>net.A
    cdef floating** dZ = <floating**>net.dZ
    cdef floating* W
    cdef floating* b
    cdef const floating* a_prev
    cdef floating s
    cdef const Update* u = ps.u
    output_dZ(ps.loss, net.act[L], net.g0, net.n[L], 1, 0, 1, Z[L], A[L], <floating*>net.Y,
              NULL, dZ[L])
    for l in range(L, 0, -1):
        n, n_prev = net.n[l], net.n[l - 1]
        W, b, a_prev = (<floating**>net.W)[l], (<floating**>net.b)[l], A[l - 1]
        if l > 1:
            product(TN, n, n_prev, 1, 0, 1, 1, W, dZ[l], 0, dZ[l - 1])
            if ps.dropout != DROP_NONE and net.drop.D[l - 1] != NULL:
                dropout_backward(net.act[l - 1], net.g0, <floating>net.drop.keep_prob[l - 1],
                                 net.drop.D[l - 1], Z[l - 1], A[l - 1], dZ[l - 1], 0, n_prev)
            else:  # one column (m = 1): its n_prev units are contiguous, one call
                activation_backward(net.act[l - 1], net.g0, Z[l - 1], A[l - 1], dZ[l - 1], 0,
                                    n_prev)
        if not u.plain:
            update_rank1(u, n, n_prev, W, dZ[l], a_prev, <floating*>net.opt.vW[l],
                         <floating*>net.opt.sW[l])
            update_parameters(u, n, 1, b, dZ[l], False, <floating*>net.opt.vb[l],
                              <floating*>net.opt.sb[l])
            continue
        for j in range(n):
            s = lr * dZ[l][j]
            b[j] = b[j] - s
            for k in range(n_prev):
                W[j * n_prev + k] = W[j * n_prev + k] - s * a_prev[k]


cdef void _epochs(const Net* net, const Layer1* l1, Pass ps, Py_ssize_t size, Py_ssize_t m_src,
                  const int64_t* orders,  # IN (count, m_src): each epoch's example order
                  Py_ssize_t count,
                  double* losses,  # OUT (count,) each epoch's loss, or NULL: none
                  floating dtype) noexcept nogil:
    """``count`` epochs of mini-batch training over the m_src examples of
    ps.XT, ps.YT: batches of ``size`` (the buffers' width; the last smaller),
    each gathered, forward (masked, with dropout), backward and an update with
    its own mean (over S, its weights' sum, in a weighted fit); epoch ps.i + e
    trains at its decayed rate, ps.t counts the updates. ``losses``: the
    epoch's sum of (B_k / m_src) times batch k's loss (_batch_loss:
    scikit-learn's loss_curve_ entry)."""
    cdef Py_ssize_t e, k
    cdef double learning_rate0 = ps.lr
    cdef Update u
    ps.dropout = DROP_HASH if net.drop.on else DROP_NONE
    for e in range(count):
        k = 0
        if losses != NULL:
            losses[e] = 0
        while k < m_src:
            ps.m = min(size, m_src - k)
            ps.idx = orders + e * m_src + k
            ps.rows = input_rows(net, l1, &ps)
            # Each thread's columns a block of their own (_blocked_stage) where every
            # thread has a few lines of them; a narrower chunk is run in place (a block
            # of one column would also take another product kernel: route's VECTOR).
            ps.blocked = (BLOCKED_BATCHES and net.T > 1 and ps.m >= BLOCKED_MIN_COLUMNS * net.T
                          and l1.mode == DIRECT)
            ps.t += 1
            u = _update_at(net, learning_rate0, ps.i + e, ps.t)
            ps.u, ps.lr = &u, u.lr
            _parallel(net, l1, &ps, STAGE_BATCH_FORWARD, <floating>u.lr)
            ps.S = ps.m if net.w == NULL else weight_sum(<floating*>net.w, ps.m)
            if losses != NULL:
                losses[e] += <double>ps.m / m_src * _batch_loss(net, &ps, dtype)
            if ps.m == 1 and net.T == 1 and net.w == NULL:
                _step_one(net, &ps, <floating>u.lr)
            else:
                _parallel(net, l1, &ps, STAGE_BACKWARD, <floating>u.lr)
                _update(net, l1, &ps, <floating>u.lr)
            k += size


cdef void run_epochs(const Net* net, const Layer1* l1, Pass ps, Py_ssize_t size,
                     Py_ssize_t m_src, const int64_t* orders, Py_ssize_t count,
                     double* losses) noexcept nogil:
    """:func:`_epochs`: count epochs of mini-batches of ``size``."""
    if net.f64:
        _epochs(net, l1, ps, size, m_src, orders, count, losses, <double>ps.lr)
    else:
        _epochs(net, l1, ps, size, m_src, orders, count, losses, <float>ps.lr)
