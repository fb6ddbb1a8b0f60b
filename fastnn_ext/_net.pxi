# _Net: the Python-facing owner of a plan -- a Net and a Layer1 (_engine.pxi)
# -- and of the arrays their pointers point into. Each method builds its call's
# Pass and runs the engine without the GIL.


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


cdef void* _addr1(object a) except NULL:
    """The address of a C-contiguous 1-D float64 or float32 array (read-only allowed)."""
    cdef const double[::1] d
    cdef const float[::1] f
    if a.dtype == np.float64:
        d = a
        return <void*>&d[0]
    f = a
    return <void*>&f[0]


cdef void* _mask_addr(object D) except NULL:
    cdef unsigned char[:, ::1] d = D
    return <void*>&d[0, 0]


cdef void** _pointers(Py_ssize_t count) except NULL:
    cdef void** out = <void**>malloc(count * sizeof(void*))
    if out == NULL:
        raise MemoryError()
    return out


cdef Pass _pass(Py_ssize_t m, double S, int loss=0, double lr=0) noexcept:
    """A call's Pass over m columns, its means over S (m, or the weights' sum):
    no batch, not training's last update, no dropout."""
    cdef Pass ps
    ps.m, ps.S, ps.loss, ps.lr, ps.last = m, S, loss, lr, False
    ps.idx, ps.XT, ps.YT, ps.WS, ps.rows = NULL, NULL, NULL, NULL, False
    ps.blocked, ps.col0, ps.m_all = False, 0, 0
    ps.dropout, ps.t, ps.i, ps.u = DROP_NONE, 0, 0, NULL
    return ps


cdef double* _losses_out(object losses, Py_ssize_t count) except? NULL:
    """The address of ``losses``, a writeable C-contiguous float64 (count,)
    array, or NULL for None."""
    cdef double[::1] out
    if losses is None:
        return NULL
    out = losses
    if out.shape[0] != count:
        raise ValueError(f"losses must be a float64 array of shape ({count},); "
                         f"got {out.shape[0]} entries")
    if count == 0:
        return NULL
    return &out[0]


cdef void** _nulls(Py_ssize_t count) except NULL:
    cdef void** out = _pointers(count)
    cdef Py_ssize_t k
    for k in range(count):
        out[k] = NULL
    return out


cdef class _Net:
    """A plan for one network on one X (n_0, m), owning every buffer the kernels
    write.

    ``Zs``/``As`` (optional) are caller arrays to use as the layers' Z and A
    buffers (backward from given caches); otherwise they are allocated.
    ``relu_grad_at_zero`` (1 or 0) is ReLU'(0) and leaky ReLU'(0)'s
    convention in every backward pass of the plan. ``threads`` is the number
    of column chunks, one OpenMP thread each (the caller caps it at m).

    For mini-batches, X is the (n_0, batch_size) gather buffer and Y (set_Y)
    its (n_L, batch_size) twin: :meth:`epochs` fills them from the whole data
    (and the weights' buffer, set_weights, in a weighted fit).
    """
    cdef Net net
    cdef Layer1 l1
    cdef Py_ssize_t m     # the buffers' columns: X's
    cdef public double S  # the means' denominator: m, or the weights' sum (set_weights)
    cdef list keep
    cdef list mirrors  # (caller's optimizer state array, the copy the kernels update)
    cdef object dtype
    cdef public object X
    cdef public list Ws, bs, Zs, As
    cdef object _gram_start  # GRAM: (W1 before training, S)

    def __cinit__(self):
        self.net.n = NULL
        self.net.act = NULL
        self.net.W = self.net.b = self.net.Z = self.net.A = self.net.dZ = NULL
        self.net.dWp = self.net.dbp = self.net.view = NULL
        self.net.Y = self.net.w = NULL
        self.net.opt.vW = self.net.opt.vb = self.net.opt.sW = self.net.opt.sb = NULL
        self.net.drop.D = NULL
        self.net.drop.keep_prob = NULL
        self.net.drop.threshold = NULL
        self.l1.mode = DIRECT
        self.l1.kb = 0
        self.l1.scratch = self.l1.Zpart = self.l1.Zlin = self.l1.G = self.l1.S = NULL

    def __init__(self, list Ws, list bs, list act_codes, object X, int threads,
                 list Zs=None, list As=None, int relu_grad_at_zero=1):
        cdef int L = len(Ws), l, t, T = threads
        cdef Py_ssize_t m = X.shape[1]
        self.dtype = X.dtype
        self.X, self.Ws, self.bs, self.m, self.S = X, Ws, bs, m, m
        self.keep, self.mirrors = [], []
        self.net.f64 = X.dtype == np.float64
        self.net.L, self.net.T = L, T
        self.net.g0 = 1 if relu_grad_at_zero else 0
        self.net.n = <Py_ssize_t*>malloc((L + 1) * sizeof(Py_ssize_t))
        self.net.act = <int*>malloc((L + 1) * sizeof(int))
        if self.net.n == NULL or self.net.act == NULL:
            raise MemoryError()
        self.net.W, self.net.b = _pointers(L + 1), _pointers(L + 1)
        self.net.Z, self.net.A, self.net.dZ = _pointers(L + 1), _pointers(L + 1), _pointers(L + 1)
        self.net.dWp, self.net.dbp = _pointers(T * (L + 1)), _pointers(T * (L + 1))
        self.net.view = _pointers(4 * T * (L + 1))  # blocked batches' views (_blocked_stage)
        self.net.opt.vW, self.net.opt.vb = _nulls(L + 1), _nulls(L + 1)
        self.net.opt.sW, self.net.opt.sb = _nulls(L + 1), _nulls(L + 1)
        self.net.opt.kind, self.net.opt.lambd = OPT_GD, 0
        self.net.opt.beta1 = self.net.opt.beta2 = self.net.opt.epsilon = 0
        self.net.opt.nesterov = False
        self.net.opt.decay_rate, self.net.opt.time_interval = 0, 1
        self.net.drop.on, self.net.drop.key = False, 0
        self.net.drop.D = <unsigned char**>_nulls(L + 1)
        self.net.drop.keep_prob = <double*>malloc((L + 1) * sizeof(double))
        self.net.drop.threshold = <uint64_t*>malloc((L + 1) * sizeof(uint64_t))
        if self.net.drop.keep_prob == NULL or self.net.drop.threshold == NULL:
            raise MemoryError()
        for l in range(L + 1):
            self.net.drop.keep_prob[l], self.net.drop.threshold[l] = 1, 0
        self.net.n[0] = X.shape[0]
        self.net.A[0] = _addr(X)
        if Zs is None:
            Zs = [_line_aligned((W.shape[0], m), self.dtype) for W in Ws]
        if As is None:
            As = [_line_aligned((W.shape[0], m), self.dtype) for W in Ws]
        self.Zs, self.As = Zs, As
        for l in range(1, L + 1):
            W = Ws[l - 1]
            self.net.n[l] = W.shape[0]
            self.net.act[l] = act_codes[l - 1]
            self.net.W[l] = _addr(W)
            self.net.b[l] = _addr(bs[l - 1])
            self.net.Z[l] = _addr(Zs[l - 1])
            self.net.A[l] = _addr(As[l - 1])
            self.net.dZ[l] = self._own((W.shape[0], m))
            for t in range(T):
                self.net.dWp[t * (L + 1) + l] = self._own(W.shape)
                self.net.dbp[t * (L + 1) + l] = self._own((W.shape[0], 1))

    def __dealloc__(self):
        free(self.net.n); free(self.net.act); free(self.net.W); free(self.net.b)
        free(self.net.Z); free(self.net.A); free(self.net.dZ); free(self.net.dWp)
        free(self.net.dbp); free(self.net.view)
        free(self.net.opt.vW); free(self.net.opt.vb); free(self.net.opt.sW); free(self.net.opt.sb)
        free(self.net.drop.D); free(self.net.drop.keep_prob); free(self.net.drop.threshold)

    cdef void* _own(self, shape) except NULL:
        """A new buffer the plan points into, kept alive with the plan."""
        a = _line_aligned(shape, self.dtype)
        self.keep.append(a)
        return _addr(a)

    cdef void _stage_all(self, Stage stage):
        cdef Pass ps = _pass(self.m, self.S)
        with nogil:
            run_stage(&self.net, &self.l1, &ps, stage)

    def set_Y(self, Y):
        """Y (n_L, m), the plan's dtype, C-contiguous: what cost and backward use."""
        self.keep.append(Y)
        self.net.Y = _addr(Y)

    def set_weights(self, w):
        """The examples' weights (sample_weight): None (unweighted), or a
        C-contiguous (m,) array of the plan's dtype, validated by the caller
        (finite, >= 0). Means and L2's terms then go over S, their sum (0: every
        gradient and loss is 0). A batch plan's is its gather buffer: epochs()
        fills it, and each batch's S, from the whole weights."""
        if w is None:
            self.net.w, self.S = NULL, self.m
            return
        if (w.dtype != self.dtype or w.ndim != 1 or w.shape[0] != self.m
                or not w.flags.c_contiguous):
            raise ValueError(f"sample_weight must be a C-contiguous {self.dtype} array of "
                             f"shape ({self.m},); got {w.dtype} {w.shape}")
        self.keep.append(w)
        self.net.w = _addr1(w)
        if self.net.f64:
            self.S = weight_sum(<double*>self.net.w, self.m)
        else:
            self.S = weight_sum(<float*>self.net.w, self.m)

    def enable_gram(self):
        """Layer 1 in GRAM mode (see _engine.pxi). Call before forward()."""
        W1, m = self.Ws[0], self.m
        S = np.zeros((W1.shape[0], m), self.dtype)   # sum of dZ1 over iterations
        self.keep.append(S)
        self.l1.S = _addr(S)
        self.l1.G = self._own((m, m))                  # X^T X, once
        self.l1.Zlin = self._own((W1.shape[0], m))
        self._gram_start = (W1.copy(), S)
        self.l1.mode = GRAM
        self._stage_all(STAGE_LAYER1_SETUP)

    def enable_onepass(self, Py_ssize_t block_bytes=1 << 20):
        """Layer 1 in ONEPASS mode (see _engine.pxi). Call before forward()."""
        n1, m, T = self.Ws[0].shape[0], self.m, self.net.T
        self.l1.kb = max(8, min(self.X.shape[0], block_bytes // (self.X.itemsize * m)))
        self.l1.Zlin = self._own((n1, m))
        self.l1.scratch = self._own((2 * T * n1, self.l1.kb))
        self.l1.Zpart = self._own((T * n1, m))
        self.l1.mode = ONEPASS
        self._stage_all(STAGE_LAYER1_SETUP)

    def finish_gram(self, double learning_rate):
        """In GRAM mode, materialize W1 = W1_0 - (lr/m) S X^T into the caller's W1
        (lr / the weights' sum in a weighted fit)."""
        if self.l1.mode != GRAM:
            return
        W10, S = self._gram_start
        self.Ws[0][...] = W10 - (learning_rate / self.S) * (S @ self.X.T)

    def set_optimizer(self, int kind, double lambd, double beta1, double beta2, double epsilon,
                      double decay_rate, Py_ssize_t time_interval, list v=None, list s=None,
                      bint nesterov=False):
        """The fit's update rule (OPT_*, its hyper-parameters -- SklearnSGD's
        momentum as beta1, its ``nesterov`` --, L2's lambda, the decay) and the
        optimizer's state: ``v``/``s`` None, or [W1, b1, W2, ...] arrays of the
        parameters' shapes and the plan's dtype, C-contiguous, updated in place."""
        cdef int l, L = self.net.L
        needs = {OPT_GD: (False, False), OPT_MOMENTUM: (True, False),
                 OPT_RMSPROP: (False, True), OPT_ADAM: (True, True),
                 OPT_SKLEARN_SGD: (True, False), OPT_SKLEARN_ADAM: (True, True)}.get(kind)
        if needs is None or time_interval < 1:
            raise ValueError(f"unknown optimizer code {kind} or time_interval {time_interval}")
        if needs[0]:
            self._state("v", v, self.net.opt.vW, self.net.opt.vb)
        if needs[1]:
            self._state("s", s, self.net.opt.sW, self.net.opt.sb)
        self.net.opt.kind, self.net.opt.lambd = kind, lambd
        self.net.opt.beta1, self.net.opt.beta2, self.net.opt.epsilon = beta1, beta2, epsilon
        self.net.opt.nesterov = nesterov
        self.net.opt.decay_rate, self.net.opt.time_interval = decay_rate, time_interval

    cdef int _state(self, str name, list arrays, void** Wo, void** bo) except -1:
        """Point Wo[l], bo[l] at the state arrays [W1, b1, W2, ...] (checked)."""
        cdef int l, L = self.net.L
        if arrays is None or len(arrays) != 2 * L:
            raise ValueError(f"{name}: this rule needs 2 * {L} state arrays")
        for l in range(1, L + 1):
            for a, like in ((arrays[2 * l - 2], self.Ws[l - 1]),
                            (arrays[2 * l - 1], self.bs[l - 1])):
                if (a.dtype != self.dtype or a.shape != like.shape
                        or not a.flags.c_contiguous or not a.flags.writeable):
                    raise ValueError(f"{name}: each state array must be a writeable "
                                     f"C-contiguous {self.dtype} array of its "
                                     f"parameter's shape {like.shape}")
                self.keep.append(a)
            # v and s a third and two thirds of 4096 bytes past W
            Wo[l] = self._mirror(arrays[2 * l - 2], self.Ws[l - 1], 1344 if name == "v" else 2688)
            bo[l] = self._mirror(arrays[2 * l - 1], self.bs[l - 1], 0)
        return 0

    cdef void* _mirror(self, a, like, Py_ssize_t offset) except NULL:
        """A copy of state array ``a`` for the kernels (synced around each run:
        _sync), 64-byte aligned, ``offset`` bytes past its parameter ``like``
        modulo 4096. numpy puts a 64 x 64 W and its v, s a few bytes apart
        modulo 4096: a load of one then waits on the store to another (4K
        aliasing), and Adam's batch-of-one step ran up to 2x slower."""
        buf = np.empty(a.nbytes + 4096, np.uint8)
        cdef Py_ssize_t target = (like.ctypes.data + offset) & 4095 & ~63
        cdef Py_ssize_t start = (target - buf.ctypes.data) & 4095
        copy = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        self.mirrors.append((a, copy))
        return _addr(copy)

    cdef void _sync(self, bint out) except *:
        """The state copies from (out False) or into (out True) the caller's arrays."""
        for a, copy in self.mirrors:
            np.copyto(a if out else copy, copy if out else a)

    def set_dropout(self, uint64_t key, list keep_probs, list thresholds):
        """Dropout in fits: ``keep_probs[l-1]`` of each layer l (1: none; below 1
        only on hidden layers), ``thresholds[l-1]`` its mask_threshold, ``key``
        the fit's mask key. The masks' buffers are the plan's own."""
        cdef int l, L = self.net.L
        if len(keep_probs) != L or len(thresholds) != L or keep_probs[L - 1] != 1:
            raise ValueError(f"keep_probs and thresholds must have {L} entries, the last 1")
        self.net.drop.key = key
        for l in range(1, L + 1):
            if not 0 < keep_probs[l - 1] <= 1:
                raise ValueError(f"keep_probs[{l - 1}] must be in (0, 1]")
            if keep_probs[l - 1] < 1:
                self.net.drop.keep_prob[l] = keep_probs[l - 1]
                self.net.drop.threshold[l] = thresholds[l - 1]
                self.net.drop.D[l] = <unsigned char*>self._own_mask(self.Ws[l - 1].shape[0])
                self.net.drop.on = True

    cdef void* _own_mask(self, Py_ssize_t n) except NULL:
        mask = np.zeros((n, self.m), np.uint8)
        self.keep.append(mask)
        return _mask_addr(mask)

    cdef void _given_masks(self, list masks, list keep_probs) except *:
        """Point D at the given 0/1 masks (None: no dropout on that layer)."""
        cdef int l, L = self.net.L
        if len(masks) != L or len(keep_probs) != L:
            raise ValueError(f"masks and keep_probs must have {L} entries")
        for l in range(1, L + 1):
            D = masks[l - 1]
            if D is None:
                continue
            if (D.dtype != np.uint8 or D.shape != (self.Ws[l - 1].shape[0], self.m)
                    or not D.flags.c_contiguous or l == L or not 0 < keep_probs[l - 1] <= 1):
                raise ValueError(f"masks[{l - 1}] must be a C-contiguous uint8 "
                                 f"({self.Ws[l - 1].shape[0]}, {self.m}) hidden layer's mask "
                                 f"with a keep probability in (0, 1]")
            self.keep.append(D)
            self.net.drop.D[l] = <unsigned char*>_mask_addr(D)
            self.net.drop.keep_prob[l] = keep_probs[l - 1]

    def forward(self, list masks=None, list keep_probs=None):
        """Z and A of every layer at the current parameters; ``masks`` (one per
        layer, a uint8 0/1 (n_l, m) array or None) drop those layers' units
        out, with ``keep_probs`` (one per layer)."""
        cdef Pass ps = _pass(self.m, self.S)
        if masks is not None:
            self._given_masks(masks, keep_probs)
            ps.dropout = DROP_GIVEN
        with nogil:
            run_stage(&self.net, &self.l1, &ps, STAGE_FORWARD)

    def backward_into(self, int loss, list dWs, list dbs, list masks=None, list keep_probs=None):
        """OUT dWs[l-1] = (dZ_l A_{l-1}^T)/m, dbs[l-1] likewise (the shapes of W
        and b), for the current forward; ``masks``, ``keep_probs`` as forward's
        (the caches' masks). Weighted (set_weights): dZ_L's columns times the
        weights, and / S in place of / m."""
        cdef int l
        cdef void* out
        cdef Pass ps = _pass(self.m, self.S, loss)
        if masks is not None:
            self._given_masks(masks, keep_probs)
            ps.dropout = DROP_GIVEN
        with nogil:
            run_stage(&self.net, &self.l1, &ps, STAGE_BACKWARD)
        for l in range(1, self.net.L + 1):
            for is_b, arrays in ((False, dWs), (True, dbs)):
                out = _addr(arrays[l - 1])
                if self.net.f64:
                    _reduce(&self.net, l, is_b, self.S, NULL, <double*>out)
                else:
                    _reduce(&self.net, l, is_b, self.S, NULL, <float*>out)

    def cost(self, int loss):
        """J of the current forward (needs set_Y; weighted after set_weights)."""
        cdef int L = self.net.L
        cdef double J
        if self.net.f64:
            with nogil:
                J = compute_cost(loss, self.net.act[L], self.net.n[L], self.m,
                                 (<double**>self.net.Z)[L], (<double**>self.net.A)[L],
                                 <double*>self.net.Y, <double*>self.net.w, self.S)
        else:
            with nogil:
                J = compute_cost(loss, self.net.act[L], self.net.n[L], self.m,
                                 (<float**>self.net.Z)[L], (<float**>self.net.A)[L],
                                 <float*>self.net.Y, <float*>self.net.w, self.S)
        return J

    def run(self, int loss, double learning_rate, Py_ssize_t count, bint last=False,
            Py_ssize_t i=0, uint64_t t=0, losses=None):
        """count x (backward + update + forward), all without the GIL; ``last``:
        the count-th update is training's last (no forward after it). ``i``: the
        iteration the call starts at (the decay), ``t`` the updates taken before
        it. With dropout each update runs its own masked forward first.
        ``losses``: None, or a float64 (count,) array, OUT each iteration's
        loss before its update (Schedule.epoch_loss)."""
        cdef Pass ps = _pass(self.m, self.S, loss, learning_rate)
        cdef double* out = _losses_out(losses, count)
        ps.i, ps.t = i, t
        self._sync(False)
        with nogil:
            run_iterations(&self.net, &self.l1, ps, count, last, out)
        self._sync(True)

    def epochs(self, int loss, double learning_rate, orders, XT, YT, Py_ssize_t i=0,
               uint64_t t=0, losses=None, WS=None):
        """Mini-batch epochs, all without the GIL: one per row of ``orders``
        (count, m) int64, each a permutation of the m examples, cut into
        batches of this plan's size (the size of its X, the last batch
        smaller). XT (m, n_0) and YT (m, n_L): the whole data, transposed
        (one example a row), C-contiguous. ``i``: the epoch the call starts at
        (the decay), ``t`` the updates taken before it. ``losses``: None, or a
        float64 (count,) array, OUT each epoch's loss as its batches saw it
        (Schedule.epoch_loss). ``WS``: the whole sample_weight (m,), C-contiguous,
        given exactly when the plan is weighted (set_weights: its buffer)."""
        cdef const int64_t[:, ::1] o = orders
        cdef Py_ssize_t ms = XT.shape[0]
        cdef double* out = _losses_out(losses, o.shape[0])
        cdef Pass ps
        # Cheap checks that keep the kernels' reads in bounds whoever calls:
        # the plan's dtype and widths, and every index a row of XT.
        if XT.dtype != self.dtype or YT.dtype != self.dtype:
            raise TypeError(f"XT and YT must be {self.dtype}; got {XT.dtype} and {YT.dtype}")
        if (XT.ndim != 2 or YT.ndim != 2 or XT.shape[1] != self.net.n[0]
                or YT.shape != (ms, self.net.n[self.net.L]) or not XT.flags.c_contiguous
                or not YT.flags.c_contiguous):
            raise ValueError(f"XT and YT must be C-contiguous (m, {self.net.n[0]}) and "
                             f"(m, {self.net.n[self.net.L]}); got {XT.shape} and {YT.shape}")
        if (WS is None) != (self.net.w == NULL) or (WS is not None and (
                WS.dtype != self.dtype or WS.shape != (ms,) or not WS.flags.c_contiguous)):
            raise ValueError(f"WS must be a C-contiguous {self.dtype} ({ms},) array exactly "
                             f"when the plan has weights")
        if o.shape[0] == 0:
            return
        if o.shape[1] != ms or np.min(orders) < 0 or np.max(orders) >= ms:
            raise ValueError(f"orders must be rows of {ms} indices into XT's rows")
        ps = _pass(self.m, self.m, loss, learning_rate)
        ps.XT, ps.YT = _addr(XT), _addr(YT)
        ps.WS = NULL if WS is None else _addr1(WS)
        ps.i, ps.t = i, t
        self._sync(False)
        with nogil:
            run_epochs(&self.net, &self.l1, ps, self.m, ms, &o[0, 0], o.shape[0], out)
        self._sync(True)

    def gathers_rows(self, Py_ssize_t m):
        """Whether ``epochs`` gathers a batch of m examples as rows (input_rows)."""
        cdef int64_t first = 0
        cdef Pass ps = _pass(m, m)
        if not 0 < m <= self.m:
            raise ValueError(f"m must be in [1, {self.m}], got {m}")
        ps.idx = &first
        return input_rows(&self.net, &self.l1, &ps)
