"""The cython backend's engine room in Python: the plans (``fastnn_ext``'s
``_Net``) a forward, a backward and a fit run on.

Everything here runs once per call or per fit, never per iteration: building a
plan from the arrays ``Network`` hands over, the thread count it runs on, and
which of the three ways layer 1 trains (direct, one pass over X, Gram) --
:func:`engine` is what the one training driver (:mod:`fastnn.backends._base`)
calls.
"""

import contextlib
import warnings

import numpy as np

from ... import activations as _act
from ... import losses as _losses
from ... import regularization as _reg
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
#: 3e5-5e5 units. A mini-batch starts and joins the team three times (forward,
#: backward, the update the team shares from PARALLEL_UPDATE_PARAMETERS
#: parameters on), so a second thread pays a little later. Measured (AMD EPYC
#: Zen 4, idle; NetworkClassifier with Adam on 4000 examples, best of 5, 1 vs 2
#: threads, 2026-12-05): 64-64-10 at batch 32 (1.7e5 units) 0.86x, 64 (3.4e5)
#: 1.04x, 100 (5.3e5) 1.08x, 128 (6.8e5) 1.18x; 64-100-10 at 64 (5.3e5)
#: 1.04x, 128 (1.1e6) 1.24x, 200 (1.7e6: scikit-learn's digits at its default
#: batch) 1.31x; 64-32-10 at 200 (5.4e5) 1.03x, 128 (3.5e5) 1.22x (noisy
#: there); 100-128-64-5 at 32 (7.3e5) 1.09x, 200 (4.6e6) 1.43x.
AUTO_THREADS_MIN_WORK = {"full": 500_000, "batch": 600_000}

#: Layer 1 in one pass over X per iteration (update fused with the next
#: forward) when its output is at most this wide and X is at least ONEPASS_MIN_BYTES.
ONEPASS_MAX_N1 = 32
ONEPASS_MIN_BYTES = 4 << 20
#: ``gram=None`` never allocates a Gram matrix X^T X (m x m) larger than this.
GRAM_MAX_BYTES = 256 << 20
#: A mini-batch fit's recorded cost (``cost_every``) goes over the m examples
#: this many at a time, through a plan of that many columns (and one for the
#: last, shorter block) refilled block by block, where those hold less than a
#: plan over all m: that allocates Z, A and dZ for every example -- 213 MB for
#: 45 000 examples on 100-128-64-5 in float64, faulted in afresh by each fit.
COST_BLOCK = 4096


def _cap(ext, threads, m, asked=False):
    """``(threads, why)`` as this build runs them: one without OpenMP, and no
    more than the m examples (every thread gets a non-empty chunk); one in a
    child forked after this process (or Numba's OpenMP) ran a team, with
    ``_threads.FORKED_WHY`` (seen: a fit asking for two threads there waited
    forever), and a warning where more were ``asked`` for -- start such
    workers with "spawn" or "forkserver" (joblib's loky does) to use more.
    ``why`` is "" where nothing but the build and m limited it."""
    T = max(1, min(int(threads), m)) if ext.HAVE_OPENMP else 1
    if T > 1 and _thread_policy.forked_after_openmp():
        if asked:
            warnings.warn(f"fastnn (cython): {_thread_policy.FORKED_WHY}; start worker "
                          f"processes with 'spawn' or 'forkserver' to use more",
                          RuntimeWarning, stacklevel=3)
        return 1, _thread_policy.FORKED_WHY
    if T > 1:
        _thread_policy.note_openmp_team()
    return T, ""


def _threads_for(ext, threads, Ws, m):
    """The thread count of a forward or backward outside training: the
    driver's policy (:mod:`fastnn.backends._threads`) at the full-batch
    threshold."""
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    if threads is None and _thread_policy.work_units(dims, m) < AUTO_THREADS_MIN_WORK["full"]:
        return 1  # known without asking the thread pools (threadpoolctl) for the budget
    decided = _thread_policy.decide(threads, dims, m, AUTO_THREADS_MIN_WORK["full"])
    return _cap(ext, decided.threads, m, asked=threads is not None)[0]


def _masks(masks, keep_probs):
    """The kernels' (masks, keep_probs) lists, one entry per layer: uint8 copies
    of the given 0/1 masks (None where a layer has none), or (None, None)."""
    if all(D is None for D in masks):
        return None, None
    return ([None if D is None else np.ascontiguousarray(np.asarray(D) != 0).view(np.uint8)
             for D in masks],
            [1.0 if D is None else float(k) for D, k in zip(masks, keep_probs)])


def forward(Ws, bs, acts, X, threads=None, dropout=None):
    """The contract's forward (:mod:`fastnn.backends._base`): one plan, one pass;
    ``dropout``'s masks applied in the kernel right after each layer's g."""
    ext = _active()
    T = _threads_for(ext, threads, Ws, X.shape[1])
    net = ext._Net(list(Ws), list(bs), _codes(acts), X, T)
    dropout = [None] * len(Ws) if dropout is None else list(dropout)
    masks, keeps = _masks([None if d is None else d[0] for d in dropout],
                          [1.0 if d is None else d[1] for d in dropout])
    with _blas.limit(1):
        net.forward(masks, keeps)
    caches, A_prev = [], X
    for W, b, Z, A, d in zip(Ws, bs, net.Zs, net.As, dropout):
        caches.append(((A_prev, W, b), Z) + (() if d is None else (d[0],)))
        A_prev = A
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=None, relu_grad_at_zero=1, lambd=0.0,
             keep_probs=None, sample_weight=None):
    """The contract's backward: a plan over the caches' Z and A, one pass; each
    cached mask applied (in the kernel) before g′, then (lambd / m) W added.
    ``sample_weight`` (m,): dZ_L's columns times the weights (in the kernel) and
    every m a mean's denominator becomes S, their sum (no gradient at S = 0)."""
    ext = _active()
    Ws = [c[0][1] for c in caches]
    bs = [c[0][2] for c in caches]
    Zs = [np.ascontiguousarray(c[1]) for c in caches]
    As = [np.ascontiguousarray(c[0][0]) for c in caches[1:]] + [np.ascontiguousarray(AL)]
    X = np.ascontiguousarray(caches[0][0][0])
    net = ext._Net(Ws, bs, _codes(acts), X, _threads_for(ext, threads, Ws, X.shape[1]), Zs, As,
                   relu_grad_at_zero)
    net.set_Y(np.ascontiguousarray(Y, dtype=X.dtype))
    m = X.shape[1]
    if sample_weight is not None:
        net.set_weights(np.ascontiguousarray(sample_weight, dtype=X.dtype))
        m = net.S
    dWs = [np.empty_like(W) for W in Ws]
    dbs = [np.empty_like(b) for b in bs]
    masks = [c[2] if len(c) == 3 else None for c in caches]
    keeps = [1.0] * len(caches) if keep_probs is None else list(keep_probs) + [1.0]
    masks, keeps = _masks(masks, keeps)
    with _blas.limit(1):
        net.backward_into(_losses.CODES[loss], dWs, dbs, masks, keeps)
    if lambd and m > 0:
        for dW, W in zip(dWs, Ws):
            dW += _reg.l2_gradient(W, lambd, m)
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
    ``fit.schedule.gram`` and the one-pass setting pick. Mini-batches: two plans
    share Ws and bs -- ``_net``, sized for one batch over gather buffers,
    trains; the recorded costs (an epoch's cost is over all m examples, before
    its first update) go through ``_full``, over all of X, or where that would
    hold more, through plans over blocks of COST_BLOCK columns
    (:meth:`_blocked_cost`), made when the first is asked; the batches are
    gathered from the rows of X^T and Y^T: an F-contiguous X's own memory
    (``HAS_ROW_BATCHES``: a scikit-learn X transposed is never copied), else a
    copy made once per fit. Both run on the batch's thread count, so no idle
    OpenMP team spins beside the batch loop. BLAS is held to one thread from
    here to :meth:`close` (each OpenMP thread calls it on its own chunk).

    The course's second part (``HAS_OPTIMIZERS``; the rules in
    ``OPTIMIZER_NAMES``, scikit-learn's two included): the training plan gets the
    update rule (``set_optimizer``: the optimizer, L2, the decay) and the
    optimizer's state -- ``fit.optimizer_state``'s arrays, updated in place by
    the kernels and handed back by :meth:`close` -- and with dropout the
    fit's mask key (``set_dropout``). The engine counts the iterations
    (epochs) for the decay and the updates (Adam's t, the masks' step) across
    calls, so ``run(a); run(b)`` is ``run(a + b)``. Layer 1 through Gram
    (``gram=True``, or the cost model's pick) rewrites plain gradient descent
    only; any other schedule trains layer 1 directly (or in one pass).

    Per-example weights (``problem.sample_weight``, ``HAS_SAMPLE_WEIGHT``):
    ``_full`` holds them (its S, their sum, is the cost's and a full batch's
    denominator; the block plans' costs are divided by their sum); the batch
    plan gets a gather buffer that ``epochs`` fills with each batch's weights,
    from the whole array, with its columns. Every path takes them (Gram
    included: its rewrite is linear in dZ1, which the weights scale), except the
    fused step of a batch of one, which a weighted fit leaves for the general
    one.

    ``schedule.epoch_loss``: :meth:`run` hands the kernels a float64 array they
    fill with each iteration's (epoch's) loss, read off the forward each step
    trains on; without it they get None and compute nothing of it.
    """

    def __init__(self, fit):
        p, s = fit.problem, fit.schedule
        self._ext = ext = _active()
        self._fit = fit
        self._loss, self._lr = p.loss_code, s.learning_rate
        self._fresh = False  # whether _full's Z and A are the forward of the current parameters
        self._closed = False
        self._i, self._t = 0, fit.steps  # iterations (epochs) run, updates taken
        self._per_epoch = None if s.batch_size is None else -(-p.m // s.batch_size)
        self._blas = contextlib.ExitStack()
        self._blas.enter_context(_blas.limit(1))
        try:
            rows = p.m if s.batch_size is None else min(s.batch_size, p.m)
            # what the plans run on
            self.threads, self.threads_why = _cap(ext, fit.threads, rows,
                                                  asked=fit.threads_why.startswith("threads="))
            T = self.threads
            self._full = None  # the plan over all m columns: cost() makes it when asked
            self._cost_plans = {}  # columns -> (plan, X, Y, weights buffers): _blocked_cost's
            if s.batch_size is None:
                self._net = self._whole()
                if s.plain and _use_gram(fit.Ws, p.X, s.num_iterations, s.gram):
                    self._net.enable_gram()
                elif _use_onepass(fit.Ws, p.X):
                    self._net.enable_onepass(current()["onepass_block_bytes"])
            else:
                self._net = self._buffered_plan(s.batch_size, T)[0]  # epochs() fills them
                # The examples as rows: an F-contiguous X (HAS_ROW_BATCHES) is read in place.
                self._XT, self._YT = np.ascontiguousarray(p.X.T), np.ascontiguousarray(p.Y.T)
            self._state = self._course2(ext, fit)
        except BaseException:
            self._blas.close()
            raise

    def _course2(self, ext, fit):
        """Give the training plan the schedule's rule and the optimizer's state;
        that state as contiguous arrays of the plan's dtype ({slot: {key: array}})."""
        p, s = fit.problem, fit.schedule
        if s.plain:
            return fit.optimizer_state
        name = "gd" if s.optimizer is None else s.optimizer.name
        hyper = {} if s.optimizer is None else s.optimizer.get_params()
        # The kernels' two averages: beta1 the gradients' (Momentum's beta,
        # either Adam's beta1, SklearnSGD's momentum), beta2 the squares' (RMSprop's beta).
        beta1 = hyper.get("beta1", hyper.get("momentum", hyper.get("beta", 0.0))) \
            if name != "rmsprop" else 0.0
        beta2 = hyper.get("beta2", hyper.get("beta", 0.0)) if name != "momentum" else 0.0
        state = {slot: {k: np.ascontiguousarray(a, dtype=p.dtype) for k, a in arrays.items()}
                 for slot, arrays in (fit.optimizer_state or {}).items()}
        keys = [f"d{n}{l}" for l in range(1, len(fit.Ws) + 1) for n in ("W", "b")]
        lists = {slot: [state[slot][k] for k in keys] if slot in state else None
                 for slot in ("v", "s")}
        self._net.set_optimizer(ext.OPTIMIZER_CODES[name], s.lambd, beta1, beta2,
                                hyper.get("epsilon", 0.0), s.decay_rate, s.time_interval,
                                lists["v"], lists["s"], bool(hyper.get("nesterov", False)))
        if s.keep_probs is not None:
            keeps = [float(k) for k in s.keep_probs] + [1.0]
            self._net.set_dropout(fit.dropout_key(), keeps,
                                  [_reg.mask_threshold(k) if k < 1 else 0 for k in keeps])
        return state

    def _whole(self):
        """The plan over all m columns of X (C-contiguous: a mini-batch fit
        given X's rows copies them to columns here, once, if its costs go
        through this plan)."""
        if self._full is None:
            p, fit = self._fit.problem, self._fit
            full = self._plan(np.ascontiguousarray(p.X), self.threads)
            full.set_Y(p.Y)
            full.set_weights(p.sample_weight)
            self._full = full
        return self._full

    def cost(self):
        s = self._fit.schedule
        if s.batch_size is not None and self._blocks_hold_less():
            J, S = self._blocked_cost()
        else:
            full = self._whole()
            if not self._fresh:
                full.forward()
                self._fresh = True
            J, S = full.cost(self._loss), full.S
        if not s.lambd:
            return J
        return J + _reg.l2_penalty(self._fit.Ws, s.lambd, S)

    def _blocks_hold_less(self):
        """Whether the block plans' buffers (X, Y, weights, and Z, A, dZ of
        every layer, for COST_BLOCK columns and for the last block) are
        smaller than the plan over all m's (Z, A, dZ, and X's column copy
        when X is not C-contiguous): wide inputs over few units keep it."""
        p, c = self._fit.problem, COST_BLOCK
        if p.m <= c:
            return False
        units = sum(W.shape[0] for W in self._fit.Ws)
        n0, nL = p.X.shape[0], p.Y.shape[0]
        blocks = (n0 + nL + 1 + 3 * units) * (c + p.m % c)
        whole = 3 * units * p.m + (0 if p.X.flags.c_contiguous else n0 * p.m)
        return blocks < whole

    def _blocked_cost(self):
        """``(J, S)`` over all m examples, COST_BLOCK columns at a time: each
        block's sum of (weighted) losses -- the kernels' mean over S = 1 --
        added in block order and divided once by S, m or the weights' sum
        (J = 0 where that is 0, as the kernels' mean)."""
        p = self._fit.problem
        total = 0.0
        for c0 in range(0, p.m, COST_BLOCK):
            c1 = min(p.m, c0 + COST_BLOCK)
            plan, Xb, Yb, wb = self._cost_plan(c1 - c0)
            np.copyto(Xb, p.X[:, c0:c1])
            np.copyto(Yb, p.Y[:, c0:c1])
            if wb is not None:
                np.copyto(wb, p.sample_weight[c0:c1])
            plan.S = 1.0
            plan.forward()
            total += plan.cost(self._loss)
        S = p.m if p.sample_weight is None else float(np.sum(p.sample_weight, dtype=np.float64))
        return (total / S if S > 0 else 0.0), S

    def _cost_plan(self, columns):
        """_blocked_cost's plan over ``columns`` examples and its X, Y and
        weights buffers (None: unweighted), made once per engine."""
        if columns not in self._cost_plans:
            self._cost_plans[columns] = self._buffered_plan(columns,
                                                            min(self.threads, columns))
        return self._cost_plans[columns]

    def _plan(self, X, threads):
        """A plan on X (n_0, columns) and ``threads`` that reads the fit's
        parameters in place, as training leaves them."""
        p, fit = self._fit.problem, self._fit
        return self._ext._Net(list(fit.Ws), list(fit.bs), [int(c) for c in p.codes], X,
                              threads, None, None, p.relu_grad_at_zero)

    def _buffered_plan(self, columns, threads):
        """``(plan, X, Y, weights)``: a plan on ``threads`` over buffers of
        ``columns`` examples (weights None: unweighted) that its caller fills
        -- a batch's (epochs) or a recorded cost's block. Line-aligned, as the
        plan's own buffers: threads split the columns at lines."""
        p, ext = self._fit.problem, self._ext
        Xb = ext._line_aligned((p.X.shape[0], columns), p.dtype)
        Yb = ext._line_aligned((p.Y.shape[0], columns), p.dtype)
        plan = self._plan(Xb, threads)
        plan.set_Y(Yb)
        wb = None
        if p.sample_weight is not None:
            wb = ext._line_aligned(columns, p.dtype)
            plan.set_weights(wb)
        return plan, Xb, Yb, wb

    def run(self, count, orders=None, last=False):
        s = self._fit.schedule
        dropout = s.keep_probs is not None
        # Schedule.epoch_loss: the kernels add up each batch's loss from the
        # forward its step trains on; None tells them to compute none of it.
        losses = np.zeros(count) if s.epoch_loss else None
        if orders is None:
            if not self._fresh and not dropout:
                self._net.forward()
            # A run ending training skips the forward after its last update;
            # with dropout each update runs its own masked forward.
            self._net.run(self._loss, self._lr, count, last, self._i, self._t, losses)
            self._fresh = not last and not dropout
            self._t += count
        else:
            self._net.epochs(self._loss, self._lr, orders, self._XT, self._YT, self._i,
                             self._t, losses, self._fit.problem.sample_weight)
            self._fresh = False
            self._t += count * self._per_epoch
        self._i += count
        return losses

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._net.finish_gram(self._lr)  # GRAM mode: W1 materialized; else nothing
        finally:
            self._fit.optimizer_state = self._state  # updated in place by the kernels
            self._blas.close()


def engine(fit):
    """The :class:`Engine` of ``fit`` (see :mod:`fastnn.backends._base`)."""
    return Engine(fit)
