"""The ``numba`` backend's batch of one: forward, backward and update of a
single example, fused.

Design
------
* A batch of one is matrix-vector work, where the general mini-batch path's
  fixed costs -- a BLAS call or a loop call and array views per row of each
  product, a dW buffer written and read back -- are most of an update
  (Adam at B = 1 on digits: 14 µs an example that way, against 3.5 µs of
  arithmetic). Here layer l's z, a and dz are (n_l,) vectors at n_off[l] of
  the Buffers' flats: a batch of one's (n_l, 1) blocks in the general path's
  layout, so the epoch loss (:func:`.second_room.batch_loss`) reads them as
  it reads any batch's.
* Every update is rank-1, W read and written once after dA_prev = W^T dz has
  used the old W: plain gradient descent's ``W -= (lr dz) a_prev^T``
  (:func:`step_one`, the first course), and every rule of the second part
  through :func:`.second_page.update_rank1`, each element of dz a_prev^T
  formed where it is stepped (the rule's formula: :func:`.second_page.step_at`).
* Inverted dropout (the second part): a masked hidden layer's mask is drawn
  on its (n, 1) block as the general path draws it
  (:func:`.second_page.dropout_mask`), the dropped a is the next layer's
  input, and dA is masked before g'. ``drop`` None (the first course)
  prunes it all at compile time.
* Unweighted only: a weighted batch of one takes the general path (the
  second part) or skips a zero weight (:func:`.engine_room.epochs`).
"""

from numba import njit

from .config import INLINE_OPTS, SERIAL_OPTS
from .intrinsics import view as _view
from .layers import SOFTMAX, activation_backward, activation_forward, output_dZ, softmax
from .second_page import (ADAM, SKLEARN_ADAM, bias_corrections, drop_rows, dropout_mask,
                          mask_base, update_parameters, update_rank1)

__all__ = ["forward_one", "output_delta_one", "delta_below", "step_one", "backward_one"]


@njit(**INLINE_OPTS)
def _dropped(drop, l, L):
    """Whether hidden layer l (0-based) of L is masked in this fit."""
    return drop is not None and drop.on and l < L - 1 and drop.keep[l] < 1.0


@njit(**INLINE_OPTS)
def _input_of(net, x, buf, drop, l):
    """Layer l's input: x, or layer l-1's a (its dropped a where it is masked)."""
    if l == 0:
        return x
    n_prev, off = net.dims[l], net.n_off[l - 1]
    if _dropped(drop, l - 1, net.dims.shape[0] - 1):
        return drop.A[off:off + n_prev]
    return buf.A[off:off + n_prev]


@njit(**SERIAL_OPTS)
def forward_one(net, x, buf, drop=None, t=0):
    """The forward pass of one example x (n_0,) into ``buf``: z = W a_prev + b,
    a = g(z) layer by layer; a masked hidden layer's a dropped with its mask
    of update t into ``drop`` (None: no dropout, pruned)."""
    dims, w_off, n_off, codes = net.dims, net.w_off, net.n_off, net.codes
    z_flat, a_flat = buf.Z, buf.A
    L = dims.shape[0] - 1
    for l in range(L):
        n, n_prev = dims[l + 1], dims[l]
        W = _view(net.W, w_off[l], n, n_prev)
        a_prev = _input_of(net, x, buf, drop, l)
        z = z_flat[n_off[l]:n_off[l] + n]
        for i in range(n):
            row = W[i]
            s = net.b[n_off[l] + i]
            for k in range(n_prev):
                s += row[k] * a_prev[k]
            z[i] = s
        if codes[l] == SOFTMAX:
            softmax(_view(z_flat, n_off[l], n, 1), _view(a_flat, n_off[l], n, 1), buf.work)
        else:  # units as the row: element-wise, the bias already in
            activation_forward(codes[l], z.dtype.type(0), z, a_flat[n_off[l]:n_off[l] + n])
        if _dropped(drop, l, L):
            D = _view(drop.D, n_off[l], n, 1)
            dropout_mask(mask_base(drop.key, t, l + 1), drop.threshold[l], D)
            drop_rows(_view(a_flat, n_off[l], n, 1), D, a_flat.dtype.type(drop.keep[l]),
                      _view(drop.A, n_off[l], n, 1))


@njit(**INLINE_OPTS)
def output_delta_one(net, y, buf):
    """dz of the output layer (n_L,) from the forward in ``buf`` against y (n_L,)."""
    dims, n_off = net.dims, net.n_off
    L = dims.shape[0] - 1
    nL, off = dims[L], n_off[L - 1]
    output_dZ(_view(buf.A, off, nL, 1), y.reshape((nL, 1)), _view(buf.Z, off, nL, 1),
              net.codes[L - 1], net.loss, net.g0, _view(buf.dZ, off, nL, 1))
    return buf.dZ[off:off + nL]


@njit(**INLINE_OPTS)
def delta_below(net, buf, drop, l, W, dz):
    """dz of layer l-1 (returned, in ``buf``): da = W^T dz with layer l's W
    before its update, masked as its forward was (``drop``), times g'."""
    n, n_prev = W.shape
    off = net.n_off[l - 1]
    da = buf.dZ[off:off + n_prev]
    da[:] = 0
    for i in range(n):
        row, d = W[i], dz[i]
        for k in range(n_prev):
            da[k] += d * row[k]
    if _dropped(drop, l - 1, net.dims.shape[0] - 1):
        D, keep_prob = drop.D[off:off + n_prev], da.dtype.type(drop.keep[l - 1])
        for k in range(n_prev):
            da[k] = (da[k] * D[k]) / keep_prob
    activation_backward(net.codes[l - 1], da, buf.Z[off:off + n_prev],
                        buf.A[off:off + n_prev], net.g0)
    return da


@njit(**SERIAL_OPTS)
def step_one(net, x, y, buf, learning_rate):
    """One example (x (n_0,), y (n_L,)) of plain gradient descent: forward,
    backward and the update ``W -= (lr dz) a_prev^T``, ``b -= lr dz``."""
    dims, w_off, n_off = net.dims, net.w_off, net.n_off
    L = dims.shape[0] - 1
    forward_one(net, x, buf)
    dz = output_delta_one(net, y, buf)
    for l in range(L - 1, -1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W = _view(net.W, w_off[l], n, n_prev)
        a_prev = _input_of(net, x, buf, None, l)
        dz_below = delta_below(net, buf, None, l, W, dz) if l > 0 else dz
        for i in range(n):
            s = learning_rate * dz[i]
            net.b[n_off[l] + i] -= s
            row = W[i]
            for k in range(n_prev):
                row[k] -= s * a_prev[k]
        dz = dz_below


@njit(**SERIAL_OPTS)
def backward_one(net, x, y, buf, drop, course, learning_rate, t):
    """Backward of the forward of x (n_0,) in ``buf`` against y (n_L,), and each
    layer's step of update t with the second part's rule and L2 (``course``),
    as :func:`.second_room.backward_update` at a batch of one."""
    dims, w_off, n_off = net.dims, net.w_off, net.n_off
    L = dims.shape[0] - 1
    c1, c2 = 1.0, 1.0
    if course.kind == ADAM or course.kind == SKLEARN_ADAM:
        c1, c2 = bias_corrections(course.hyper[0], course.hyper[2], t)
    dz = output_delta_one(net, y, buf)
    for l in range(L - 1, -1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W = _view(net.W, w_off[l], n, n_prev)
        dz_below = delta_below(net, buf, drop, l, W, dz) if l > 0 else dz
        w0, w1, b0, b1 = w_off[l], w_off[l + 1], n_off[l], n_off[l + 1]
        update_rank1(net.W[w0:w1], dz, _input_of(net, x, buf, drop, l), course.VW[w0:w1],
                     course.SW[w0:w1], course.kind, learning_rate, course.lambd, course.hyper,
                     c1, c2)
        update_parameters(net.b[b0:b1], dz, course.Vb[b0:b1], course.Sb[b0:b1], course.kind,
                          learning_rate, 0.0, course.hyper, c1, c2)
        dz = dz_below
