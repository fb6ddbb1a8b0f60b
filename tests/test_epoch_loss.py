"""Epoch losses as scikit-learn's ``loss_curve_`` counts them (``Schedule.epoch_loss``):
each epoch's sum over its batches of (B_k / m) (J_k + lambd / (2 B_k) sum ||W||^2), at
the parameters each batch starts from, handed to the driver's ``on_epoch``. The loops
oracle is checked against a transcription of scikit-learn's loop; every backend that
trains the second course is checked against the oracle."""

import numpy as np
import pytest

from fastnn import backends, losses, optimizers, regularization
from fastnn._validation_optim import trains
from fastnn.backends import _base

TRAINERS = backends.having("HAS_OPTIMIZERS")
ORACLE = backends.get(backends.ORACLE)


def _problem(dtype=np.float64, m=23, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    dims = [4, 5, classes]
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = np.ascontiguousarray(np.eye(classes, dtype=dtype)[:, rng.integers(0, classes, m)])
    Ws = [(rng.standard_normal((dims[l + 1], dims[l])) * 0.5).astype(dtype) for l in range(2)]
    bs = [(rng.standard_normal((dims[l + 1], 1)) * 0.1).astype(dtype) for l in range(2)]
    return X, Y, Ws, bs


def _fit(X, Y, Ws, bs, **schedule):
    options = dict(learning_rate=0.1, num_iterations=3, cost_every=10**9, epoch_loss=True)
    options.update(schedule)
    optimizer = options.get("optimizer")
    params = {f"{p}{l}": a for l, (W, b) in enumerate(zip(Ws, bs), 1) for p, a in (("W", W), ("b", b))}
    return _base.Fit(_base.Problem(X, Y, ("tanh", "softmax"), "cross_entropy", 0),
                     _base.Schedule(**options), [W.copy() for W in Ws], [b.copy() for b in bs],
                     rng=np.random.default_rng(7),
                     optimizer_state=None if optimizer is None else optimizer.init(params))


def _train(backend, fit, stop_after=None):
    seen = []

    def on_epoch(i, loss):
        seen.append((i, loss))
        return None if stop_after is None or i < stop_after else False

    _base.train(backend, fit, lambda i, cost: None, threads=1, on_epoch=on_epoch)
    return seen


def test_the_oracle_counts_the_loss_as_scikit_learn_does():
    X, Y, Ws, bs = _problem()
    fit = _fit(X, Y, Ws, bs, batch_size=5, lambd=0.3)
    seen = _train(ORACLE, fit)
    # scikit-learn's loop: accumulated_loss += batch loss * batch size, before the step.
    fit2 = _fit(X, Y, Ws, bs, batch_size=5, lambd=0.3)
    Wm, bm = fit2.Ws, fit2.bs
    orders = _base.epoch_orders(np.random.default_rng(7), X.shape[1], 3)
    expected = []
    for order in orders:
        total = 0.0
        for idx in _base.batches(order, 5):
            Xb, Yb = X[:, idx], Y[:, idx]
            AL, caches = ORACLE.forward(Wm, bm, ("tanh", "softmax"), Xb, 1)
            total += len(idx) * (losses.cost("cross_entropy", AL, caches[-1][1], Yb, "softmax")
                                 + regularization.l2_penalty(Wm, 0.3, len(idx)))
            dWs, dbs = ORACLE.backward(AL, Yb, caches, ("tanh", "softmax"), "cross_entropy", 1,
                                       0, 0.3)
            for W, b, dW, db in zip(Wm, bm, dWs, dbs):
                W -= 0.1 * dW
                b -= 0.1 * db
        expected.append(total / X.shape[1])
    assert [i for i, _ in seen] == [0, 1, 2]
    np.testing.assert_allclose([loss for _, loss in seen], expected, rtol=1e-12)
    for W, W_expected in zip(fit.Ws, Wm):
        np.testing.assert_allclose(W, W_expected, rtol=1e-12)


def test_on_epoch_returning_false_stops_after_that_epoch():
    X, Y, Ws, bs = _problem()
    fit = _fit(X, Y, Ws, bs, batch_size=5, num_iterations=10)
    seen = _train(ORACLE, fit, stop_after=1)
    assert [i for i, _ in seen] == [0, 1]
    assert fit.steps == 2 * 5  # two epochs of five batches


def test_a_run_without_epoch_loss_returns_nothing():
    X, Y, Ws, bs = _problem()
    fit = _fit(X, Y, Ws, bs, batch_size=5, epoch_loss=False)
    engine = _base.PythonEngine(ORACLE, fit)
    try:
        assert engine.run(1, _base.epoch_orders(fit.rng, X.shape[1], 1)) is None
    finally:
        engine.close()


CASES = [  # pairwise over optimizer, L2, dropout, batch size, dtype
    dict(batch_size=5),
    dict(batch_size=1, lambd=0.2, optimizer="adam"),
    dict(batch_size=8, keep_probs=(0.7,), optimizer="momentum"),
    dict(batch_size=None, lambd=0.1, keep_probs=(0.8,), optimizer="rmsprop"),
    dict(batch_size=6, optimizer="sklearn_adam", lambd=0.05, decay_rate=0.5),
    dict(batch_size=4, optimizer="sklearn_sgd", keep_probs=(0.9,)),
]


@pytest.mark.parametrize("backend", [b for b in TRAINERS if b != backends.ORACLE])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_every_trainer_reports_the_oracles_epoch_losses(backend, case):
    options = dict(CASES[case])
    if "optimizer" in options:
        name = options["optimizer"]
        options["optimizer"] = {**optimizers.OPTIMIZERS, **optimizers.SKLEARN_OPTIMIZERS}[name]()
    module = backends.get(backend)
    if options.get("optimizer") is not None and not trains(module, options["optimizer"].name):
        pytest.skip(f"{backend} does not train {options['optimizer'].name}")
    X, Y, Ws, bs = _problem()
    want_fit, got_fit = _fit(X, Y, Ws, bs, **options), _fit(X, Y, Ws, bs, **options)
    want, got = _train(ORACLE, want_fit), _train(module, got_fit)
    np.testing.assert_allclose([l for _, l in got], [l for _, l in want], rtol=1e-9, atol=1e-12)
    for W, W_want in zip(got_fit.Ws, want_fit.Ws):
        np.testing.assert_allclose(W, W_want, rtol=1e-9, atol=1e-12)
