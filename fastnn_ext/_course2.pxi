# The lecture page of the course's second part ("Improving Deep Neural
# Networks"): the optimizers' update rules (fastnn.optimizers: the course's
# four and scikit-learn's two), L2's gradient and cost terms and inverted
# dropout (fastnn.regularization), the learning-rate decay (fastnn.schedules)
# -- one home per formula. The engine room applies
# update_parameters where it has just summed a layer's dW (or db), so an
# update reads each parameter and its state once; dropout_forward right after
# g, dropout_backward in place of g' on a dropped-out layer.

cdef extern from "_dropout.h" nogil:
    uint64_t fastnn_mask_base(uint64_t key, uint64_t step, uint64_t layer)
    # D[c0:c1] OUT: the kept bits of positions first + c0 .. first + c1 - 1
    void fastnn_mask_row(uint64_t base, uint64_t first, uint64_t threshold, Py_ssize_t c0,
                         Py_ssize_t c1, unsigned char* D)
    uint64_t fastnn_splitmix64(uint64_t z)


cdef enum:
    OPT_GD = 0
    OPT_MOMENTUM = 1
    OPT_RMSPROP = 2
    OPT_ADAM = 3
    OPT_SKLEARN_SGD = 4
    OPT_SKLEARN_ADAM = 5

#: fastnn.optimizers' names -> the codes update_parameters switches on.
OPTIMIZER_CODES = {"gd": OPT_GD, "momentum": OPT_MOMENTUM, "rmsprop": OPT_RMSPROP,
                   "adam": OPT_ADAM, "sklearn_sgd": OPT_SKLEARN_SGD,
                   "sklearn_adam": OPT_SKLEARN_ADAM}


def splitmix64(uint64_t z):
    """The kernels' SplitMix64 (for the tests: bitwise fastnn.regularization's)."""
    return fastnn_splitmix64(z)


cdef struct Update:
    # One update's rule and numbers, in float64 (each kernel rounds them to its dtype).
    int kind              # OPT_*
    bint plain            # gradient descent without L2: the first course's W -= (lr/m) sum
    double lr             # the learning rate of this iteration (epoch)
    double lambd          # L2's lambda (0: none)
    double beta1          # Momentum's beta, Adam's beta1, SklearnSGD's momentum mu
    double beta2          # RMSprop's beta, Adam's beta2: the squared gradients' average
    double epsilon
    bint nesterov         # SklearnSGD: Nesterov's momentum
    double bc1, bc2       # either Adam at update t: 1 - beta1^t, 1 - beta2^t


cdef inline double schedule_lr_decay(double learning_rate0, Py_ssize_t i, double decay_rate,
                                     Py_ssize_t time_interval) noexcept nogil:
    """The learning rate iteration (epoch) i trains at (Schedule.learning_rate_at):
    lr0 for i = 0, then lr0 / (1 + decay_rate floor((i - 1) / time_interval))."""
    if decay_rate == 0 or i == 0:
        return learning_rate0
    return learning_rate0 / (1 + decay_rate * <double>((i - 1) // time_interval))


cdef inline floating exponential_average(floating average, floating value, floating beta,
                                         floating one_minus_beta) noexcept nogil:
    """beta average + (1 - beta) value (1 - beta rounded once, in float64)."""
    return beta * average + one_minus_beta * value


cdef inline floating rms_scaled(floating direction, floating s, floating epsilon) noexcept nogil:
    """direction / (sqrt(s) + epsilon): epsilon outside the root, as the course."""
    if floating is double:
        return direction / (sqrt(s) + epsilon)
    else:
        return direction / (sqrtf(s) + epsilon)


cdef void update_parameters(const Update* u, Py_ssize_t size,
                            double m,                  # the mean's denominator: the batch's
                                                       # size, or its weights' sum S (0: a
                                                       # weightless batch, no gradient)
                            floating* W,               # IN/OUT (size,): the parameter
                            const floating* grad_sum,  # IN (size,): m dW of the data term
                            bint regularized,          # L2 applies (a W, never a b)
                            floating* v,               # IN/OUT (size,) or NULL: Momentum's, Adam's
                            floating* s,               # IN/OUT (size,) or NULL: RMSprop's, Adam's
                            ) noexcept nogil:
    """One update of a parameter with its gradient dW = grad_sum / m (+ (lambd/m) W):
    gradient descent W -= lr dW, Momentum, RMSprop or Adam (fastnn.optimizers'
    table), or scikit-learn's SGD (v = mu v - lr dW; W += v, or with Nesterov
    W += mu v - lr dW) or Adam (the bias corrections in the rate: W -=
    lr sqrt(1 - beta2^t) / (1 - beta1^t) v / (sqrt(s) + epsilon)). Flat
    unit-stride loops, the rule chosen outside them (vectorized).
    The divisions by m and by Adam's bias corrections are multiplications by
    reciprocals taken once (an ulp from the NumPy page's quotients): a packed
    division costs several multiplications, and Adam's update is per
    parameter, per batch, whatever the batch's size -- rms_scaled's division
    and root are the only ones left. With m = 0 (weights summing to 0) every
    1/m is 0: the gradient, L2's term included, is 0, and the rule still
    steps (its averages decay, Adam's t counts)."""
    cdef Py_ssize_t e
    cdef floating lr = <floating>u.lr
    cdef floating step = lr / <floating>m if m > 0 else 0
    cdef floating inv_m = <floating>(1.0 / m) if m > 0 else 0
    cdef floating l2 = <floating>(u.lambd / m) if regularized and m > 0 else 0
    cdef floating b1 = <floating>u.beta1, c1 = <floating>(1 - u.beta1)
    cdef floating b2 = <floating>u.beta2, c2 = <floating>(1 - u.beta2)
    cdef floating eps = <floating>u.epsilon
    cdef floating inv_bc1 = <floating>(1 / u.bc1), inv_bc2 = <floating>(1 / u.bc2)
    cdef floating g, rate
    if u.plain:
        for e in range(size):
            W[e] = gradient_step(W[e], step, grad_sum[e])
    elif u.kind == OPT_GD:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            W[e] = W[e] - lr * g
    elif u.kind == OPT_MOMENTUM:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            v[e] = exponential_average(v[e], g, b1, c1)
            W[e] = W[e] - lr * v[e]
    elif u.kind == OPT_RMSPROP:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            s[e] = exponential_average(s[e], g * g, b2, c2)
            W[e] = W[e] - lr * rms_scaled(g, s[e], eps)
    elif u.kind == OPT_ADAM:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            v[e] = exponential_average(v[e], g, b1, c1)
            s[e] = exponential_average(s[e], g * g, b2, c2)
            W[e] = W[e] - lr * rms_scaled(v[e] * inv_bc1, s[e] * inv_bc2, eps)
    elif u.kind == OPT_SKLEARN_SGD and u.nesterov:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            v[e] = b1 * v[e] - lr * g
            W[e] = W[e] + (b1 * v[e] - lr * g)
    elif u.kind == OPT_SKLEARN_SGD:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            v[e] = b1 * v[e] - lr * g
            W[e] = W[e] + v[e]
    else:
        rate = <floating>(u.lr * sqrt(u.bc2) / u.bc1)
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            v[e] = exponential_average(v[e], g, b1, c1)
            s[e] = exponential_average(s[e], g * g, b2, c2)
            W[e] = W[e] - rate * rms_scaled(v[e], s[e], eps)


cdef double l2_cost_sum(int L, const Py_ssize_t* n,
                        floating** W,  # IN W[l] (n_l, n_{l-1}), l = 1..L
                        ) noexcept nogil:
    """sum_l ||W_l||_F^2 in float64: L2's cost term is lambd / (2m) times it
    (fastnn.regularization.l2_penalty). Eight running sums, added at the end:
    one sum would chain every addition to the last (4 cycles each, no SIMD) --
    with an epoch's losses on, it runs once per batch."""
    cdef double acc[8]
    cdef int l, k
    cdef Py_ssize_t e, size
    cdef const floating* w
    cdef double total = 0
    for k in range(8):
        acc[k] = 0
    for l in range(1, L + 1):
        w, size = W[l], n[l] * n[l - 1]
        for e in range(0, size - size % 8, 8):
            for k in range(8):
                acc[k] += <double>w[e + k] * w[e + k]
        for e in range(size - size % 8, size):
            total += <double>w[e] * w[e]
    for k in range(8):
        total += acc[k]
    return total


# -- inverted dropout ----------------------------------------------------------------------

cdef void dropout_forward(Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                          uint64_t base,       # the mask's base (fastnn_mask_base), if hashed
                          uint64_t threshold,  # mask_threshold(keep_prob), if hashed
                          bint hashed,         # D is computed here (else given)
                          floating keep_prob,
                          unsigned char* D,    # OUT (hashed) or IN (n, m): the 0/1 mask
                          floating* A,         # IN/OUT (n, m): g(Z) -> g(Z) D / keep_prob
                          ) noexcept nogil:
    """A = A D / keep_prob on the chunk's columns: shut the dropped units, scale the
    rest -- as the NumPy page computes it, and branch-free: a division under a
    condition stays scalar (gcc may not speculate it), A D / keep_prob is packed."""
    cdef Py_ssize_t j, i
    cdef unsigned char* d
    cdef floating* a
    for j in range(n):
        d = D + j * m
        a = A + j * m
        if hashed:
            fastnn_mask_row(base, <uint64_t>(j * m), threshold, c0, c1, d)
        for i in range(c0, c1):
            a[i] = a[i] * d[i] / keep_prob


cdef inline void dropout_backward(int code, int g0, floating keep_prob,
                                  const unsigned char* D,  # IN one row of the mask
                                  const floating* z,       # IN  the same row of Z
                                  const floating* a,       # IN  of A = g(Z) D / keep_prob
                                  floating* d,             # IN dA, OUT dZ
                                  Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """dZ = (dA D / keep_prob) g'(Z), with g' taken at g(Z): a kept unit's g(Z) is
    A keep_prob (to within an ulp; sigmoid and tanh read it), a dropped unit's
    dZ is 0 whatever g' is; ReLU's g' reads Z."""
    cdef Py_ssize_t i
    cdef floating v
    for i in range(c0, c1):
        d[i] = d[i] * D[i] / keep_prob  # as dropout_forward: branch-free, packed
    if code == SIGMOID:
        for i in range(c0, c1):
            v = a[i] * keep_prob
            d[i] = d[i] * (v * (1 - v))
    elif code == TANH:
        for i in range(c0, c1):
            v = a[i] * keep_prob
            d[i] = d[i] * (1 - v * v)
    else:
        activation_backward(code, g0, z, a, d, c0, c1)
