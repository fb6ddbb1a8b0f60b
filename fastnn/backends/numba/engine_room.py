"""The ``numba`` backend's engine room: the compiled training loops, and the
engines that run them for :func:`fastnn.backends._base.train`.

Design
------
* :func:`full_batch` runs gradient descent exactly as the lecture, every
  formula through the page (:mod:`.layers`): ``linear_forward``, ``output_dZ``,
  ``linear_backward``, ``dZ_prev``, ``update``, and ``cost`` of each forward it
  leaves in its buffers.
  Between calls it keeps the forward of the current parameters in its
  buffers: :meth:`FullBatchEngine.cost` reads it, each iteration of ``run`` is
  backward + update + the next forward.
* :func:`epochs` runs mini-batch epochs the same way, whole epochs compiled:
  each batch's columns are gathered into one contiguous buffer and trained
  through the same page kernels with no allocation per batch; a batch of one
  is :func:`.batch_of_one.step_one`, forward, backward and update fused.
* Layer 1 with a big input and few units trains through the fused pass of
  :mod:`.first_layer` (one pass over X per iteration), serially or on T
  threads: ``Z_parts`` None selects the serial pass at compile time (Numba
  prunes the other branch before typing), so a one-thread fit never compiles
  the parallel one.
* Parameters and activations travel as flat buffers with offsets, not lists of
  arrays (a typed-list lookup costs ~40 ns, a third of a planar iteration), in
  two named tuples, :class:`Net` and :class:`Buffers`.
* Per-example weights (``Problem.sample_weight``) reach the loops as ``sw`` (m,), or
  None: then Numba prunes every weighted branch before typing, and an unweighted fit runs
  exactly the code it ran before weights existed. A mini-batch's weights are gathered by
  the order of its columns (into ``Wb``); its 1/S (:func:`.layers.inverse_weight`)
  replaces 1/m in every layer's dW and db and in the fused pass's scale.
* Each kernel is compiled on its first call, for the dtype it gets: a
  full-batch fit compiles :func:`full_batch` alone.
"""

import collections
import contextlib

import numba
import numpy as np
from numba import njit

from .. import _blas
from .batch_of_one import step_one
from .config import BLAS_MIN_MACS, GATHER_AHEAD, INLINE_OPTS, SERIAL_OPTS, check_isa
from .costs import cost, inverse_weight
from .first_layer import first_layer_block, first_layer_threads, fused_first_layer
from .layers import (bias_activation, bias_gradient, dZ_prev, linear_backward, linear_forward,
                     output_dZ, update)
from .intrinsics import prefetch_row, view as _view

#: A mini-batch engine's recorded cost goes over the m examples this many at a
#: time, through buffers of that many columns (the cython engine's COST_BLOCK),
#: where those hold less than buffers over all m (Z and A for every example).
COST_BLOCK = 4096

__all__ = ["Net", "Buffers", "FullBatchEngine", "MiniBatchEngine", "full_batch", "output_cost",
           "forward_cost", "epochs", "forward_layers", "output_layer_dZ",
           "backward_update", "gather_weights"]

#: The network as the kernels see it. ``W`` (sum n_l n_{l-1},) and ``b``
#: (sum n_l,), IN/OUT: layer l's (0-based) W is the C-ordered
#: (dims[l+1], dims[l]) block at ``w_off[l]``, its b the dims[l+1] values at
#: ``n_off[l]``. ``dims`` (L+1,) int64: n_0 .. n_L; ``w_off``, ``n_off`` (L+1,)
#: int64; ``codes`` (L,) int64 activation codes; ``loss`` the loss code; ``g0``
#: ReLU's g'(0), 1 or 0.
Net = collections.namedtuple("Net", ["W", "b", "dims", "w_off", "n_off", "codes", "loss", "g0"])
#: One pass's scratch, for c columns (examples): ``Z``, ``A``, ``dZ`` (sum n_l * c,)
#: hold layer l's (dims[l+1], c) block at n_off[l] * c; ``dW``, ``db`` are laid
#: out as Net's W and b; ``work`` (2, c) is softmax's scratch. All OUT.
Buffers = collections.namedtuple("Buffers", ["Z", "A", "dZ", "dW", "db", "work"])


# ------------------------------------------------------------ one pass


@njit(**INLINE_OPTS)
def forward_layers(net, X, buf, first):
    """Layers ``first`` .. L-1 (0-based) of the forward pass over X (n_0, c):
    layer l's Z and A into ``buf``'s (dims[l+1], c) blocks."""
    dims, w_off, n_off = net.dims, net.w_off, net.n_off
    m = X.shape[1]
    for l in range(first, dims.shape[0] - 1):
        n, n_prev = dims[l + 1], dims[l]
        A_prev = X if l == 0 else _view(buf.A, n_off[l - 1] * m, n_prev, m)
        linear_forward(_view(net.W, w_off[l], n, n_prev), _view(net.b, n_off[l], n, 1), A_prev,
                       _view(buf.Z, n_off[l] * m, n, m), _view(buf.A, n_off[l] * m, n, m),
                       net.codes[l], buf.work)


@njit(**INLINE_OPTS)
def output_cost(net, Y, buf, sw=None):
    """The cost J of the forward pass in ``buf`` against Y (n_L, c), weighted by
    sw (c,) unless None."""
    L = net.dims.shape[0] - 1
    m = Y.shape[1]
    off = net.n_off[L - 1] * m
    nL = net.dims[L]
    return cost(_view(buf.A, off, nL, m), _view(buf.Z, off, nL, m), Y, net.loss,
                net.codes[L - 1], sw)


@njit(**SERIAL_OPTS)
def forward_cost(net, X, Y, buf, sw=None):
    """The cost J at the current parameters: a forward over X (n_0, c) into
    ``buf``; weighted by sw (c,) unless None."""
    forward_layers(net, X, buf, 0)
    return output_cost(net, Y, buf, sw)


@njit(**INLINE_OPTS)
def output_layer_dZ(net, Y, buf, m, sw=None):
    """dZ of the output layer from the forward pass in ``buf`` against Y (n_L, m),
    each column j times sw[j] unless sw is None, into buf.dZ's block; returned."""
    L = net.dims.shape[0] - 1
    off = net.n_off[L - 1] * m
    dZ = _view(buf.dZ, off, net.dims[L], m)
    output_dZ(_view(buf.A, off, net.dims[L], m), Y, _view(buf.Z, off, net.dims[L], m),
              net.codes[L - 1], net.loss, net.g0, dZ, sw)
    return dZ


@njit(**INLINE_OPTS)
def backward_update(net, X, Y, buf, learning_rate, last, sw=None, scale=None):
    """Backward and update of layers L-1 .. ``last`` (0-based) after the forward
    pass over X (n_0, c) in ``buf``; returns dZ of layer ``last`` (computed
    before its update). ``last`` = 0: every layer; 1: layer 1 is left to the
    fused pass. W and b updated in place; buf.dZ, dW, db written. With
    weights sw (c,), the output delta's columns are scaled by them and
    ``scale`` (their 1/S) replaces 1/c; None: unweighted."""
    dims, w_off, n_off, g0 = net.dims, net.w_off, net.n_off, net.g0
    L = dims.shape[0] - 1
    m = X.shape[1]
    dZ = output_layer_dZ(net, Y, buf, m, sw)
    for l in range(L - 1, last - 1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W, b = _view(net.W, w_off[l], n, n_prev), _view(net.b, n_off[l], n, 1)
        dW, db = _view(buf.dW, w_off[l], n, n_prev), _view(buf.db, n_off[l], n, 1)
        A_prev = X if l == 0 else _view(buf.A, n_off[l - 1] * m, n_prev, m)
        linear_backward(dZ, A_prev, dW, db, scale)
        if l > 0:
            dZ_below = _view(buf.dZ, n_off[l - 1] * m, n_prev, m)
            dZ_prev(W, dZ, _view(buf.Z, n_off[l - 1] * m, n_prev, m), A_prev, net.codes[l - 1],
                    g0, dZ_below)  # before W's update
        update(W, dW, learning_rate)
        update(b, db, learning_rate)
        if l > 0:
            dZ = dZ_below
    return dZ


# ------------------------------------------------------------ full batch


@njit(**SERIAL_OPTS)
def full_batch(net, X, Y, buf, fused, Z_parts, learning_rate, count, fresh, last, J, sw):
    """``count`` iterations of full-batch gradient descent on X (n_0, m), Y (n_L, m),
    weighted by sw (m,) (None: unweighted).

    ``buf`` (m columns) holds the forward of the current parameters on entry
    (unless ``fresh``: then it is computed first) and, with its cost in J (1,)
    (OUT), on return (unless ``last``: the final forward is skipped). net.W and
    net.b are updated in place.

    ``fused`` None: layer 1 trains through the page's kernels; True: through
    the one-pass kernel of :mod:`.first_layer`, whose Z block then holds W1 X
    (without b1) between iterations. ``Z_parts`` (T, n_1, m): the fused pass's
    scratch for T threads; None: one thread. Both are pruned at compile time
    (Numba drops a branch on ``arg is None`` before typing): a fit compiles
    neither the fused pass it does not run nor the parallel one on one thread.
    """
    m = X.shape[1]
    n1, n0 = net.dims[1], net.dims[0]
    W1, b1 = _view(net.W, 0, n1, n0), _view(net.b, 0, n1, 1)
    Z1, A1 = _view(buf.Z, 0, n1, m), _view(buf.A, 0, n1, m)
    db1 = _view(buf.db, 0, n1, 1)
    if sw is None:  # (pruned before typing: inv is None or a float, never Optional)
        inv = None
        scale = X.dtype.type(learning_rate / m)  # keeps float32 kernels float32
    else:  # 1/S, S the weights' sum, for 1/m
        inv = inverse_weight(sw)
        scale = X.dtype.type(learning_rate * inv)
    zero = np.int64(0)  # not the literal 0: that would compile the pass once more
    first = zero  # the first layer forward_layers and backward_update run
    if fused is not None:
        first = np.int64(1)
    # step 0 is the forward alone (only when fresh); step k > 0 is iteration
    # k's backward and update, then the forward at the updated parameters.
    for step in range(0 if fresh else 1, count + 1):
        learn = step > 0
        dZ1 = Z1  # read by the fused pass only when it learns
        if learn:
            dZ1 = backward_update(net, X, Y, buf, learning_rate, first, sw, inv)
        if fused is not None:  # dW1, W1's update and the next W1 X in one pass over X
            if learn:
                bias_gradient(dZ1, db1, inv)
            if Z_parts is None:
                first_layer_block(W1, dZ1, X, Z1, zero, n0, scale, learn)
            else:
                first_layer_threads(W1, dZ1, X, Z1, Z_parts, scale, learn)
            if learn:
                update(b1, db1, learning_rate)
        if last and step == count:
            return
        if fused is not None:
            bias_activation(net.codes[0], b1, Z1, A1, buf.work)
        forward_layers(net, X, buf, first)
    J[0] = output_cost(net, Y, buf, sw)


# ------------------------------------------------------------ mini-batches


@njit(**SERIAL_OPTS)
def gather_rows(XT, order, k, out):
    """``out[:, c] = XT[order[k + c], :]``: a mini-batch's examples as columns, each read
    as its row of XT (m, n) IN and asked for GATHER_AHEAD examples ahead (rows at random
    wait on L3 or DRAM: config.GATHER_AHEAD). order (m,) int64 IN, out (n, c) OUT."""
    n, mb = out.shape
    for c in range(min(GATHER_AHEAD, mb)):
        prefetch_row(XT, order[k + c])
    for c in range(mb):
        if c + GATHER_AHEAD < mb:
            prefetch_row(XT, order[k + c + GATHER_AHEAD])
        row = XT[order[k + c]]
        for r in range(n):
            out[r, c] = row[r]


@njit(**INLINE_OPTS)
def gather_weights(sw, order, k, out):
    """``out[c] = sw[order[k + c]]``: one mini-batch's weights, in its columns' order.
    sw (m,) IN, order (m,) int64 IN, out (c,) OUT."""
    for c in range(out.shape[0]):
        out[c] = sw[order[k + c]]


@njit(**SERIAL_OPTS)
def epochs(net, XT, YT, buf, Xb, Yb, learning_rate, orders, batch_size, sw, Wb):
    """Mini-batch gradient descent for one epoch per row of ``orders``.

    XT (m, n_0), YT (m, n_L) IN, the examples as rows (:func:`gather_rows`);
    orders (count, m) int64 IN: epoch e's example
    order, cut into batches ``order[k:k + batch_size]``, each gathered into the
    contiguous Xb (n_0 * batch_size,) / Yb (n_L * batch_size,) and trained as
    forward / backward / update with its own mean in ``buf`` (batch_size
    columns). net.W, net.b updated in place; nothing allocated per batch.
    sw (m,) IN: the examples' weights, each batch's gathered into Wb
    (batch_size,), its weighted mean taken; None: unweighted (Wb unused).
    """
    m = XT.shape[0]
    n0, nL = net.dims[0], net.dims[net.dims.shape[0] - 1]
    for e in range(orders.shape[0]):
        order = orders[e]
        for k in range(0, m, batch_size):
            mb = min(batch_size, m - k)
            if mb == 1:
                # Weighted, a batch of one's J is w L / w = L: the same step, or
                # none (a zero gradient) when w == 0.
                if sw is not None:
                    if sw[order[k]] == 0.0:
                        continue
                x, y = Xb[:n0], Yb[:nL]
                x[:] = XT[order[k]]
                y[:] = YT[order[k]]
                step_one(net, x, y, buf, learning_rate)
                continue
            X_batch, Y_batch = _view(Xb, 0, n0, mb), _view(Yb, 0, nL, mb)
            gather_rows(XT, order, k, X_batch)
            gather_rows(YT, order, k, Y_batch)
            forward_layers(net, X_batch, buf, 0)
            if sw is None:
                backward_update(net, X_batch, Y_batch, buf, learning_rate, 0)
            else:
                w = Wb[:mb]
                gather_weights(sw, order, k, w)
                backward_update(net, X_batch, Y_batch, buf, learning_rate, 0, w,
                                inverse_weight(w))


# ------------------------------------------------------------ the engines


def _buffers(dims, columns, dtype, grads=True):
    units = int(sum(dims[1:]))
    n_w = sum(dims[l + 1] * dims[l] for l in range(len(dims) - 1))
    empty = np.empty
    return Buffers(empty(units * columns, dtype), empty(units * columns, dtype),
                   empty(units * columns if grads else 0, dtype),
                   empty(n_w if grads else 0, dtype), empty(units if grads else 0, dtype),
                   empty((2, columns), dtype))


def _net(fit):
    """The fit's parameters copied into one flat W and b, with their layout."""
    dims = fit.dims
    p = fit.problem
    w_off = np.zeros(len(dims), np.int64)
    n_off = np.zeros(len(dims), np.int64)
    for l in range(len(dims) - 1):
        w_off[l + 1] = w_off[l] + dims[l + 1] * dims[l]
        n_off[l + 1] = n_off[l] + dims[l + 1]
    return Net(np.concatenate([W.ravel() for W in fit.Ws]),
               np.concatenate([b.ravel() for b in fit.bs]), np.array(dims, np.int64), w_off,
               n_off, p.codes, np.int64(p.loss_code), np.int64(p.relu_grad_at_zero))


class _Engine:
    """What the engines share: the flat parameters, the thread count (Numba's
    and BLAS's) held for the engine's life, the buffers of a pass over
    ``columns`` examples (m, or a mini-batch's), a mini-batch engine's cost
    buffers (:meth:`blocked_cost`) and gathered batch, and ``close``."""

    def __init__(self, fit):
        check_isa()
        self._fit = fit
        self.net = _net(fit)
        with contextlib.ExitStack() as stack:  # close() undoes it (or a failure here)
            previous = numba.get_num_threads()
            self.threads = max(1, min(fit.threads, numba.config.NUMBA_NUM_THREADS))  # what runs
            numba.set_num_threads(self.threads)
            stack.callback(numba.set_num_threads, previous)
            p, dims, mb = fit.problem, fit.dims, fit.schedule.batch_size
            if any(dims[l + 1] * dims[l] * p.m >= BLAS_MIN_MACS for l in range(len(dims) - 1)):
                stack.enter_context(_blas.limit(fit.threads))  # m >= columns: the cost too
            self.columns = p.m if mb is None else mb
            self.buf = _buffers(dims, self.columns, p.dtype)
            #: The examples' weights (m,), or None (unweighted: no weighted code compiled).
            self.sw = p.sample_weight
            if mb is not None:
                # The examples as rows, gathered from (an F-contiguous X's own
                # memory: HAS_ROW_BATCHES); a recorded cost's block buffers.
                self.rows = (np.ascontiguousarray(p.X.T), np.ascontiguousarray(p.Y.T))
                # A recorded cost's blocks (one over all m where blocks hold no less).
                units = sum(dims[1:])
                blocks = (dims[0] + dims[-1] + 1) * (COST_BLOCK + p.m % COST_BLOCK) \
                    + 2 * units * COST_BLOCK
                whole = 2 * units * p.m + (0 if p.X.flags.c_contiguous else dims[0] * p.m)
                self.cost_block = COST_BLOCK if p.m > COST_BLOCK and blocks < whole else p.m
                self.cost_buf = _buffers(dims, self.cost_block, p.dtype, grads=False)
                self._cost_blocks = {}  # columns -> (X, Y) block buffers
                self.Xb = np.empty(dims[0] * mb, p.dtype)
                self.Yb = np.empty(dims[-1] * mb, p.dtype)
                self.Wb = np.empty(mb if self.sw is not None else 0, p.dtype)
            self._stack = stack.pop_all()

    def blocked_cost(self):
        """A mini-batch engine's recorded cost: J over all m examples, a forward
        over ``cost_block`` of them at a time (X's and Y's columns copied into
        C-contiguous block buffers; X and Y themselves for one block, where
        they are C-contiguous) into ``cost_buf``; each block's J_k, a mean over
        its S_k (its count, or its weights' sum), weighted by S_k / S."""
        p, sw, c = self._fit.problem, self.sw, self.cost_block
        S = p.m if sw is None else float(np.sum(sw, dtype=np.float64))
        if c == p.m:
            X, Y = p.X, p.Y
            if not X.flags.c_contiguous:  # given as rows: its columns, copied once
                if "X" not in self._cost_blocks:
                    self._cost_blocks["X"] = np.ascontiguousarray(X)
                X = self._cost_blocks["X"]
            return forward_cost(self.net, X, np.ascontiguousarray(Y), self.cost_buf, sw)
        J = 0.0
        for c0 in range(0, p.m, c):
            c1 = min(p.m, c0 + c)
            if c1 - c0 not in self._cost_blocks:
                self._cost_blocks[c1 - c0] = (np.empty((p.X.shape[0], c1 - c0), p.dtype),
                                              np.empty((p.Y.shape[0], c1 - c0), p.dtype))
            Xk, Yk = self._cost_blocks[c1 - c0]
            np.copyto(Xk, p.X[:, c0:c1])
            np.copyto(Yk, p.Y[:, c0:c1])
            swk = None if sw is None else sw[c0:c1]
            Sk = c1 - c0 if sw is None else float(np.sum(swk, dtype=np.float64))
            # S = 0 (every weight 0): J_k is 0, or NaN for a non-finite loss, as the mean's
            J += forward_cost(self.net, Xk, Yk, self.cost_buf, swk) * (Sk / S if S > 0 else 0.0)
        return J

    def close(self):
        """The trained parameters back into ``fit.Ws``/``fit.bs``, in place."""
        try:
            for flat, arrays in ((self.net.W, self._fit.Ws), (self.net.b, self._fit.bs)):
                offset = 0
                for a in arrays:
                    a.ravel()[:] = flat[offset:offset + a.size]  # C-contiguous: a view
                    offset += a.size
        finally:
            self._stack.close()


class FullBatchEngine(_Engine):
    """Full-batch gradient descent through :func:`full_batch`; the forward of the
    current parameters stays in its buffers between calls."""

    def __init__(self, fit):
        super().__init__(fit)
        p, dims = fit.problem, fit.dims
        if p.acts[-1] != "softmax":  # no softmax code compiled (see layers.bias_activation)
            self.buf = self.buf._replace(work=None)
        self.fused = True if fused_first_layer(dims[1], dims[0], p.m) else None
        T = numba.get_num_threads()
        self.Z_parts = (np.empty((T, dims[1], p.m), p.dtype) if self.fused and T > 1
                        else None)
        self.J = np.full(1, np.nan)  # the cost of the forward in buf
        self._fresh = True  # the buffers hold no forward yet

    def _call(self, count, last):
        p = self._fit.problem
        full_batch(self.net, p.X, p.Y, self.buf, self.fused, self.Z_parts,
                   float(self._fit.schedule.learning_rate), count, self._fresh, last, self.J,
                   self.sw)
        self._fresh = last

    def cost(self):
        if self._fresh:
            self._call(0, False)
        return float(self.J[0])

    def run(self, count, orders=None, last=False):
        self._call(count, last)


class MiniBatchEngine(_Engine):
    """Mini-batch epochs through :func:`epochs`; a recorded cost is a forward
    over all m examples, a block at a time (:meth:`_Engine.blocked_cost`)."""

    def cost(self):
        return self.blocked_cost()

    def run(self, count, orders, last=False):
        epochs(self.net, *self.rows, self.buf, self.Xb, self.Yb,
               float(self._fit.schedule.learning_rate), orders, self._fit.schedule.batch_size,
               self.sw, self.Wb)
