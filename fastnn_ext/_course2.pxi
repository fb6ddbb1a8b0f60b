# The lecture page of the course's second part ("Improving Deep Neural
# Networks"): the optimizers' update rules (fastnn.optimizers: the course's
# four and scikit-learn's two), L2's gradient and cost terms and inverted
# dropout (fastnn.regularization), the learning-rate decay (fastnn.schedules)
# -- one home per formula. The engine room applies
# update_parameters where it has just summed a layer's dW (or db), and a batch
# of one update_rank1 as it forms dz a_prev^T, so an update reads each
# parameter and its state once; dropout_forward right after g,
# dropout_backward in place of g' on a dropped-out layer.

from libc.float cimport FLT_MIN, DBL_MIN
from libc.math cimport NAN, fabsf, ldexp, isfinite

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


cdef inline floating rms_step(floating w, floating rate, floating direction, floating s,
                              floating epsilon, floating w_min) noexcept nogil:
    """w - rate rms_scaled(direction, s, epsilon), bit for bit, with a subnormal
    direction taken as 0 where |w| >= w_min (rms_w_min): there the step is
    under an eighth of w's ulp, so w comes out unchanged either way. Adam's
    first moment decays to subnormals (beta1^t) on a feature seen once in a
    while -- in float32, a few % of a net's v at a batch of one -- and a packed
    division with a subnormal dividend takes 2-3 times as long on Zen 4; the
    select runs beside the root (it reads neither s nor the quotient)."""
    cdef bint tiny
    if floating is double:
        tiny = fabs(direction) < DBL_MIN and fabs(w) >= w_min
    else:
        tiny = fabsf(direction) < FLT_MIN and fabsf(w) >= w_min
    return w - rate * rms_scaled(<floating>0 if tiny else direction, s, epsilon)


cdef inline floating rms_w_min(floating rate, floating epsilon) noexcept nogil:
    """The |w| from which rms_step may skip a subnormal direction d: |d| < 2^emin
    (the dtype's smallest normal) and sqrt(s) + epsilon >= epsilon > 0 bound the
    step, |rate d / (sqrt(s) + epsilon)| < |rate| 2^emin / epsilon, and w's ulp
    exceeds |w| 2^-p (p: the significand's bits), so the step is under ulp(w)/8
    from |w| >= (|rate| / epsilon) 2^(emin + p + 3) -- taken 2^-20 larger (the
    roundings of this bound), and at least 2^(emin + 60) (where the bound
    underflows, |rate| / epsilon < 2^-108 in float64, the step is under
    2^(emin - 108), far below that floor's ulp; |rate| scaled first would
    underflow from 2^-109 on, at any epsilon). NaN (never) for a non-finite
    bound (epsilon rounded to 0 in float32)."""
    cdef double bound = <double>fabs(rate) / <double>epsilon
    if floating is double:
        bound = ldexp(bound, -1022 + 53 + 3)
    else:
        bound = ldexp(bound, -126 + 24 + 3)
    if not isfinite(bound):
        return <floating>NAN
    bound = max(bound * (1 + ldexp(1, -20)), ldexp(1, (-1022 if floating is double else -126) + 60))
    return <floating>bound


# The rules at one parameter W[e] with its gradient g (state v, s as the rule
# has): the loops of update_parameters and update_rank1 form g their ways and
# step with these (inlined: the loops stay packed).

cdef inline void momentum_at(Py_ssize_t e, floating g, floating lr, floating beta,
                             floating one_minus_beta, floating* W, floating* v) noexcept nogil:
    v[e] = exponential_average(v[e], g, beta, one_minus_beta)
    W[e] = W[e] - lr * v[e]


cdef inline void rmsprop_at(Py_ssize_t e, floating g, floating lr, floating beta,
                            floating one_minus_beta, floating epsilon, floating w_min,
                            floating* W, floating* s) noexcept nogil:
    s[e] = exponential_average(s[e], g * g, beta, one_minus_beta)
    W[e] = rms_step(W[e], lr, g, s[e], epsilon, w_min)


cdef inline void adam_at(Py_ssize_t e, floating g, floating lr, floating b1, floating c1,
                         floating b2, floating c2, floating inv_bc1, floating inv_bc2,
                         floating epsilon, floating w_min, floating* W, floating* v,
                         floating* s) noexcept nogil:
    """The bias corrections 1 / (1 - beta^t) as multiplications (inv_bc1, inv_bc2)."""
    v[e] = exponential_average(v[e], g, b1, c1)
    s[e] = exponential_average(s[e], g * g, b2, c2)
    W[e] = rms_step(W[e], lr, v[e] * inv_bc1, s[e] * inv_bc2, epsilon, w_min)


cdef inline void sklearn_sgd_at(Py_ssize_t e, floating g, floating lr, floating mu,
                                bint nesterov, floating* W, floating* v) noexcept nogil:
    """v = mu v - lr g; W += v, or with Nesterov W += mu v - lr g (nesterov: a
    constant at each call, so the branch folds away)."""
    v[e] = mu * v[e] - lr * g
    if nesterov:
        W[e] = W[e] + (mu * v[e] - lr * g)
    else:
        W[e] = W[e] + v[e]


cdef inline void sklearn_adam_at(Py_ssize_t e, floating g, floating rate, floating b1,
                                 floating c1, floating b2, floating c2, floating epsilon,
                                 floating w_min, floating* W, floating* v,
                                 floating* s) noexcept nogil:
    """The bias corrections in the rate: lr sqrt(1 - beta2^t) / (1 - beta1^t)."""
    v[e] = exponential_average(v[e], g, b1, c1)
    s[e] = exponential_average(s[e], g * g, b2, c2)
    W[e] = rms_step(W[e], rate, v[e], s[e], epsilon, w_min)


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
    table), or scikit-learn's SGD or Adam (the *_at rules above). Flat
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
    cdef floating g, rate, w_min
    if u.plain:
        for e in range(size):
            W[e] = gradient_step(W[e], step, grad_sum[e])
    elif u.kind == OPT_GD:
        for e in range(size):
            g = grad_sum[e] * inv_m + l2 * W[e]
            W[e] = W[e] - lr * g
    elif u.kind == OPT_MOMENTUM:
        for e in range(size):
            momentum_at(e, grad_sum[e] * inv_m + l2 * W[e], lr, b1, c1, W, v)
    elif u.kind == OPT_RMSPROP:
        w_min = rms_w_min(lr, eps)
        for e in range(size):
            rmsprop_at(e, grad_sum[e] * inv_m + l2 * W[e], lr, b2, c2, eps, w_min, W, s)
    elif u.kind == OPT_ADAM:
        w_min = rms_w_min(lr, eps)
        for e in range(size):
            adam_at(e, grad_sum[e] * inv_m + l2 * W[e], lr, b1, c1, b2, c2, inv_bc1, inv_bc2,
                    eps, w_min, W, v, s)
    elif u.kind == OPT_SKLEARN_SGD and u.nesterov:
        for e in range(size):
            sklearn_sgd_at(e, grad_sum[e] * inv_m + l2 * W[e], lr, b1, True, W, v)
    elif u.kind == OPT_SKLEARN_SGD:
        for e in range(size):
            sklearn_sgd_at(e, grad_sum[e] * inv_m + l2 * W[e], lr, b1, False, W, v)
    else:
        rate = <floating>(u.lr * sqrt(u.bc2) / u.bc1)
        w_min = rms_w_min(rate, eps)
        for e in range(size):
            sklearn_adam_at(e, grad_sum[e] * inv_m + l2 * W[e], rate, b1, c1, b2, c2, eps,
                            w_min, W, v, s)


cdef void update_rank1(const Update* u, Py_ssize_t n, Py_ssize_t n_prev,
                       floating* W,              # IN/OUT (n, n_prev): the parameter
                       const floating* dz,       # IN (n,)
                       const floating* a_prev,   # IN (n_prev,): dW = dz a_prev^T
                       floating* v,              # IN/OUT (n, n_prev) or NULL: Momentum's, Adam's
                       floating* s,              # IN/OUT (n, n_prev) or NULL: RMSprop's, Adam's
                       ) noexcept nogil:
    """update_parameters' rule (not plain) for a W at a batch of one (m = 1, so
    dW + lambd W is the gradient): each element of dW = dz a_prev^T formed
    where W[j, k] and its state are stepped -- W, v, s read and written once,
    no dW to store and read back, the rule's numbers taken once per call.
    The gradient is lambd W + (dz_j a_prev_k): the product rounded, then
    added to lambd W in one fused multiply-add where the target has one --
    update_parameters' order once a constant m = 1 lets the compiler fold
    1/m away, which a batch of one's earlier builds had: the same bits."""
    cdef Py_ssize_t j, k, e
    cdef floating lr = <floating>u.lr
    cdef floating l2 = <floating>u.lambd
    cdef floating b1 = <floating>u.beta1, c1 = <floating>(1 - u.beta1)
    cdef floating b2 = <floating>u.beta2, c2 = <floating>(1 - u.beta2)
    cdef floating eps = <floating>u.epsilon
    cdef floating inv_bc1 = <floating>(1 / u.bc1), inv_bc2 = <floating>(1 / u.bc2)
    cdef floating d, g, rate, w_min
    # Every branch: for each row j, e = j n_prev + k runs over the row, g =
    # l2 W[e] + d a_prev[k] with d = dz[j] (l2 W first: the one contracted).
    if u.kind == OPT_GD:
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                g = l2 * W[e] + d * a_prev[k]
                W[e] = W[e] - lr * g
    elif u.kind == OPT_MOMENTUM:
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                momentum_at(e, l2 * W[e] + d * a_prev[k], lr, b1, c1, W, v)
    elif u.kind == OPT_RMSPROP:
        w_min = rms_w_min(lr, eps)
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                rmsprop_at(e, l2 * W[e] + d * a_prev[k], lr, b2, c2, eps, w_min, W, s)
    elif u.kind == OPT_ADAM:
        w_min = rms_w_min(lr, eps)
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                adam_at(e, l2 * W[e] + d * a_prev[k], lr, b1, c1, b2, c2, inv_bc1, inv_bc2,
                        eps, w_min, W, v, s)
    elif u.kind == OPT_SKLEARN_SGD and u.nesterov:
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                sklearn_sgd_at(e, l2 * W[e] + d * a_prev[k], lr, b1, True, W, v)
    elif u.kind == OPT_SKLEARN_SGD:
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                sklearn_sgd_at(e, l2 * W[e] + d * a_prev[k], lr, b1, False, W, v)
    else:
        rate = <floating>(u.lr * sqrt(u.bc2) / u.bc1)
        w_min = rms_w_min(rate, eps)
        for j in range(n):
            d = dz[j]
            for k in range(n_prev):
                e = j * n_prev + k
                sklearn_adam_at(e, l2 * W[e] + d * a_prev[k], rate, b1, c1, b2, c2, eps,
                                w_min, W, v, s)


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
                          Py_ssize_t m_all,    # the hash's row length (m, or a blocked batch's)
                          Py_ssize_t col0,     # the hash's column of column 0 (0, or a block's)
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
            fastnn_mask_row(base, <uint64_t>(j * m_all + col0), threshold, c0, c1, d)
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
