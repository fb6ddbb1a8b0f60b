"""The ``numba`` backend's engine room: the compiled training loop and the fused first layer.

Design
------
* :func:`train_chunk` runs gradient descent exactly as the lecture, every
  formula through the page (:mod:`._numba_layers`): ``linear_forward``,
  ``cost``, ``output_dZ``, ``linear_backward``, ``dZ_prev``, ``update``.
* :func:`train_epochs` runs mini-batch epochs the same way, whole epochs
  compiled: each batch's columns are gathered into one contiguous buffer and
  trained through the same page kernels with no allocation per batch (the
  fused first layer is a full-batch device: it saves a pass over a big X).
* The one exception is layer 1 when its input is big and its units few
  (logistic regression, the deep net's 12288 -> 20): its backward, update and
  the *next* iteration's ``W1 X`` share one pass over X (:func:`first_layer_pass`),
  so X is read once per iteration instead of twice. Row blocks of X stay in L1
  while dW1 = dZ1 X^T / m, the update and Z1 += W1 X use them; the tests hold it
  to ``linear_backward`` + ``update`` + ``linear_forward``.
* With T threads each thread owns a fixed range of X's rows; the per-thread
  partial products are added in thread order, so results are bitwise
  reproducible for a given T.
* Parameters and activations travel as flat buffers with offsets, not lists
  of arrays: a typed-list lookup costs ~40 ns, a third of a planar iteration.
"""

import numpy as np
from numba import njit, prange

from ._numba_config import BLAS_MIN_MACS, FUSED_MAX_UNITS, PARALLEL_OPTS, SERIAL_OPTS
from ._numba_layers import (
    SOFTMAX,
    activation_backward,
    activation_forward,
    bias_activation,
    bias_gradient,
    cost,
    dZ_prev,
    linear_backward,
    linear_forward,
    output_dZ,
    softmax,
    update,
)

# ------------------------------------------------------- the fused first layer


@njit(**SERIAL_OPTS)
def _tile_4x4(W, dZ, Z, x0, x1, x2, x3, i, k, c, learn):
    """Units i..i+3 x inputs k..k+3 (rows x0..x3 of X): W -= c dZ X^T, then Z += W X.

    16 dot products in one sweep over the examples keep 16 SIMD accumulators in
    registers and load each vector of dZ and X once for 4 FMAs.
    """
    d0, d1, d2, d3 = dZ[i], dZ[i + 1], dZ[i + 2], dZ[i + 3]
    w00, w01, w02, w03 = W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3]
    w10, w11, w12, w13 = W[i + 1, k], W[i + 1, k + 1], W[i + 1, k + 2], W[i + 1, k + 3]
    w20, w21, w22, w23 = W[i + 2, k], W[i + 2, k + 1], W[i + 2, k + 2], W[i + 2, k + 3]
    w30, w31, w32, w33 = W[i + 3, k], W[i + 3, k + 1], W[i + 3, k + 2], W[i + 3, k + 3]
    if learn:
        zero = dZ.dtype.type(0)  # float32 sums stay float32: twice the SIMD lanes
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
        s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
        for j in range(d0.shape[0]):
            a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
            e0, e1, e2, e3 = d0[j], d1[j], d2[j], d3[j]
            s00, s01, s02, s03 = s00 + e0 * a0, s01 + e0 * a1, s02 + e0 * a2, s03 + e0 * a3
            s10, s11, s12, s13 = s10 + e1 * a0, s11 + e1 * a1, s12 + e1 * a2, s13 + e1 * a3
            s20, s21, s22, s23 = s20 + e2 * a0, s21 + e2 * a1, s22 + e2 * a2, s23 + e2 * a3
            s30, s31, s32, s33 = s30 + e3 * a0, s31 + e3 * a1, s32 + e3 * a2, s33 + e3 * a3
        w00, w01, w02, w03 = w00 - c * s00, w01 - c * s01, w02 - c * s02, w03 - c * s03
        w10, w11, w12, w13 = w10 - c * s10, w11 - c * s11, w12 - c * s12, w13 - c * s13
        w20, w21, w22, w23 = w20 - c * s20, w21 - c * s21, w22 - c * s22, w23 - c * s23
        w30, w31, w32, w33 = w30 - c * s30, w31 - c * s31, w32 - c * s32, w33 - c * s33
        W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3] = w00, w01, w02, w03
        W[i + 1, k], W[i + 1, k + 1], W[i + 1, k + 2], W[i + 1, k + 3] = w10, w11, w12, w13
        W[i + 2, k], W[i + 2, k + 1], W[i + 2, k + 2], W[i + 2, k + 3] = w20, w21, w22, w23
        W[i + 3, k], W[i + 3, k + 1], W[i + 3, k + 2], W[i + 3, k + 3] = w30, w31, w32, w33
    z0, z1, z2, z3 = Z[i], Z[i + 1], Z[i + 2], Z[i + 3]
    for j in range(d0.shape[0]):
        a0, a1, a2, a3 = x0[j], x1[j], x2[j], x3[j]
        z0[j] += w00 * a0 + w01 * a1 + w02 * a2 + w03 * a3
        z1[j] += w10 * a0 + w11 * a1 + w12 * a2 + w13 * a3
        z2[j] += w20 * a0 + w21 * a1 + w22 * a2 + w23 * a3
        z3[j] += w30 * a0 + w31 * a1 + w32 * a2 + w33 * a3


@njit(**SERIAL_OPTS)
def _tile_1x4(W, dZ, Z, x0, x1, x2, x3, i, k, scale, learn):
    """One unit x 4 inputs: the remainder of _tile_4x4 (and all of logistic regression)."""
    d = dZ[i]
    w0, w1, w2, w3 = W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3]
    if learn:
        s0 = s1 = s2 = s3 = dZ.dtype.type(0)
        for j in range(d.shape[0]):
            e = d[j]
            s0 += e * x0[j]
            s1 += e * x1[j]
            s2 += e * x2[j]
            s3 += e * x3[j]
        w0, w1, w2, w3 = w0 - scale * s0, w1 - scale * s1, w2 - scale * s2, w3 - scale * s3
        W[i, k], W[i, k + 1], W[i, k + 2], W[i, k + 3] = w0, w1, w2, w3
    z = Z[i]
    for j in range(d.shape[0]):
        z[j] += w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j]


@njit(**SERIAL_OPTS)
def _tile_1x1(W, dZ, Z, x0, i, k, scale, learn):
    """One unit x one input: the last rows of X when their count is not a multiple of 4."""
    d = dZ[i]
    w0 = W[i, k]
    if learn:
        s0 = dZ.dtype.type(0)
        for j in range(d.shape[0]):
            s0 += d[j] * x0[j]
        w0 -= scale * s0
        W[i, k] = w0
    z = Z[i]
    for j in range(d.shape[0]):
        z[j] += w0 * x0[j]


@njit(**SERIAL_OPTS)
def first_layer_block(W, dZ, X, Z, k0, k1, scale, learn):
    """For X's rows k0..k1: ``W[:, k] -= scale * dZ X[k]^T`` (if learn), then
    ``Z = W[:, k0:k1] X[k0:k1]`` (overwritten).

    Each group of 4 rows of X serves the gradient, the update and the next
    forward while it sits in L1: one pass over X.
    """
    n = dZ.shape[0]
    Z[:] = 0.0
    k = k0
    while k + 4 <= k1:
        x0, x1, x2, x3 = X[k], X[k + 1], X[k + 2], X[k + 3]
        i = 0
        while i + 4 <= n:
            _tile_4x4(W, dZ, Z, x0, x1, x2, x3, i, k, scale, learn)
            i += 4
        while i < n:
            _tile_1x4(W, dZ, Z, x0, x1, x2, x3, i, k, scale, learn)
            i += 1
        k += 4
    while k < k1:
        for i in range(n):
            _tile_1x1(W, dZ, Z, X[k], i, k, scale, learn)
        k += 1


@njit(**PARALLEL_OPTS)
def first_layer_pass(W, dZ, X, Z, Z_parts, scale, learn):
    """``W -= scale * dZ X^T`` (if learn), then ``Z = W X``, in one pass over X.

    With T = Z_parts.shape[0] > 1 threads, thread t owns rows [k_t, k_t+1) of X
    and writes its partial W X into Z_parts[t]; the partials are then added in
    thread order, so the result depends only on T.
    """
    T = Z_parts.shape[0]
    n0 = X.shape[0]
    if T == 1:
        first_layer_block(W, dZ, X, Z, 0, n0, scale, learn)
        return
    for t in prange(T):
        first_layer_block(W, dZ, X, Z_parts[t], (n0 * t) // T, (n0 * (t + 1)) // T, scale, learn)
    Z[:] = Z_parts[0]
    for t in range(1, T):
        Z += Z_parts[t]


@njit(**SERIAL_OPTS)
def fused_first_layer(n1, n0, m):
    """Whether layer 1 trains with :func:`first_layer_pass` (else ``linear_*`` kernels)."""
    return n1 <= FUSED_MAX_UNITS or n1 * n0 * m < BLAS_MIN_MACS


# ------------------------------------------------------------ the training loop


@njit(**SERIAL_OPTS)
def _view(flat, offset, rows, cols):
    """A (rows, cols) C-contiguous view into a flat buffer (no copy, no call)."""
    return flat[offset:offset + rows * cols].reshape((rows, cols))


@njit(**SERIAL_OPTS)
def _offsets(dims):
    """Where layer l's W starts in W_flat (w_off[l]) and its units in b_flat,
    and in Z/A/dZ flats in units of m columns (n_off[l])."""
    L = dims.shape[0] - 1
    w_off = np.zeros(L + 1, np.int64)
    n_off = np.zeros(L + 1, np.int64)
    for l in range(L):
        w_off[l + 1] = w_off[l] + dims[l + 1] * dims[l]
        n_off[l + 1] = n_off[l] + dims[l + 1]
    return w_off, n_off


@njit(**SERIAL_OPTS)
def _recorded(i, cost_every, num_iterations):
    """:func:`fastnn.backends._base.recorded`: every cost_every-th, and the last."""
    return i % cost_every == 0 or i == num_iterations - 1


@njit(**SERIAL_OPTS)
def forward_layers(W_flat, b_flat, dims, w_off, n_off, codes, X, Z_flat, A_flat, work, first):
    """Layers ``first`` .. L-1 (0-based) of the forward pass over X's m columns;
    layer l's Z and A go to the (dims[l+1], m) blocks of Z_flat/A_flat."""
    L = dims.shape[0] - 1
    m = X.shape[1]
    for l in range(first, L):
        n, n_prev = dims[l + 1], dims[l]
        A_prev = X if l == 0 else _view(A_flat, n_off[l - 1] * m, n_prev, m)
        linear_forward(_view(W_flat, w_off[l], n, n_prev), _view(b_flat, n_off[l], n, 1),
                       A_prev, _view(Z_flat, n_off[l] * m, n, m),
                       _view(A_flat, n_off[l] * m, n, m), codes[l], work)


@njit(**SERIAL_OPTS)
def output_cost(dims, n_off, codes, loss, Y, Z_flat, A_flat):
    """The cost of the forward pass in Z_flat/A_flat."""
    L = dims.shape[0] - 1
    m = Y.shape[1]
    off = n_off[L - 1] * m
    return cost(_view(A_flat, off, dims[L], m), _view(Z_flat, off, dims[L], m), Y, loss,
                codes[L - 1])


@njit(**SERIAL_OPTS)
def backward_update(W_flat, b_flat, dims, w_off, n_off, codes, loss, g0, X, Y, learning_rate,
                    Z_flat, A_flat, dZ_flat, dW_flat, db_flat, last):
    """Backward and update of layers L-1 .. ``last`` (0-based) after a forward
    pass over X's m columns; returns dZ of layer ``last`` (computed before its
    update). ``last`` = 0: every layer; 1: layer 1 is left to the fused pass."""
    L = dims.shape[0] - 1
    m = X.shape[1]
    dZ = _view(dZ_flat, n_off[L - 1] * m, dims[L], m)
    output_dZ(_view(A_flat, n_off[L - 1] * m, dims[L], m), Y,
              _view(Z_flat, n_off[L - 1] * m, dims[L], m), codes[L - 1], loss, g0, dZ)
    for l in range(L - 1, last - 1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W, b = _view(W_flat, w_off[l], n, n_prev), _view(b_flat, n_off[l], n, 1)
        dW, db = _view(dW_flat, w_off[l], n, n_prev), _view(db_flat, n_off[l], n, 1)
        A_prev = X if l == 0 else _view(A_flat, n_off[l - 1] * m, n_prev, m)
        linear_backward(dZ, A_prev, dW, db)
        if l > 0:
            dZ_below = _view(dZ_flat, n_off[l - 1] * m, n_prev, m)
            dZ_prev(W, dZ, _view(Z_flat, n_off[l - 1] * m, n_prev, m), A_prev, codes[l - 1], g0,
                    dZ_below)  # before W's update
        update(W, dW, learning_rate)
        update(b, db, learning_rate)
        if l > 0:
            dZ = dZ_below
    return dZ


@njit(**SERIAL_OPTS)
def train_chunk(W_flat, b_flat, dims, codes, loss, g0, X, Y, learning_rate, i0, i1,
                num_iterations, cost_every, forward_done, Z_parts, Z_flat, A_flat, dZ_flat,
                dW_flat, db_flat, work, costs):
    """Full-batch gradient descent for iterations i0 .. i1-1, updating W_flat, b_flat in place.

    Layer l's W is ``W_flat``'s next dims[l+1]*dims[l] values, its b the next
    dims[l+1] of ``b_flat``; Z, A, dZ of layer l are (dims[l+1], m) blocks of
    their flat buffers, dW and db blocks of ``dW_flat``/``db_flat``; work (2, m)
    is softmax's scratch; g0 ReLU's g'(0).

    If ``i1 < num_iterations`` the forward pass (and cost) of iteration i1 is
    computed too, without its update, so the caller can report that cost
    before any parameter changes and the next chunk, called with
    ``forward_done``, starts from it: a run split into chunks is bitwise the
    unsplit run. When layer 1 is fused, layer 1's Z block holds W1 X (without
    b1) on entry of a chunk without ``forward_done``. The costs of the recorded
    iterations (:func:`_recorded`) go to ``costs[0], costs[1], ...`` in order.
    """
    m = X.shape[1]
    n1, n0 = dims[1], dims[0]
    W1, b1 = _view(W_flat, 0, n1, n0), _view(b_flat, 0, n1, 1)
    Z1, A1 = _view(Z_flat, 0, n1, m), _view(A_flat, 0, n1, m)
    fused = fused_first_layer(n1, n0, m)
    scale = X.dtype.type(learning_rate / m)  # keeps float32 kernels float32
    w_off, n_off = _offsets(dims)
    r = 0
    for it in range(i0, min(i1 + 1, num_iterations)):
        if not (forward_done and it == i0):
            if fused:  # Z1 holds W1 X from the last pass over X
                bias_activation(codes[0], b1, Z1, A1, work)
                forward_layers(W_flat, b_flat, dims, w_off, n_off, codes, X, Z_flat, A_flat,
                               work, 1)
            else:
                forward_layers(W_flat, b_flat, dims, w_off, n_off, codes, X, Z_flat, A_flat,
                               work, 0)
            if _recorded(it, cost_every, num_iterations):
                costs[r] = output_cost(dims, n_off, codes, loss, Y, Z_flat, A_flat)
                r += 1
            if it == i1:
                break
        dZ1 = backward_update(W_flat, b_flat, dims, w_off, n_off, codes, loss, g0, X, Y,
                              learning_rate, Z_flat, A_flat, dZ_flat, dW_flat, db_flat,
                              1 if fused else 0)
        if fused:  # dW1, W1's update and the next W1 X in one pass over X
            db1 = _view(db_flat, 0, n1, 1)
            bias_gradient(dZ1, db1)
            first_layer_pass(W1, dZ1, X, Z1, Z_parts, scale, True)
            update(b1, db1, learning_rate)


# ------------------------------------------------------------ mini-batches


@njit(**SERIAL_OPTS)
def gather_columns(X, order, k, out):
    """``out[:, c] = X[:, order[k + c]]``: one mini-batch's examples, contiguous."""
    n, mb = out.shape
    for r in range(n):
        x, o = X[r], out[r]
        for c in range(mb):
            o[c] = x[order[k + c]]


@njit(**SERIAL_OPTS)
def step_one(W_flat, b_flat, dims, w_off, n_off, codes, loss, g0, x, y, learning_rate, z_flat,
             a_flat, dz_flat, work):
    """One example (x (n0,), y (nL,)): forward, backward and update, fused.

    A batch of one is matrix-vector work, where the general path's fixed costs
    (a BLAS call and array views per product, a dW buffer written and read
    back) are most of an update. Here layer l's z, a and dz are (n_l,) vectors
    at n_off[l] of the flats; W -= lr dz a_prev^T is a rank-1 update, W read
    and written once, after dA_prev = W^T dz has used the old W.
    """
    L = dims.shape[0] - 1
    for l in range(L):
        n, n_prev = dims[l + 1], dims[l]
        W = _view(W_flat, w_off[l], n, n_prev)
        a_prev = x if l == 0 else a_flat[n_off[l - 1]:n_off[l - 1] + n_prev]
        z = z_flat[n_off[l]:n_off[l] + n]
        for i in range(n):
            row = W[i]
            s = b_flat[n_off[l] + i]
            for k in range(n_prev):
                s += row[k] * a_prev[k]
            z[i] = s
        if codes[l] == SOFTMAX:
            softmax(_view(z_flat, n_off[l], n, 1), _view(a_flat, n_off[l], n, 1), work)
        else:  # units as the row: element-wise, the bias already in
            activation_forward(codes[l], z.dtype.type(0), z, a_flat[n_off[l]:n_off[l] + n])
    nL = dims[L]
    dz = dz_flat[n_off[L - 1]:n_off[L - 1] + nL]
    output_dZ(_view(a_flat, n_off[L - 1], nL, 1), y.reshape((nL, 1)),
              _view(z_flat, n_off[L - 1], nL, 1), codes[L - 1], loss, g0,
              _view(dz_flat, n_off[L - 1], nL, 1))
    for l in range(L - 1, -1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W = _view(W_flat, w_off[l], n, n_prev)
        a_prev = x if l == 0 else a_flat[n_off[l - 1]:n_off[l - 1] + n_prev]
        dz = dz_flat[n_off[l]:n_off[l] + n]
        if l > 0:
            da = dz_flat[n_off[l - 1]:n_off[l - 1] + n_prev]
            da[:] = 0
            for i in range(n):
                row, d = W[i], dz[i]
                for k in range(n_prev):
                    da[k] += d * row[k]
            activation_backward(codes[l - 1], da, z_flat[n_off[l - 1]:n_off[l - 1] + n_prev],
                                a_prev, g0)
        for i in range(n):
            s = learning_rate * dz[i]
            b_flat[n_off[l] + i] -= s
            row = W[i]
            for k in range(n_prev):
                row[k] -= s * a_prev[k]


@njit(**SERIAL_OPTS)
def train_epochs(W_flat, b_flat, dims, codes, loss, g0, X, Y, learning_rate, orders, batch_size,
                 i0, i1, num_iterations, cost_every, cost_done, Xb_flat, Yb_flat, Z_flat,
                 A_flat, dZ_flat, dW_flat, db_flat, Zc_flat, Ac_flat, work, costs):
    """Mini-batch gradient descent for epochs i0 .. i1-1, updating W_flat, b_flat in place.

    Epoch i's example order is ``orders[i - i0]``, cut into batches
    ``order[k:k + batch_size]``; each is gathered into the contiguous
    Xb_flat/Yb_flat and trained as a full forward/backward/update with its own
    mean, in the batch-sized Z/A/dZ flats (laid out as in :func:`train_chunk`
    with m_b columns). The recorded cost of epoch i (:func:`_recorded`), with the
    parameters before its first update, is a forward over all m examples in
    the full-sized Zc_flat/Ac_flat; so is epoch i1's if i1 < num_iterations,
    unless ``cost_done`` says epoch i0's was reported by the previous chunk.
    Costs go to ``costs[0], costs[1], ...`` in order. Nothing is allocated per
    batch or epoch; the arithmetic does not depend on how epochs are chunked.
    """
    m = X.shape[1]
    n0, nL = dims[0], dims[dims.shape[0] - 1]
    w_off, n_off = _offsets(dims)
    r = 0
    for it in range(i0, min(i1 + 1, num_iterations)):
        if not (cost_done and it == i0) and _recorded(it, cost_every, num_iterations):
            forward_layers(W_flat, b_flat, dims, w_off, n_off, codes, X, Zc_flat, Ac_flat, work, 0)
            costs[r] = output_cost(dims, n_off, codes, loss, Y, Zc_flat, Ac_flat)
            r += 1
        if it == i1:
            break
        order = orders[it - i0]
        for k in range(0, m, batch_size):
            mb = min(batch_size, m - k)
            if mb == 1:
                x, y = Xb_flat[:n0], Yb_flat[:nL]
                for f in range(n0):
                    x[f] = X[f, order[k]]
                for f in range(nL):
                    y[f] = Y[f, order[k]]
                step_one(W_flat, b_flat, dims, w_off, n_off, codes, loss, g0, x, y,
                         learning_rate, Z_flat, A_flat, dZ_flat, work)
                continue
            Xb, Yb = _view(Xb_flat, 0, n0, mb), _view(Yb_flat, 0, nL, mb)
            gather_columns(X, order, k, Xb)
            gather_columns(Y, order, k, Yb)
            forward_layers(W_flat, b_flat, dims, w_off, n_off, codes, Xb, Z_flat, A_flat, work, 0)
            backward_update(W_flat, b_flat, dims, w_off, n_off, codes, loss, g0, Xb, Yb,
                            learning_rate, Z_flat, A_flat, dZ_flat, dW_flat, db_flat, 0)
