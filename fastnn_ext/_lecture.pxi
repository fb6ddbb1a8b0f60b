# The lecture page: one kernel per formula, named as on the course's slides.
#
# Every matrix is C-contiguous (n_l, m): examples along rows, so each loop
# here walks one row over the examples [c0, c1) of a column chunk -- unit
# stride with the activation switch hoisted out, which gcc vectorizes (exp and
# tanh through libmvec in the vectorized builds). The engine room
# (_engine.pxi) calls these for Network.forward/backward and for training
# alike; the products W A, dZ A^T and W^T dZ are in _products.pxi.


# -- forward: Z = W A_prev + b, A = g(Z) ----------------------------------------

cdef inline floating relu(floating v) noexcept nogil:
    return v if v > 0 else 0


cdef inline floating leaky_relu(floating v, floating slope) noexcept nogil:
    return v if v >= 0 else slope * v


cdef inline void activation_forward(int code,
                                    const floating* z,  # IN  one row of Z
                                    floating* a,        # OUT the same row of A = g(Z)
                                    Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating slope = <floating>LEAKY_SLOPE
    if code == SIGMOID:
        # 1/(1+e^-z): e^1000 = inf gives exactly 0, e^-1000 = 0 gives 1.
        for i in range(c0, c1):
            if floating is double:
                a[i] = 1.0 / (1.0 + exp(-z[i]))
            else:
                a[i] = 1.0 / (1.0 + expf(-z[i]))
    elif code == TANH:
        for i in range(c0, c1):
            if floating is double:
                a[i] = tanh(z[i])
            else:
                a[i] = tanhf(z[i])
    elif code == RELU:
        for i in range(c0, c1):
            a[i] = relu(z[i])
    elif code == LEAKY_RELU:
        for i in range(c0, c1):
            a[i] = leaky_relu(z[i], slope)
    elif code == EXP:
        # The Poisson loss's output (a rate, > 0): packed through libmvec, as sigmoid.
        for i in range(c0, c1):
            if floating is double:
                a[i] = exp(z[i])
            else:
                a[i] = expf(z[i])
    else:
        for i in range(c0, c1):
            a[i] = z[i]


cdef inline void activation_backward(int code, int g0,
                                     const floating* z,  # IN  one row of Z
                                     const floating* a,  # IN  the same row of A
                                     floating* d,        # IN dA, OUT dZ = dA * g'(Z)
                                     Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """g' from the stored activation where the lecture does: sigma' = a(1-a),
    tanh' = 1-a^2, exp' = a. g0 (relu_grad_at_zero) is g'(0) for ReLU and leaky ReLU:
    1, the slides' right-hand derivative, or 0, the left-hand one (0 for ReLU,
    the slope for leaky ReLU) -- one loop each, so the test stays a compare."""
    cdef Py_ssize_t i
    cdef floating v
    cdef floating slope = <floating>LEAKY_SLOPE
    if code == SIGMOID:
        for i in range(c0, c1):
            v = a[i]
            d[i] = d[i] * (v * (1 - v))
    elif code == TANH:
        for i in range(c0, c1):
            v = a[i]
            d[i] = d[i] * (1 - v * v)
    elif code == RELU and g0:
        for i in range(c0, c1):
            d[i] = d[i] if z[i] >= 0 else 0
    elif code == RELU:
        for i in range(c0, c1):
            d[i] = d[i] if z[i] > 0 else 0
    elif code == LEAKY_RELU and g0:
        for i in range(c0, c1):
            d[i] = d[i] if z[i] >= 0 else d[i] * slope
    elif code == LEAKY_RELU:
        for i in range(c0, c1):
            d[i] = d[i] if z[i] > 0 else d[i] * slope
    elif code == EXP:
        for i in range(c0, c1):
            d[i] = d[i] * a[i]


cdef void linear_activation_forward(int code, Py_ssize_t n, Py_ssize_t m,
                                    Py_ssize_t c0, Py_ssize_t c1,
                                    const floating* WA,  # IN (n, m): W A_prev (may alias Z)
                                    const floating* b,   # IN (n,)
                                    floating* Z,         # OUT (n, m): W A_prev + b
                                    floating* A,         # OUT (n, m): g(Z)
                                    ) noexcept nogil:
    """Z = W A_prev + b and A = g(Z) for the chunk's columns, one row at a time
    (ReLU and leaky ReLU in the bias's pass, the others in a second one while
    the row is in L1); softmax, which mixes the rows of a column, once Z is
    whole."""
    cdef Py_ssize_t j, i
    cdef floating bj, v
    cdef floating slope = <floating>LEAKY_SLOPE
    cdef const floating* s
    cdef floating* z
    cdef floating* a
    for j in range(n):
        bj = b[j]
        s = WA + j * m
        z = Z + j * m
        a = A + j * m
        # The piecewise-linear ones in the same pass as the bias.
        if code == RELU:
            for i in range(c0, c1):
                v = s[i] + bj
                z[i] = v
                a[i] = relu(v)
            continue
        if code == LEAKY_RELU:
            for i in range(c0, c1):
                v = s[i] + bj
                z[i] = v
                a[i] = leaky_relu(v, slope)
            continue
        for i in range(c0, c1):
            z[i] = s[i] + bj
        if code != SOFTMAX:
            activation_forward(code, z, a, c0, c1)
    if code == SOFTMAX:
        softmax_forward(n, m, c0, c1, Z, A)


# -- softmax: the output activation that is not element-wise -------------------------

# Columns per block: a column (one example) is strided by m, so the column
# maxima and sums of a block live on the stack and every pass is a unit-stride
# row pass over the block (vectorized exp), never a walk down a column.
cdef enum:
    SOFTMAX_BLOCK = 128


cdef void softmax_forward(Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                          const floating* Z,  # IN (n, m) logits
                          floating* A,        # OUT (n, m): each column e^{z - max} / sum
                          ) noexcept nogil:
    """a_k = e^{z_k - max_j z_j} / sum_j e^{z_j - max_j z_j} for each column of
    the chunk: subtracting the column's max keeps every e^. in (0, 1] and the
    sum >= 1, so nothing overflows (fastnn.activations.softmax)."""
    cdef floating top[SOFTMAX_BLOCK]
    cdef floating total[SOFTMAX_BLOCK]
    cdef Py_ssize_t j, i, k0, w
    cdef const floating* z
    cdef floating* a
    cdef floating v
    k0 = c0
    while k0 < c1:
        w = min(<Py_ssize_t>SOFTMAX_BLOCK, c1 - k0)
        z = Z + k0
        for i in range(w):
            top[i] = z[i]
            total[i] = 0
        for j in range(1, n):
            z = Z + j * m + k0
            for i in range(w):
                top[i] = z[i] if z[i] > top[i] else top[i]
        for j in range(n):
            z = Z + j * m + k0
            a = A + j * m + k0
            for i in range(w):
                if floating is double:
                    v = exp(z[i] - top[i])
                else:
                    v = expf(z[i] - top[i])
                a[i] = v
                total[i] += v
        for j in range(n):
            a = A + j * m + k0
            for i in range(w):
                a[i] = a[i] / total[i]
        k0 += w


# -- cost ----------------------------------------------------------------------------

cdef inline double mean_over(double total, double S) noexcept nogil:
    """total / S, S the examples' count or their weights' sum; 0 for a batch
    whose weights sum to 0 (its loss and gradient are 0: scikit-learn's would
    be NaN)."""
    return total / S if S > 0 else 0.0


cdef double weight_sum(const floating* w,  # IN (m,) the examples' weights
                       Py_ssize_t m) noexcept nogil:
    """S = sum_i w_i, in float64, serial in index order (whatever the threads):
    the denominator of a weighted mean."""
    cdef Py_ssize_t i
    cdef double s = 0
    for i in range(m):
        s += w[i]
    return s


cdef inline double poisson_at(double z, double y) noexcept nogil:
    """Half the Poisson deviance of rate a = e^z at y >= 0, y log(y/a) - y + a,
    from the logit: xlogy(y, y) - y z - y + e^z (0 log 0 = 0; no log(a))."""
    return (y * log(y) if y > 0 else 0.0) - y * z - y + exp(z)


cdef inline double loss_at(int loss, double z, double a, double y) noexcept nogil:
    """L of one output unit of an element-wise output, from its logit z where the
    loss allows (fastnn.losses.per_example)."""
    cdef double d
    if loss == CROSS_ENTROPY:   # softplus(z) - y z, never log(0)
        return (z if z > 0 else 0.0) + log1p(exp(-fabs(z))) - y * z
    if loss == POISSON:
        return poisson_at(z, y)
    d = a - y
    return 0.5 * d * d


cdef double compute_cost(int loss, int code, Py_ssize_t n, Py_ssize_t m,
                         const floating* Z,  # IN (n, m) logits
                         const floating* A,  # IN (n, m)
                         const floating* Y,  # IN (n, m)
                         const floating* w,  # IN (m,) the examples' weights, or NULL: all 1
                         double S,           # m, or the weights' sum
                         ) noexcept nogil:
    """J = (1/S) sum_i w_i L_i, L_i summed over the output units (J = (1/m)
    sum L unweighted), in float64, serial fixed order (only at recorded
    iterations, and per batch for epoch losses)."""
    cdef Py_ssize_t e, j, i
    cdef double s = 0
    if loss == CROSS_ENTROPY and code == SOFTMAX:
        return mean_over(softmax_cross_entropy_sum(n, m, Z, Y, w), S)
    if w == NULL:
        for e in range(n * m):
            s += loss_at(loss, Z[e], A[e], Y[e])
        return mean_over(s, S)
    for j in range(n):
        for i in range(m):
            e = j * m + i
            s += <double>w[i] * loss_at(loss, Z[e], A[e], Y[e])
    return mean_over(s, S)


cdef double softmax_cross_entropy_sum(Py_ssize_t n, Py_ssize_t m,
                                     const floating* Z,  # IN (n, m) logits
                                     const floating* Y,  # IN (n, m) one-hot
                                     const floating* wt,  # IN (m,) weights, or NULL: all 1
                                     ) noexcept nogil:
    """sum over the columns of (wt times) logsumexp(z) - sum_k y_k z_k, in float64, with
    logsumexp(z) = max + log sum_k e^{z_k - max}: finite for any finite logits
    (fastnn.losses.per_example), blocked over columns as softmax_forward."""
    cdef double top[SOFTMAX_BLOCK]
    cdef double total[SOFTMAX_BLOCK]
    cdef double yz[SOFTMAX_BLOCK]
    cdef Py_ssize_t j, i, k0, w
    cdef const floating* z
    cdef const floating* y
    cdef double s = 0
    k0 = 0
    while k0 < m:
        w = min(<Py_ssize_t>SOFTMAX_BLOCK, m - k0)
        for i in range(w):
            top[i] = Z[k0 + i]
            total[i] = 0
            yz[i] = 0
        for j in range(1, n):
            z = Z + j * m + k0
            for i in range(w):
                top[i] = z[i] if z[i] > top[i] else top[i]
        for j in range(n):
            z = Z + j * m + k0
            y = Y + j * m + k0
            for i in range(w):
                total[i] += exp(z[i] - top[i])
                yz[i] += <double>y[i] * z[i]
        if wt == NULL:
            for i in range(w):
                s += top[i] + log(total[i]) - yz[i]
        else:
            for i in range(w):
                s += <double>wt[k0 + i] * (top[i] + log(total[i]) - yz[i])
        k0 += w
    return s


# -- backward -------------------------------------------------------------------------

cdef void output_dZ(int loss, int code, int g0, Py_ssize_t n, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                    const floating* Z,  # IN (n, m): Z_L
                    const floating* A,  # IN (n, m): A_L
                    const floating* Y,  # IN (n, m)
                    const floating* w,  # IN (m,) the examples' weights, or NULL: all 1
                    floating* dZ,       # OUT (n, m): m dJ/dZ_L (the 1/m is applied to dW, db)
                    ) noexcept nogil:
    """dZ_L = A_L - Y, exact for cross-entropy (which pairs only with a sigmoid
    or softmax output) and for poisson (exp output: its canonical link); for
    mse, times g'(Z_L) (fastnn.losses.output_delta). Weighted: column i times
    w_i (the 1/S, S the weights' sum, is applied to dW, db)."""
    cdef Py_ssize_t j, i
    cdef floating* d
    cdef const floating* a
    cdef const floating* y
    for j in range(n):
        d = dZ + j * m
        a = A + j * m
        y = Y + j * m
        for i in range(c0, c1):
            d[i] = a[i] - y[i]
        if loss == MSE:
            activation_backward(code, g0, Z + j * m, a, d, c0, c1)
        if w != NULL:
            for i in range(c0, c1):
                d[i] = d[i] * w[i]


cdef void linear_backward(Py_ssize_t n, Py_ssize_t n_prev, Py_ssize_t m,
                          Py_ssize_t c0, Py_ssize_t c1,
                          const floating* W,       # IN (n, n_prev)
                          const floating* dZ,      # IN (n, m)
                          const floating* A_prev,  # IN (n_prev, m), or NULL: no dW
                          floating* dW,            # OUT (n, n_prev): sum over the chunk of dZ A_prev^T
                          floating* db,            # OUT (n,): sum over the chunk of dZ
                          floating* dA_prev,       # OUT (n_prev, m): W^T dZ, or NULL: not needed
                          ) noexcept nogil:
    """dW = dZ A_prev^T, db = sum dZ and dA_prev = W^T dZ over the chunk's
    examples; the engine room sums the chunks and divides by m (weighted: by
    S, the weights' sum -- output_dZ has scaled dZ_L's columns)."""
    if A_prev != NULL:
        product(NT, n, n_prev, m, c0, c1, 1, dZ, A_prev, 0, dW)
    row_sums(n, m, dZ, c0, c1, db)
    if dA_prev != NULL:
        product(TN, n, n_prev, m, c0, c1, 1, W, dZ, 0, dA_prev)


# -- update ------------------------------------------------------------------------------

cdef inline floating gradient_step(floating w, floating step, floating grad_sum) noexcept nogil:
    """W := W - learning_rate * dW, with dW = grad_sum / m and step =
    learning_rate / m computed once per update: a division per parameter
    (vdivpd, ~5 cycles per vector) was a third of a batch-size-1 update."""
    return w - step * grad_sum
