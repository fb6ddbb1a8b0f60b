# _Net: the Python-facing owner of a plan and the arrays its pointers point
# into. Every call goes through _Net._go, the one place that picks float64 or
# float32 and drops the GIL.

cdef enum Op:
    OP_FORWARD
    OP_BACKWARD
    OP_COST
    OP_RUN
    OP_LAYER1_SETUP
    OP_EPOCHS


cdef double _exec(Plan* p, floating* tag, Op op, floating lr, Py_ssize_t count,
                  bint last) noexcept nogil:
    cdef int l
    if op == OP_FORWARD:
        _parallel(p, tag, STAGE_FORWARD, lr)
    elif op == OP_BACKWARD:  # mean gradients into p.dW, p.db
        _parallel(p, tag, STAGE_BACKWARD, lr)
        for l in range(1, p.L + 1):
            _reduce(p, tag, lr, l, False, (<floating**>p.dW)[l], False)
            _reduce(p, tag, lr, l, True, (<floating**>p.db)[l], False)
    elif op == OP_COST:
        return compute_cost(p.loss, p.act[p.L], p.n[p.L], p.m, (<floating**>p.Z)[p.L],
                            (<floating**>p.A)[p.L], <floating*>p.Y)
    elif op == OP_RUN:
        _run(p, tag, lr, count, last)
    elif op == OP_LAYER1_SETUP:
        _parallel(p, tag, STAGE_LAYER1_SETUP, lr)
    elif op == OP_EPOCHS:
        _epochs(p, tag, lr, p.batch, count)
    return 0


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


cdef void** _pointers(Py_ssize_t count) except NULL:
    cdef void** out = <void**>malloc(count * sizeof(void*))
    if out == NULL:
        raise MemoryError()
    return out


cdef class _Net:
    """A plan for one network on one X, owning every buffer the kernels write.

    ``Zs``/``As`` (optional) are caller arrays to use as the layers' Z and A
    buffers (backward from given caches); otherwise they are allocated.
    ``relu_grad_at_zero`` (1 or 0) is ReLU'(0) and leaky ReLU'(0)'s
    convention in every backward pass of the plan.

    For mini-batches, X is the (n_0, batch_size) gather buffer and Y (set_Y)
    its (n_L, batch_size) twin: :meth:`epochs` fills them from the whole data.
    """
    cdef Plan p
    cdef list keep
    cdef object dtype
    cdef bint is64
    cdef public object X
    cdef public list Ws, bs, Zs, As
    cdef object _layer1

    def __cinit__(self):
        self.p.n = NULL
        self.p.act = NULL
        self.p.W = self.p.b = self.p.Z = self.p.A = self.p.dZ = NULL
        self.p.dWp = self.p.dbp = self.p.dW = self.p.db = NULL

    def __init__(self, list Ws, list bs, list act_codes, object X, int threads,
                 list Zs=None, list As=None, int relu_grad_at_zero=1):
        cdef int L = len(Ws), l, t, T = threads
        cdef Py_ssize_t m = X.shape[1]
        self.dtype = X.dtype
        self.is64 = X.dtype == np.float64
        self.X, self.Ws, self.bs = X, Ws, bs
        self.keep = []
        self.p.L, self.p.m, self.p.T = L, m, T
        self.p.layer1 = DIRECT
        self.p.last = False
        self.p.loss = 0
        self.p.g0 = 1 if relu_grad_at_zero else 0
        self.p.batch = NULL
        self.p.Xsrc = self.p.Ysrc = NULL
        self.p.m_src = 0
        self.p.Y = NULL
        self.p.n = <Py_ssize_t*>malloc((L + 1) * sizeof(Py_ssize_t))
        self.p.act = <int*>malloc((L + 1) * sizeof(int))
        if self.p.n == NULL or self.p.act == NULL:
            raise MemoryError()
        self.p.W, self.p.b = _pointers(L + 1), _pointers(L + 1)
        self.p.Z, self.p.A, self.p.dZ = _pointers(L + 1), _pointers(L + 1), _pointers(L + 1)
        self.p.dW, self.p.db = _pointers(L + 1), _pointers(L + 1)
        self.p.dWp, self.p.dbp = _pointers(T * (L + 1)), _pointers(T * (L + 1))
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
            self.p.dZ[l] = self._own((W.shape[0], m))
            for t in range(T):
                self.p.dWp[t * (L + 1) + l] = self._own(W.shape)
                self.p.dbp[t * (L + 1) + l] = self._own((W.shape[0], 1))

    def __dealloc__(self):
        free(self.p.n); free(self.p.act); free(self.p.W); free(self.p.b)
        free(self.p.Z); free(self.p.A); free(self.p.dZ); free(self.p.dWp); free(self.p.dbp)
        free(self.p.dW); free(self.p.db)

    cdef void* _own(self, shape, zero=False) except NULL:
        """A new buffer the plan points into, kept alive with the plan."""
        a = np.zeros(shape, self.dtype) if zero else np.empty(shape, self.dtype)
        self.keep.append(a)
        return _addr(a)

    cdef double _go(self, Op op, double lr=0, Py_ssize_t count=0, bint last=False):
        cdef double out
        if self.is64:
            with nogil:
                out = _exec(&self.p, <double*>NULL, op, lr, count, last)
        else:
            with nogil:
                out = _exec(&self.p, <float*>NULL, op, <float>lr, count, last)
        return out

    def set_Y(self, Y):
        self.keep.append(Y)
        self.p.Y = _addr(Y)

    def enable_gram(self):
        """Layer 1 in GRAM mode (see _engine.pxi). Call before forward()."""
        W1, m = self.Ws[0], self.p.m
        S = np.zeros((W1.shape[0], m), self.dtype)   # sum of dZ1 over iterations
        self.keep.append(S)
        self.p.S = _addr(S)
        self.p.G = self._own((m, m))                  # X^T X, once
        self.p.Zlin = self._own((W1.shape[0], m))
        self._layer1 = (W1.copy(), S)
        self.p.layer1 = GRAM
        self._go(OP_LAYER1_SETUP)

    def enable_onepass(self, Py_ssize_t block_bytes=1 << 20):
        """Layer 1 in ONEPASS mode (see _engine.pxi). Call before forward()."""
        n1, m, T = self.Ws[0].shape[0], self.p.m, self.p.T
        self.p.kb = max(8, min(self.X.shape[0], block_bytes // (self.X.itemsize * m)))
        self.p.Zlin = self._own((n1, m))
        self.p.scratch = self._own((2 * T * n1, self.p.kb))
        self.p.Zpart = self._own((T * n1, m))
        self.p.layer1 = ONEPASS
        self._go(OP_LAYER1_SETUP)

    @property
    def layer1(self):
        """``"direct"``, ``"gram"`` or ``"onepass"``."""
        return {DIRECT: "direct", GRAM: "gram", ONEPASS: "onepass"}[self.p.layer1]

    def finish_gram(self, double learning_rate):
        """In GRAM mode, materialize W1 = W1_0 - (lr/m) S X^T into the caller's W1."""
        if self.p.layer1 != GRAM:
            return
        W10, S = self._layer1
        self.Ws[0][...] = W10 - (learning_rate / self.p.m) * (S @ self.X.T)

    def forward(self):
        self._go(OP_FORWARD)

    def backward_into(self, int loss, list dWs, list dbs):
        """dW_l = (dZ_l A_{l-1}^T)/m, db_l likewise, for the current forward."""
        cdef int l
        self.p.loss = loss
        for l in range(1, self.p.L + 1):
            self.p.dW[l] = _addr(dWs[l - 1])
            self.p.db[l] = _addr(dbs[l - 1])
        self._go(OP_BACKWARD)

    def cost(self, int loss):
        """J of the current forward (needs set_Y)."""
        self.p.loss = loss
        return self._go(OP_COST)

    def run(self, int loss, double learning_rate, Py_ssize_t count, bint last=False):
        """count x (backward + update + forward), all without the GIL."""
        self.p.loss = loss
        self._go(OP_RUN, learning_rate, count, last)

    def epochs(self, int loss, double learning_rate, orders, XT, YT):
        """Mini-batch epochs, all without the GIL: one per row of ``orders``
        (count, m) int64, each a permutation of the m examples, cut into
        batches of this plan's size (the size of its X, the last batch
        smaller). XT (m, n_0) and YT (m, n_L): the whole data, transposed
        (one example a row), C-contiguous."""
        cdef const int64_t[:, ::1] o = orders
        cdef Py_ssize_t ms = XT.shape[0]
        # Cheap checks that keep the kernels' reads in bounds whoever calls:
        # the plan's dtype and widths, and every index a row of XT.
        if XT.dtype != self.dtype or YT.dtype != self.dtype:
            raise TypeError(f"XT and YT must be {self.dtype}; got {XT.dtype} and {YT.dtype}")
        if (XT.ndim != 2 or YT.ndim != 2 or XT.shape[1] != self.p.n[0]
                or YT.shape != (ms, self.p.n[self.p.L]) or not XT.flags.c_contiguous
                or not YT.flags.c_contiguous):
            raise ValueError(f"XT and YT must be C-contiguous (m, {self.p.n[0]}) and "
                             f"(m, {self.p.n[self.p.L]}); got {XT.shape} and {YT.shape}")
        if o.shape[0] == 0:
            return
        if o.shape[1] != ms or np.min(orders) < 0 or np.max(orders) >= ms:
            raise ValueError(f"orders must be rows of {ms} indices into XT's rows")
        self.p.loss = loss
        self.p.Xsrc = _addr(XT)
        self.p.Ysrc = _addr(YT)
        self.p.m_src = XT.shape[0]
        self.p.batch = &o[0, 0]   # _epochs walks the rows from here
        try:
            self._go(OP_EPOCHS, learning_rate, o.shape[0], False)
        finally:
            self.p.Xsrc = self.p.Ysrc = NULL
            self.p.batch = NULL
