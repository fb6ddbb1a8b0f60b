"""The ``numba`` backend's engine room for the course's second part: whole
iterations (epochs) of training with an optimizer, L2, inverted dropout and a
decaying learning rate, compiled.

Design
------
* A fit whose schedule is the first course's plain gradient descent never
  reaches this module (:func:`fastnn.backends.numba.engine` picks
  :mod:`.engine_room`): none of it is compiled for such a fit. One that asks
  for its epoch losses (``Schedule.epoch_loss``) does, as gradient descent.
* The passes are :mod:`.engine_room`'s, through the same page kernels
  (:mod:`.layers`), with the second part's formulas of :mod:`.second_page`
  where the course puts them: :func:`forward_layers` masks each dropped hidden
  layer's A right after g (the mask computed from the fit's hash, into
  ``drop.D``; the dropped A in ``drop.A``, the next layer's input, while
  ``buf.A`` keeps g(Z) for g'); :func:`backward_update` applies each mask to
  dA before g' and updates each layer's W and b with the optimizer, L2's term
  included, as soon as their gradients exist (one pass over the parameters,
  as the first course's ``update``).
* Layer 1 always trains through the page's kernels (BLAS or loops by size),
  never through the fused first-layer pass of :mod:`.first_layer` (its fused
  update is gradient descent's). An unweighted batch of one trains fused,
  every rule a rank-1 step (:mod:`.batch_of_one`); a weighted one through the
  general path (one column). Two threads are BLAS's (the products big
  enough for it); nothing here runs a ``prange``.
* Epoch losses (scikit-learn's ``loss_curve_``): :func:`batch_loss` reads the
  output layer's A and Z that each batch's forward leaves in ``buf`` (no
  second forward) before its update; without ``epoch_loss`` the loops get
  None for ``losses`` and Numba prunes that code before typing.
* Per-example weights travel as :mod:`.engine_room`'s do (``sw``, each
  batch's gathered into ``Wb``, its 1/S for 1/m): L2's gradient term becomes
  (lambd / S) W and an epoch loss's penalty lambd / (2 S) sum ||W||^2, both 0
  in a batch whose weights sum to 0, whose optimizer step is still taken
  (with zero gradients: momentum and Adam's moments move on, t advances).
* ``t``, the update's number (Adam's bias correction, the dropout masks),
  and the iteration (epoch) that sets the learning rate are carried by the
  engine across calls, so ``run(a); run(b)`` is ``run(a + b)``.
"""

import collections

import numpy as np
from numba import njit

from ... import regularization as _reg
from .batch_of_one import backward_one, forward_one
from .config import INLINE_OPTS, SERIAL_OPTS
from .costs import inverse_weight, softmax_cost
from .engine_room import (_Engine, forward_cost, gather_rows, gather_weights, output_cost,
                          output_layer_dZ)
from .intrinsics import view as _view
from .layers import SOFTMAX, dZ_prev, linear_backward, linear_forward
from .second_page import (ADAM, SKLEARN_ADAM, bias_corrections, drop_rows, dropout_mask,
                          hyper_parameters, mask_base, thresholds, update_parameters)

__all__ = ["Course", "Dropout", "SecondFullBatchEngine", "SecondMiniBatchEngine", "full_batch",
           "epochs", "forward_layers", "backward_update", "batch_loss"]

#: The optimizer and L2, as the kernels see them: ``kind`` (a
#: :data:`.second_page.OPTIMIZER_CODES` value), ``hyper`` (5,) float64 (see
#: :func:`.second_page.update_parameters`), ``lambd``; ``VW``, ``SW`` laid out
#: as :class:`.engine_room.Net`'s W and ``Vb``, ``Sb`` as its b (IN/OUT; empty
#: when the optimizer has no such state).
Course = collections.namedtuple("Course", ["kind", "hyper", "lambd", "VW", "Vb", "SW", "Sb"])
#: Inverted dropout: ``key`` the fit's uint64 key; ``keep`` (L,) float64, each
#: layer's keep probability (1.0: no dropout); ``threshold`` (L,) uint64 its
#: mask threshold; ``D`` and ``A`` (sum n_l * c,) laid out as Buffers' Z: the
#: masks and the dropped activations (OUT). ``on`` False: no layer drops
#: (then nothing is masked).
Dropout = collections.namedtuple("Dropout", ["on", "key", "keep", "threshold", "D", "A"])


@njit(**INLINE_OPTS)
def forward_layers(net, X, buf, drop, t):
    """The forward pass over X (n_0, c) into ``buf``, each hidden layer with a
    keep probability below 1 masked with its mask of update t (when drop.on)."""
    dims, w_off, n_off = net.dims, net.w_off, net.n_off
    m = X.shape[1]
    L = dims.shape[0] - 1
    dropped = False  # whether the previous layer's A is drop.A's block
    for l in range(L):
        n, n_prev = dims[l + 1], dims[l]
        if l == 0:
            A_prev = X
        elif dropped:
            A_prev = _view(drop.A, n_off[l - 1] * m, n_prev, m)
        else:
            A_prev = _view(buf.A, n_off[l - 1] * m, n_prev, m)
        A = _view(buf.A, n_off[l] * m, n, m)
        linear_forward(_view(net.W, w_off[l], n, n_prev), _view(net.b, n_off[l], n, 1), A_prev,
                       _view(buf.Z, n_off[l] * m, n, m), A, net.codes[l], buf.work)
        dropped = drop.on and l < L - 1 and drop.keep[l] < 1.0
        if dropped:
            D = _view(drop.D, n_off[l] * m, n, m)
            dropout_mask(mask_base(drop.key, t, l + 1), drop.threshold[l], D)
            drop_rows(A, D, A.dtype.type(drop.keep[l]), _view(drop.A, n_off[l] * m, n, m))


@njit(**SERIAL_OPTS)
def dA_to_dZ(W, dZ, Z_prev, A_prev, code_prev, g0, D, keep_prob, out):
    """``out = dZ_prev``, masked as the forward was when D is not None: the
    page's :func:`.layers.dZ_prev`, a function of its own here (two call sites
    in :func:`backward_update`, the masked one and the other)."""
    dZ_prev(W, dZ, Z_prev, A_prev, code_prev, g0, out, D, keep_prob)


@njit(**INLINE_OPTS)
def backward_update(net, X, Y, buf, drop, course, learning_rate, t, sw=None, scale=None):
    """Backward over the forward of X (n_0, c) in ``buf`` (and ``drop``), and
    each layer's optimizer step (update t) as soon as its dW, db exist. With
    weights sw (c,) (None: unweighted), ``scale`` is their 1/S (0.0 if S == 0)."""
    dims, w_off, n_off, g0 = net.dims, net.w_off, net.n_off, net.g0
    L = dims.shape[0] - 1
    m = X.shape[1]
    dZ = output_layer_dZ(net, Y, buf, m, sw)
    c1, c2 = 1.0, 1.0
    if course.kind == ADAM or course.kind == SKLEARN_ADAM:
        c1, c2 = bias_corrections(course.hyper[0], course.hyper[2], t)
    if scale is None:
        l2 = course.lambd / m
    else:
        l2 = course.lambd * scale
    for l in range(L - 1, -1, -1):
        n, n_prev = dims[l + 1], dims[l]
        W, b = _view(net.W, w_off[l], n, n_prev), _view(net.b, n_off[l], n, 1)
        dW, db = _view(buf.dW, w_off[l], n, n_prev), _view(buf.db, n_off[l], n, 1)
        below = n_off[l - 1] * m if l > 0 else 0
        masked = l > 0 and drop.on and drop.keep[l - 1] < 1.0
        if l == 0:
            A_prev = X
        elif masked:
            A_prev = _view(drop.A, below, n_prev, m)
        else:
            A_prev = _view(buf.A, below, n_prev, m)
        linear_backward(dZ, A_prev, dW, db, scale)
        if l > 0:
            dZ_below = _view(buf.dZ, below, n_prev, m)
            Z_prev, G_prev = _view(buf.Z, below, n_prev, m), _view(buf.A, below, n_prev, m)
            if masked:
                dA_to_dZ(W, dZ, Z_prev, G_prev, net.codes[l - 1], g0,
                         _view(drop.D, below, n_prev, m), W.dtype.type(drop.keep[l - 1]),
                         dZ_below)  # before W's update
            else:
                dA_to_dZ(W, dZ, Z_prev, G_prev, net.codes[l - 1], g0, None, W.dtype.type(1),
                         dZ_below)
        w0, w1, b0, b1 = w_off[l], w_off[l + 1], n_off[l], n_off[l + 1]
        # (an empty state buffer slices to empty: the optimizer does not read it)
        update_parameters(net.W[w0:w1], buf.dW[w0:w1], course.VW[w0:w1], course.SW[w0:w1],
                          course.kind, learning_rate, l2, course.hyper, c1, c2)
        update_parameters(net.b[b0:b1], buf.db[b0:b1], course.Vb[b0:b1], course.Sb[b0:b1],
                          course.kind, learning_rate, 0.0, course.hyper, c1, c2)
        if l > 0:
            dZ = dZ_below


@njit(**INLINE_OPTS)
def batch_loss(net, Y, buf, lambd, m, sw=None, scale=None):
    """A batch's term of its epoch's loss (scikit-learn's ``loss_curve_``):
    ``(B / m) (J + lambd / (2 B) sum_l ||W_l||^2)``, J the cost of the forward
    in ``buf`` against Y (n_L, B) (a softmax output's from the column maxima
    and sums its forward left in ``buf.work``), the W's the current parameters
    (the batch's update not yet taken). With weights sw (B,), J is weighted
    and ``scale`` (their 1/S, 0.0 if S == 0) replaces 1/B in the penalty; B/m
    stays (scikit-learn weighs batches by size). Summed in float64."""
    B = Y.shape[1]
    L = net.dims.shape[0] - 1
    if net.codes[L - 1] == SOFTMAX:
        off = net.n_off[L - 1] * B
        J = softmax_cost(_view(buf.Z, off, net.dims[L], B), Y, buf.work, sw)
    else:
        J = output_cost(net, Y, buf, sw)
    if lambd != 0.0:
        W = net.W
        total = 0.0
        for i in range(W.shape[0]):
            w = np.float64(W[i])
            total += w * w
        if scale is None:
            J += lambd / (2 * B) * total
        else:
            J += lambd * scale / 2 * total
    return B / m * J


@njit(**SERIAL_OPTS)
def full_batch(net, X, Y, buf, drop, course, rates, t, fresh, sw, losses):
    """``rates.shape[0]`` iterations on all of X (n_0, m), Y (n_L, m), iteration
    k at learning rate rates[k], updates t + 1, t + 2, ...; the last update's
    number returned. ``buf`` holds the forward (no dropout) of the current
    parameters on entry unless ``fresh``; on return it holds none. sw (m,):
    the examples' weights, None: unweighted. ``losses`` (count,) float64 OUT:
    each iteration's :func:`batch_loss`, of the forward it trains on; None:
    none computed (the branch is pruned at compile time)."""
    m = X.shape[1]
    if sw is None:  # (pruned before typing: scale is None or a float, never Optional)
        scale = None
    else:
        scale = inverse_weight(sw)
    for k in range(rates.shape[0]):
        t += 1
        if fresh or drop.on:
            forward_layers(net, X, buf, drop, t)
        fresh = True
        if losses is not None:
            losses[k] = batch_loss(net, Y, buf, course.lambd, m, sw, scale)
        backward_update(net, X, Y, buf, drop, course, rates[k], t, sw, scale)
    return t


@njit(**SERIAL_OPTS)
def epochs(net, XT, YT, buf, Xb, Yb, drop, course, rates, orders, batch_size, t, sw, Wb, losses):
    """One epoch per row of ``orders`` (as :func:`.engine_room.epochs`: the
    examples gathered from their rows, XT (m, n_0), YT (m, n_L)), epoch e
    at learning rate rates[e]; each mini-batch is update t + 1, t + 2, ...; the
    last update's number returned. sw (m,): the examples' weights, each
    batch's gathered into Wb (batch_size,); None: unweighted. ``losses``
    (count,) float64 OUT: each epoch's sum of its batches' :func:`batch_loss`,
    each from the forward the batch trains on; None: none computed (pruned at
    compile time)."""
    m = XT.shape[0]
    n0, nL = net.dims[0], net.dims[net.dims.shape[0] - 1]
    for e in range(orders.shape[0]):
        order = orders[e]
        total = 0.0
        for k in range(0, m, batch_size):
            mb = min(batch_size, m - k)
            t += 1
            X_batch, Y_batch = _view(Xb, 0, n0, mb), _view(Yb, 0, nL, mb)
            gather_rows(XT, order, k, X_batch)
            gather_rows(YT, order, k, Y_batch)
            if mb == 1 and sw is None:  # matrix-vector work: fused (.batch_of_one)
                forward_one(net, Xb[:n0], buf, drop, t)
                if losses is not None:
                    total += batch_loss(net, Y_batch, buf, course.lambd, m)
                backward_one(net, Xb[:n0], Yb[:nL], buf, drop, course, rates[e], t)
                continue
            forward_layers(net, X_batch, buf, drop, t)
            if sw is None:
                if losses is not None:
                    total += batch_loss(net, Y_batch, buf, course.lambd, m)
                backward_update(net, X_batch, Y_batch, buf, drop, course, rates[e], t)
            else:
                w = Wb[:mb]
                gather_weights(sw, order, k, w)
                scale = inverse_weight(w)
                if losses is not None:
                    total += batch_loss(net, Y_batch, buf, course.lambd, m, w, scale)
                backward_update(net, X_batch, Y_batch, buf, drop, course, rates[e], t, w, scale)
        if losses is not None:
            losses[e] = total
    return t


# ------------------------------------------------------------ the engines


def _course(fit):
    """The fit's optimizer, hyper-parameters and state as :class:`Course`
    (the state copied into flat buffers)."""
    s, p = fit.schedule, fit.problem
    kind, hyper = hyper_parameters(s.optimizer)
    n_w = sum(W.size for W in fit.Ws)
    n_b = sum(b.size for b in fit.bs)
    state = fit.optimizer_state or {}
    flats = []
    for slot in ("v", "s"):
        if slot in state:
            d = state[slot]
            flats.append(np.concatenate([d[f"dW{l}"].ravel() for l in range(1, len(fit.Ws) + 1)])
                         .astype(p.dtype))
            flats.append(np.concatenate([d[f"db{l}"].ravel() for l in range(1, len(fit.Ws) + 1)])
                         .astype(p.dtype))
        else:
            flats += [np.empty(0, p.dtype), np.empty(0, p.dtype)]
    assert flats[0].size in (0, n_w) and flats[1].size in (0, n_b)
    return Course(np.int64(kind), hyper, float(s.lambd), *flats)


def _dropout(fit, columns):
    s, p = fit.schedule, fit.problem
    L = len(fit.Ws)
    keep, threshold = thresholds(s.keep_probs, L)
    on = s.keep_probs is not None
    key = np.uint64(fit.dropout_key()) if on else np.uint64(0)  # drawn once, as PythonEngine
    size = int(sum(fit.dims[1:])) * columns if on else 0
    return Dropout(on, key, keep, threshold, np.empty(size, p.dtype), np.empty(size, p.dtype))


class _SecondEngine(_Engine):
    """What both engines share: the optimizer state in flat buffers (written
    back into ``fit.optimizer_state`` by ``close``), t and the iteration count,
    the recorded cost (a forward without dropout, plus L2's penalty)."""

    def __init__(self, fit):
        super().__init__(fit)
        self.course = _course(fit)
        self.drop = _dropout(fit, self.columns)
        self.t = fit.steps
        self.i = 0  # the iteration (epoch) the next run starts at

    def _rates(self, count):
        s = self._fit.schedule
        rates = np.array([s.learning_rate_at(self.i + k) for k in range(count)], np.float64)
        self.i += count
        return rates

    def _losses(self, count):
        """The epoch losses' array of a run (``Schedule.epoch_loss``), else None."""
        return np.zeros(count) if self._fit.schedule.epoch_loss else None

    def _penalty(self):
        """L2's term of the recorded cost: lambd / (2 m) sum ||W||^2, with
        weights over S = their sum (positive over all m: validated)."""
        f = self._fit
        if not f.schedule.lambd:
            return 0.0
        Ws, offset = [], 0
        for W in f.Ws:
            Ws.append(self.net.W[offset:offset + W.size].reshape(W.shape))
            offset += W.size
        m = f.problem.m if self.sw is None else float(np.sum(self.sw, dtype=np.float64))
        return _reg.l2_penalty(Ws, f.schedule.lambd, m)

    def close(self):
        """Parameters back into ``fit.Ws``/``fit.bs``, the optimizer's state
        into ``fit.optimizer_state`` (new arrays, the course's dicts)."""
        try:
            f = self._fit
            state = {}
            for slot, flat_w, flat_b in (("v", self.course.VW, self.course.Vb),
                                         ("s", self.course.SW, self.course.Sb)):
                if f.optimizer_state and slot in f.optimizer_state:
                    d, ow, ob = {}, 0, 0
                    for l, (W, b) in enumerate(zip(f.Ws, f.bs), start=1):
                        old_w = f.optimizer_state[slot][f"dW{l}"]
                        old_b = f.optimizer_state[slot][f"db{l}"]
                        d[f"dW{l}"] = flat_w[ow:ow + W.size].reshape(W.shape).astype(old_w.dtype)
                        d[f"db{l}"] = flat_b[ob:ob + b.size].reshape(b.shape).astype(old_b.dtype)
                        ow, ob = ow + W.size, ob + b.size
                    state[slot] = d
            if f.optimizer_state is not None:
                f.optimizer_state = state
        finally:
            super().close()


class SecondFullBatchEngine(_SecondEngine):
    """Full-batch training with the second part (:func:`full_batch`)."""

    def __init__(self, fit):
        super().__init__(fit)
        self._fresh = True  # buf holds no forward of the current parameters

    def cost(self):
        p = self._fit.problem
        J = forward_cost(self.net, p.X, p.Y, self.buf, self.sw)
        self._fresh = False
        return J + self._penalty()

    def run(self, count, orders=None, last=False):
        p = self._fit.problem
        fresh, self._fresh = self._fresh, True
        losses = self._losses(count)
        self.t = full_batch(self.net, p.X, p.Y, self.buf, self.drop, self.course,
                            self._rates(count), self.t, fresh, self.sw, losses)
        return losses


class SecondMiniBatchEngine(_SecondEngine):
    """Mini-batch epochs with the second part (:func:`epochs`)."""

    def cost(self):
        return self.blocked_cost() + self._penalty()

    def run(self, count, orders, last=False):
        losses = self._losses(count)
        self.t = epochs(self.net, *self.rows, self.buf, self.Xb, self.Yb, self.drop, self.course,
                        self._rates(count), orders, self._fit.schedule.batch_size, self.t,
                        self.sw, self.Wb, losses)
        return losses

