"""What ``Network.fit`` does between checking its arguments and keeping the
result: scratch copies of the parameters and the optimizer's state, the
watches (divergence, progress bar, the user's callback) on each recorded cost,
the caller's epoch orders checked as they are drawn, and the one training
driver (:func:`fastnn.backends._base.train`).
"""

import dataclasses

import numpy as np

from . import _validation as _v
from . import _validation_optim as _vo
from . import _validation_weights as _vw
from .backends import _base as _driver
from ._watch import Divergence, ProgressBar

__all__ = ["run", "optimizer_start"]


def optimizer_start(net, schedule, resume):
    """``(state, steps)`` a fit starts from: zeros and 0, or with ``resume`` a
    copy of what the network's last fit left (the same optimizer required)."""
    optimizer = schedule.optimizer  # check_schedule resolved it ("gd" included)
    if not isinstance(resume, (bool, np.bool_)):
        raise TypeError(f"resume must be True or False; got {resume!r}")
    if not resume:
        return optimizer.init(net.params), 0
    previous = net._optimizer
    if previous is None:
        raise ValueError("resume=True: this network has no optimizer state yet (fit it once "
                         "first, without resume)")
    if previous[0] != optimizer:
        raise ValueError(f"resume=True continues the optimizer of the last fit, "
                         f"{previous[0]!r}; got {optimizer!r}")
    state = {slot: {k: v.copy() for k, v in d.items()} for slot, d in previous[1].items()}
    return state, previous[2]


def run(net, X, Y, learning_rate, num_iterations, cost_every, progress, gram, batch_size, seed,
        callback, course2, resume, on_epoch=None, orders=None, sample_weight=None):
    """Train ``net`` on (X, Y); its new ``(_state, _optimizer, threads_used_)``.

    Every argument is checked before any work; the network itself is not
    touched (it takes the returned state only when training succeeded).
    """
    # An F-contiguous X (the examples' rows, X.T, C-contiguous) is kept as it
    # is where the engine gathers its mini-batches from rows; copied otherwise.
    X = net._X(X, per_unit=3, rows=True)  # Z, A and dZ of every layer
    Y = net._Y(Y, X.shape[1])
    schedule = _v.check_schedule(learning_rate, num_iterations, cost_every, batch_size, gram,
                                 X.shape[1], net._backend_name,
                                 dict(course2, n_hidden=len(net._acts) - 1))
    rng = _v.check_seed("seed", seed)
    sample_weight = _vw.check_sample_weight(sample_weight, X.shape[1], net._dtype,
                                            net._backend_name, net._backend)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(i, cost), or None; "
                        f"got {callback!r}")
    _vo.check_on_epoch(on_epoch)
    if orders is not None and not callable(orders):
        raise TypeError(f"orders must be callable as orders(count) (the example orders of "
                        f"the next count epochs), or None; got {orders!r}")
    if orders is not None and schedule.batch_size is None:
        raise ValueError("orders gives the example order of each epoch of mini-batches; it "
                         "needs batch_size (a full batch has no order)")
    if on_epoch is not None:
        schedule = dataclasses.replace(schedule, epoch_loss=True)
    if not (X.flags.c_contiguous or _driver.reads_rows(net._backend, schedule)):
        X = _v.as_float_array("X", X, net._dtype)
    optimizer_state, steps = optimizer_start(net, schedule, resume)
    # Train on copies: on any failure, Ctrl-C included, the network keeps
    # its parameters.
    Ws = [W.copy() for W in net._Ws]
    bs = [b.copy() for b in net._bs]
    bar = ProgressBar(schedule.num_iterations) if progress else None
    watch = Divergence(net._loss, net._acts[-1], Y, bar)

    def on_cost(i, cost):
        if not watch.on_cost(i, cost):
            return False
        return callback is None or callback(i, cost) is not False

    def draw(count):  # the caller's orders, checked before an engine indexes with them
        return _vo.check_orders(orders(count), count, X.shape[1])

    if on_epoch is not None and schedule.cost_every is None:
        user_on_epoch = on_epoch
        watch.start_from_trivial()

        def on_epoch(i, loss):  # no recorded cost: the watch reads the epoch losses
            return watch.on_cost(i, loss) and user_on_epoch(i, loss) is not False

    fit = _driver.Fit(
        _driver.Problem(X, Y, tuple(net._acts), net._loss, net._relu_grad_at_zero,
                        sample_weight),
        schedule, Ws, bs, rng=rng, optimizer_state=optimizer_state, steps=steps,
        orders=None if orders is None else draw)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            costs = _driver.train(net._backend, fit, on_cost, net._threads, on_epoch)
    finally:
        if bar is not None:
            bar.close()
    watch.check(Ws + bs, schedule.learning_rate)
    return ((Ws, bs, [(int(i), float(c)) for i, c in costs]),
            (schedule.optimizer, fit.optimizer_state, fit.steps),
            _threads_used(fit))


def _threads_used(fit):
    """``(threads, why)`` of the fit: the engine's own count where it ran fewer
    than decided (numba's NUMBA_NUM_THREADS, cython's one per example)."""
    ran = fit.threads if fit.threads_ran is None else fit.threads_ran
    if ran == fit.threads:
        return fit.threads, fit.threads_why
    return ran, (f"{fit.threads_why}; {ran} ran, "
                 f"{fit.threads_ran_why or 'the most this engine runs here'}")
