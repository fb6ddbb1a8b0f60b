"""The cython backend's engine room in Python: the plans (``fastnn_ext``'s
``_Net``) a forward, a backward and a fit run on.

Everything here runs once per call or per fit, never per iteration: building a
plan from the arrays ``Network`` hands over, the thread count it runs on, and
which of the three ways layer 1 trains (direct, one pass over X, Gram) --
:func:`engine` is what the one training driver (:mod:`fastnn.backends._base`)
calls.
"""

import contextlib

import numpy as np

from ... import activations as _act
from ... import losses as _losses
from .. import _blas
from .. import _threads as _thread_policy
from .paths import active as _active
from .paths import current

__all__ = ["AUTO_THREADS_MIN_WORK", "forward", "backward", "engine", "Engine"]

#: threads=None runs on more than one thread only from this much work per
#: iteration ("full") or per mini-batch ("batch"), in the units of
#: :func:`fastnn.backends._threads.work_units` (multiply-adds plus ACT_COST per
#: activation value); below it the second thread's start and join cost more
#: than it saves.
#: Full batch, measured on an idle 2-core machine (a sweep of nets and m, best
#: of 5 runs, 1 vs 2 threads): 2-4-1 tanh gains 1.55x at m = 10 000 (5.2e5
#: units) and loses at m = 2000 (1e5: 0.73x); 20-16-1 gains 1.13x at m = 2000
#: (9.4e5) and loses at m = 400 (1.9e5: 0.5x) -- the crossover sits near
#: 3e5-5e5 units. A mini-batch starts and joins the team twice (forward,
#: backward) around a serial update, so a second thread pays later. Measured
#: (digits 64-64-10, median of 5, 1 vs 2 threads, little other load): batch 128
#: (0.68M units) 0.90 vs 1.16 ms per epoch, 256 (1.4M) 0.97 vs 1.11, 512 (2.7M)
#: 1.22 vs 1.05.
AUTO_THREADS_MIN_WORK = {"full": 500_000, "batch": 2_000_000}

#: Layer 1 in one pass over X per iteration (update fused with the next
#: forward) when its output is at most this wide and X is at least ONEPASS_MIN_BYTES.
ONEPASS_MAX_N1 = 32
ONEPASS_MIN_BYTES = 4 << 20
#: ``gram=None`` never allocates a Gram matrix X^T X (m x m) larger than this.
GRAM_MAX_BYTES = 256 << 20


def _cap(ext, threads, m):
    """``threads`` as this build runs them: one without OpenMP, and no more
    than the m examples (every thread gets a non-empty chunk)."""
    return max(1, min(int(threads), m)) if ext.HAVE_OPENMP else 1


def _threads_for(ext, threads, Ws, m):
    """The thread count of a forward or backward outside training: the
    driver's policy (:mod:`fastnn.backends._threads`) at the full-batch
    threshold."""
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    if threads is None and _thread_policy.work_units(dims, m) < AUTO_THREADS_MIN_WORK["full"]:
        return 1  # known without asking the thread pools (threadpoolctl) for the budget
    decided = _thread_policy.decide(threads, dims, m, AUTO_THREADS_MIN_WORK["full"])
    return _cap(ext, decided.threads, m)


def forward(Ws, bs, acts, X, threads=None):
    """The contract's forward (:mod:`fastnn.backends._base`): one plan, one pass."""
    ext = _active()
    T = _threads_for(ext, threads, Ws, X.shape[1])
    net = ext._Net(list(Ws), list(bs), _codes(acts), X, T)
    with _blas.limit(1):
        net.forward()
    caches, A_prev = [], X
    for W, b, Z, A in zip(Ws, bs, net.Zs, net.As):
        caches.append(((A_prev, W, b), Z))
        A_prev = A
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=None, relu_grad_at_zero=1):
    """The contract's backward: a plan over the caches' Z and A, one pass."""
    ext = _active()
    Ws = [c[0][1] for c in caches]
    bs = [c[0][2] for c in caches]
    Zs = [np.ascontiguousarray(c[1]) for c in caches]
    As = [np.ascontiguousarray(c[0][0]) for c in caches[1:]] + [np.ascontiguousarray(AL)]
    X = np.ascontiguousarray(caches[0][0][0])
    net = ext._Net(Ws, bs, _codes(acts), X, _threads_for(ext, threads, Ws, X.shape[1]), Zs, As,
                   relu_grad_at_zero)
    net.set_Y(np.ascontiguousarray(Y, dtype=X.dtype))
    dWs = [np.empty_like(W) for W in Ws]
    dbs = [np.empty_like(b) for b in bs]
    with _blas.limit(1):
        net.backward_into(_losses.CODES[loss], dWs, dbs)
    return dWs, dbs


def _codes(acts):
    return [_act.CODES[a] for a in acts]


def _use_gram(Ws, X, num_iterations, gram=None):
    """Whether layer 1 trains through X^T X: ``gram`` True/False decides; None
    lets the cost model pick it when it saves at least half the work."""
    n0, m = X.shape
    if gram is not None:
        return bool(gram)
    if n0 <= m or m * m * X.itemsize > GRAM_MAX_BYTES:
        return False
    n1 = Ws[0].shape[0]
    # A product with fewer than ~8 output rows is bound by reading X, not by
    # its multiply-adds: price the direct path as if it had 8.
    direct = num_iterations * 2 * max(n1, 8) * n0 * m
    cost = n0 * m * m + num_iterations * n1 * m * m + n1 * n0 * m
    return cost < 0.5 * direct


def _use_onepass(Ws, X):
    onepass = current()["onepass"]
    if onepass is True or onepass is False:
        return onepass
    return Ws[0].shape[0] <= ONEPASS_MAX_N1 and X.nbytes >= ONEPASS_MIN_BYTES


class Engine:
    """One fit's training arithmetic in ``fastnn_ext`` (the contract in
    :mod:`fastnn.backends._base`): whole runs of iterations, or of epochs, per call, without
    the GIL.

    Full batch: one plan (``_Net``) over all of X, layer 1 in the mode
    ``fit.schedule.gram`` and the one-pass setting pick. Mini-batches: two
    plans share Ws and bs -- ``_net``, sized for one batch over gather
    buffers, trains; ``_full``, over all of X, only computes the recorded
    costs (an epoch's cost is over all m examples, before its first update);
    the batches are gathered from X^T and Y^T, copied once per fit. Both run
    on the batch's thread count, so no idle OpenMP team spins beside the batch
    loop. BLAS is held to one thread from here to :meth:`close` (each OpenMP
    thread calls it on its own chunk).
    """

    def __init__(self, fit):
        p, s = fit.problem, fit.schedule
        ext = _active()
        Ws, bs, g0 = list(fit.Ws), list(fit.bs), p.relu_grad_at_zero
        codes = [int(c) for c in p.codes]
        self._loss, self._lr = p.loss_code, s.learning_rate
        self._fresh = False  # whether _full's Z and A are the forward of the current parameters
        self._closed = False
        self._blas = contextlib.ExitStack()
        self._blas.enter_context(_blas.limit(1))
        try:
            rows = p.m if s.batch_size is None else min(s.batch_size, p.m)
            self.threads = T = _cap(ext, fit.threads, rows)  # what the plans run on
            self._full = ext._Net(Ws, bs, codes, p.X, T, None, None, g0)
            self._full.set_Y(p.Y)
            if s.batch_size is None:
                self._net = self._full
                if _use_gram(Ws, p.X, s.num_iterations, s.gram):
                    self._net.enable_gram()
                elif _use_onepass(Ws, p.X):
                    self._net.enable_onepass(current()["onepass_block_bytes"])
            else:
                Xb = np.empty((p.X.shape[0], s.batch_size), p.dtype)
                Yb = np.empty((p.Y.shape[0], s.batch_size), p.dtype)
                self._net = ext._Net(Ws, bs, codes, Xb, T, None, None, g0)
                self._net.set_Y(Yb)
                self._XT, self._YT = np.ascontiguousarray(p.X.T), np.ascontiguousarray(p.Y.T)
        except BaseException:
            self._blas.close()
            raise

    def cost(self):
        if not self._fresh:
            self._full.forward()
            self._fresh = True
        return self._full.cost(self._loss)

    def run(self, count, orders=None, last=False):
        if orders is None:
            if not self._fresh:
                self._net.forward()
            # A run ending training skips the forward after its last update.
            self._net.run(self._loss, self._lr, count, last)
            self._fresh = not last
        else:
            self._net.epochs(self._loss, self._lr, orders, self._XT, self._YT)
            self._fresh = False

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._net.finish_gram(self._lr)  # GRAM mode: W1 materialized; else nothing
        finally:
            self._blas.close()


def engine(fit):
    """The :class:`Engine` of ``fit`` (see :mod:`fastnn.backends._base`)."""
    return Engine(fit)
