"""The driver's engine for a backend without one of its own: the lecture's
loop over the backend's ``forward``/``backward`` (see :mod:`._base`, whose
:func:`~fastnn.backends._base.train` runs it and which re-exports it)."""

import contextlib

import numpy as np

from .. import losses as _losses
from .. import regularization as _reg
from . import _blas, _malloc

__all__ = ["PythonEngine", "batches"]


def batches(order, batch_size):
    """The example indices of each mini-batch of one epoch, in order."""
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


class PythonEngine:
    """The lecture's loop over a backend's ``forward``/``backward``: forward,
    backward, then the optimizer's update (``W -= learning_rate * dW`` for
    gradient descent), per iteration or per mini-batch. The parameters are
    updated in place; BLAS runs on ``fit.threads`` threads, and a step's
    temporaries come from the heap (:mod:`._malloc`), until ``close()``.

    With ``problem.sample_weight``, each batch's weights (gathered in the order
    of its columns) go to ``backward(..., sample_weight=w)``, and its cost is
    the weighted mean with L2's term over their sum S (see :mod:`fastnn.losses`)."""

    def __init__(self, backend, fit):
        self._forward_fn, self._backward_fn = backend.forward, backend.backward
        self._fit = fit
        s = fit.schedule
        self._optimizer = None if s.optimizer is None or s.optimizer.name == "gd" else s.optimizer
        self._key = None if s.keep_probs is None else fit.dropout_key()
        self._full = None  # the forward over all of X at the current parameters
        self._rows = None  # X.T and Y.T, for mini-batches
        self._i = 0        # the iteration (epoch) the next run starts at
        self._t = fit.steps  # the updates taken (the driver counts them in fit.steps)
        with contextlib.ExitStack() as held:  # last: close() undoes it (or a failure here)
            held.enter_context(_blas.limit(fit.threads))
            held.enter_context(_malloc.step_allocations())
            self._held = held.pop_all()

    def _forward(self, X, dropout=None):
        f = self._fit
        # The second course's arguments only when used: any backend's forward/backward then.
        extra = () if dropout is None else (dropout,)
        return self._forward_fn(f.Ws, f.bs, f.problem.acts, X, f.threads, *extra)

    def _objective(self, AL, caches, Y, w):
        """The batch's cost: the (weighted) mean loss plus L2's term over m (or S)."""
        f, p = self._fit, self._fit.problem
        J = _losses.cost(p.loss, AL, caches[-1][1], Y, p.acts[-1], w)
        m = Y.shape[1] if w is None else _losses.weight_sum(w)
        return J + _reg.l2_penalty(f.Ws, f.schedule.lambd, m)

    def cost(self):
        p = self._fit.problem
        self._full = self._forward(p.X)
        return self._objective(*self._full, p.Y, p.sample_weight)

    def _step(self, X, Y, w, learning_rate, forward_out=None):
        f, p, s = self._fit, self._fit.problem, self._fit.schedule
        self._t += 1
        if forward_out is None:
            dropout = (None if self._key is None
                       else _reg.fit_masks(self._key, self._t, f.dims, X.shape[1], s.keep_probs))
            forward_out = self._forward(X, dropout)
        AL, caches = forward_out
        if s.epoch_loss:  # the batch's loss before its update: scikit-learn's loss_curve_ term
            self._loss += X.shape[1] / p.m * self._objective(AL, caches, Y, w)
        extra = () if not s.lambd and s.keep_probs is None else (s.lambd, s.keep_probs)
        weights = {} if w is None else {"sample_weight": w}
        dWs, dbs = self._backward_fn(AL, Y, caches, p.acts, p.loss, f.threads,
                                     p.relu_grad_at_zero, *extra, **weights)
        if self._optimizer is None:
            for W, b, dW, db in zip(f.Ws, f.bs, dWs, dbs):
                W -= learning_rate * dW
                b -= learning_rate * db
            return
        params, grads = {}, {}
        for l, (W, b, dW, db) in enumerate(zip(f.Ws, f.bs, dWs, dbs), start=1):
            params[f"W{l}"], params[f"b{l}"], grads[f"dW{l}"], grads[f"db{l}"] = W, b, dW, db
        new, f.optimizer_state = self._optimizer._update(params, grads, f.optimizer_state,
                                                         learning_rate, self._t)
        for l, (W, b) in enumerate(zip(f.Ws, f.bs), start=1):
            W[...], b[...] = new[f"W{l}"], new[f"b{l}"]

    def run(self, count, orders=None, last=False):
        p, s = self._fit.problem, self._fit.schedule
        full, self._full = self._full, None
        if self._key is not None:
            full = None  # the recorded cost's forward has no dropout
        losses = np.zeros(count) if s.epoch_loss else None
        w = p.sample_weight
        for e in range(count):
            learning_rate = s.learning_rate_at(self._i)
            self._i += 1
            self._loss = 0.0
            if orders is None:
                self._step(p.X, p.Y, w, learning_rate, full)
                full = None
            else:
                if self._rows is None:  # a batch's examples as rows: contiguous to gather
                    self._rows = (np.ascontiguousarray(p.X.T), np.ascontiguousarray(p.Y.T))
                XT, YT = self._rows
                for idx in batches(orders[e], s.batch_size):
                    Xb, Yb = np.ascontiguousarray(XT[idx].T), np.ascontiguousarray(YT[idx].T)
                    self._step(Xb, Yb, None if w is None else w[idx], learning_rate)
            if losses is not None:
                losses[e] = self._loss
        return losses

    def close(self):
        # The parameters and the optimizer state were updated in place.
        self._held.close()
