# The engine room's updates (see _engine.pxi): the T partial sums of each
# dW and db combined in thread order and turned into the mean or the step
# (_reduce); the step as a stage the team shares, each thread a line-aligned
# share of every W's and b's elements (_update_share, STAGE_UPDATE), or on
# one thread; the rule and numbers of update t (_update_at).

cdef void _reduce(const Net* net, int l, bint is_b,
                  double S,  # the mean's denominator: the pass's m, or its weights' sum
                  const Update* u,  # the update, or NULL: the mean
                  floating* out,  # OUT (n_l, n_{l-1}) or (n_l,): the mean, or the parameter stepped
                  ) noexcept nogil:
    """Combine the T partial sums of layer l's dW (or db) in thread order 0..T-1
    (into thread 0's buffer, which the next backward overwrites), then the
    mean (u NULL; 0 for S = 0) or the update (update_parameters, with the
    parameter's optimizer state): flat unit-stride loops, vectorized."""
    _reduce_range(net, l, is_b, S, u, out, 0, _size(net, l, is_b))


cdef inline Py_ssize_t _size(const Net* net, int l, bint is_b) noexcept nogil:
    return net.n[l] if is_b else net.n[l] * net.n[l - 1]


cdef void _reduce_range(const Net* net, int l, bint is_b, double S, const Update* u,
                        floating* out, Py_ssize_t e0, Py_ssize_t e1) noexcept nogil:
    """:func:`_reduce` of the elements e0:e1 only. Each element's sum, mean and
    update read and write that element alone, so any split of the elements
    gives the same bits as the whole."""
    cdef Py_ssize_t e
    cdef floating denom = <floating>S
    cdef int t
    cdef floating** part = <floating**>(net.dbp if is_b else net.dWp)
    cdef floating* s = part[l]
    cdef floating* other
    cdef floating* v = <floating*>(net.opt.vb if is_b else net.opt.vW)[l]
    cdef floating* sq = <floating*>(net.opt.sb if is_b else net.opt.sW)[l]
    for t in range(1, net.T):
        other = part[t * (net.L + 1) + l]
        for e in range(e0, e1):
            s[e] = s[e] + other[e]
    if u != NULL:
        update_parameters(u, e1 - e0, S, out + e0, s + e0, not is_b,
                          NULL if v == NULL else v + e0, NULL if sq == NULL else sq + e0)
    elif S > 0:
        for e in range(e0, e1):
            out[e] = s[e] / denom
    else:
        for e in range(e0, e1):
            out[e] = 0


cdef inline Py_ssize_t _share_start(Py_ssize_t size, int t, int T) noexcept nogil:
    """Where thread t's share of ``size`` parameters starts (t = T: the end):
    the even split rounded up to a multiple of 8 elements -- whole 64-byte
    lines of float64 in a line-aligned array (the optimizer state's copies
    are; numpy's W usually is), so two threads rarely write one line."""
    return min(size, (size * t // T + 7) // 8 * 8)


cdef void _update_share(const Net* net, const Layer1* l1, const Pass* ps, int t,
                        floating dtype) noexcept nogil:
    """Thread t's share of _update's sums and steps: the elements
    _share_start(t):_share_start(t + 1) of every W and b that the backward
    summed (not W1 outside DIRECT). Bitwise the serial update's results for
    any split (_reduce_range)."""
    cdef int l, T = net.T
    cdef Py_ssize_t size
    cdef bint is_b
    for l in range(1, net.L + 1):
        for is_b in range(2):
            if not is_b and l == 1 and l1.mode != DIRECT:
                continue
            size = _size(net, l, is_b)
            _reduce_range(net, l, is_b, ps.S, ps.u,
                          (<floating**>(net.b if is_b else net.W))[l],
                          _share_start(size, t, T), _share_start(size, t + 1, T))


cdef void _sum_parts(Py_ssize_t size, int T,
                     const floating* parts,  # IN T consecutive arrays of size
                     floating* acc,          # OUT (size,): their sum in order 0..T-1
                     ) noexcept nogil:
    cdef Py_ssize_t e
    cdef int t
    for e in range(size):
        acc[e] = parts[e]
    for t in range(1, T):
        for e in range(size):
            acc[e] = acc[e] + parts[t * size + e]


# A team splits the update's sums and steps (STAGE_UPDATE) from this many
# parameters on: below it the region costs more than the work it shares.
cdef enum:
    PARALLEL_UPDATE_MIN = 4096

#: From how many parameters (every W's and b's elements) a team of threads
#: shares the update's sums and steps (for tests and reports).
PARALLEL_UPDATE_PARAMETERS = PARALLEL_UPDATE_MIN


cdef Py_ssize_t _parameters(const Net* net) noexcept nogil:
    """Every W's and b's elements."""
    cdef Py_ssize_t total = 0
    cdef int l
    for l in range(1, net.L + 1):
        total += net.n[l] * (net.n[l - 1] + 1)
    return total


cdef void _update(const Net* net, const Layer1* l1, const Pass* ps, floating lr) noexcept nogil:
    """ps.u's update of every W, b (lr: its rate in the plan's dtype) from the
    partial sums of the last backward (IN);
    OUT every W, b stepped, layer 1 as its mode says (W1 and Zlin in ONEPASS,
    Zlin and S in GRAM)."""
    cdef int t
    cdef Py_ssize_t e, size = net.n[1] * ps.m
    cdef floating* acc
    cdef floating* dZ1
    if net.T > 1 and _parameters(net) >= PARALLEL_UPDATE_MIN:
        _parallel(net, l1, ps, STAGE_UPDATE, lr)
    else:  # one thread, or too few parameters to be worth an OpenMP region: every share here
        for t in range(net.T):
            _update_share(net, l1, ps, t, lr)
    if l1.mode == ONEPASS:
        _parallel(net, l1, ps, STAGE_ONEPASS, lr)
        if not ps.last:  # Zlin = the per-thread partials of W1 X, summed in thread order
            _sum_parts(size, net.T, <floating*>l1.Zpart, <floating*>l1.Zlin)
    elif l1.mode == GRAM:
        _parallel(net, l1, ps, STAGE_GRAM_UPDATE, lr)
        acc, dZ1 = <floating*>l1.S, (<floating**>net.dZ)[1]
        for e in range(size):
            acc[e] = acc[e] + dZ1[e]


cdef Update _update_at(const Net* net, double learning_rate0, Py_ssize_t i,
                       uint64_t t) noexcept nogil:
    """The rule and numbers of update t, in iteration (epoch) i."""
    cdef Update u
    u.kind, u.lambd = net.opt.kind, net.opt.lambd
    u.plain = u.kind == OPT_GD and u.lambd == 0
    u.lr = schedule_lr_decay(learning_rate0, i, net.opt.decay_rate, net.opt.time_interval)
    u.beta1, u.beta2, u.epsilon = net.opt.beta1, net.opt.beta2, net.opt.epsilon
    u.nesterov = net.opt.nesterov
    u.bc1 = u.bc2 = 1
    # Either Adam (two pow calls were 4 % of a batch of one's update)
    if u.kind == OPT_ADAM or u.kind == OPT_SKLEARN_ADAM:
        u.bc1 = 1 - pow(u.beta1, <double>t)  # as Python's beta ** t: C pow
        u.bc2 = 1 - pow(u.beta2, <double>t)
    return u
