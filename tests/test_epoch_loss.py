"""Epoch losses as scikit-learn's ``loss_curve_`` counts them (``Schedule.epoch_loss``):
each epoch's sum over its batches of (B_k / m) (J_k + lambd / (2 B_k) sum ||W||^2), at
the parameters each batch starts from, handed to the driver's ``on_epoch``. The loops
oracle is checked against a transcription of scikit-learn's loop; every backend that
trains the second course is checked against the oracle; ``Network.fit`` hands them to its
``on_epoch`` and takes the caller's epoch orders (``orders``), checked."""

import types

import numpy as np
import pytest

from fastnn import Network, backends, losses, optimizers, regularization
from fastnn._validation_optim import epoch_losses, trains
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


@pytest.mark.parametrize("backend", [b for b in TRAINERS if hasattr(backends.get(b), "engine")])
def test_engines_report_epoch_losses_themselves(backend):
    """An engine of a backend that trains the second course reports the epoch
    losses itself (and says so): the driver's stand-in below is for the
    others, not for these."""
    module = backends.get(backend)
    assert epoch_losses(module), f"{backend} does not declare its engine's epoch losses"
    X, Y, Ws, bs = _problem()
    fit = _fit(X, Y, Ws, bs, batch_size=5)
    engine = module.engine(fit)
    try:
        got = engine.run(2, _base.epoch_orders(np.random.default_rng(7), X.shape[1], 2), True)
    finally:
        engine.close()
    want = _train(ORACLE, _fit(X, Y, Ws, bs, batch_size=5, num_iterations=2))
    np.testing.assert_allclose(got, [loss for _, loss in want], rtol=1e-9, atol=1e-12)


def test_a_fit_that_needs_epoch_losses_runs_under_the_python_engine_where_the_engine_has_none():
    numpy_backend = backends.get("numpy")
    used = []
    stand_in = types.SimpleNamespace(  # an engine that reports no epoch losses
        forward=numpy_backend.forward, backward=numpy_backend.backward,
        engine=lambda fit: used.append(fit) or _base.PythonEngine(numpy_backend, fit))
    assert not epoch_losses(stand_in)
    X, Y, Ws, bs = _problem()
    got = _train(stand_in, _fit(X, Y, Ws, bs, batch_size=5))
    assert not used
    assert got == _train(numpy_backend, _fit(X, Y, Ws, bs, batch_size=5))
    _base.train(stand_in, _fit(X, Y, Ws, bs, batch_size=5, epoch_loss=False), lambda i, c: None)
    assert len(used) == 1


# ---------------------------------------------------------------- Network.fit's on_epoch, orders
def _net_problem():
    X, Y, Ws, bs = _problem()
    params = {f"{p}{l}": a for l, (W, b) in enumerate(zip(Ws, bs), 1)
              for p, a in (("W", W), ("b", b))}
    return X, Y, lambda: Network.from_params(params, ["tanh", "softmax"], relu_grad_at_zero=0)


def test_network_fit_takes_the_callers_orders_and_reports_each_epoch():
    """``orders`` stands in for the shuffles draw for draw (the driver's own
    from the same Generator give bitwise the same fit); ``on_epoch`` gets
    the driver's epoch losses and stops after the epoch it returns False."""
    X, Y, make = _net_problem()
    options = dict(learning_rate=0.1, num_iterations=4, batch_size=5, optimizer="adam",
                   lambd=0.2)
    rng, asked, seen = np.random.default_rng(7), [], []

    def orders(count):
        asked.append(count)
        return _base.epoch_orders(rng, X.shape[1], count)

    ours = make().fit(X, Y, orders=orders, seed=1, on_epoch=lambda i, loss: seen.append((i, loss)),
                      **options)
    theirs = make().fit(X, Y, seed=7, **options)
    assert asked == [1] * 4 and [i for i, _ in seen] == [0, 1, 2, 3]
    for key, P in theirs.params.items():
        np.testing.assert_array_equal(ours.params[key], P)
    fit = _fit(X, Y, [W.copy() for W in make()._Ws], [b.copy() for b in make()._bs],
               optimizer=optimizers.Adam(), **{k: options[k] for k in
                                               ("learning_rate", "num_iterations", "batch_size",
                                                "lambd")})
    assert seen == _train(backends.get("numpy"), fit)
    stopped = make().fit(X, Y, seed=7, on_epoch=lambda i, loss: i < 1, **options)
    assert stopped.optimizer_steps_ == 2 * 5  # two epochs of five batches


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(on_epoch=3), TypeError, "on_epoch must be callable"),
    (dict(orders=np.zeros((1, 23), int)), TypeError, "orders must be callable"),
    (dict(orders=lambda n: np.tile(np.arange(23), (n, 1)), batch_size=None), ValueError,
     "needs batch_size"),
    (dict(orders=lambda n: np.zeros((n, 23), int)), ValueError,
     r"orders\(count\)\[0\] must be a permutation"),
    (dict(orders=lambda n: np.tile(np.arange(23), (n + 1, 1))), ValueError, r"shape \(count, m\)"),
    (dict(orders=lambda n: np.tile(np.arange(23.0), (n, 1))), TypeError, "integer"),
    (dict(orders=lambda n: np.tile(np.arange(1, 24), (n, 1))), ValueError, "permutation"),
])
def test_network_fit_checks_on_epoch_and_orders(kwargs, error, match):
    X, Y, make = _net_problem()
    net = make().fit(X, Y, learning_rate=0.1, num_iterations=1, optimizer="adam")
    before, state = net.params, net.optimizer_state_
    options = dict(learning_rate=0.1, num_iterations=2, batch_size=5, optimizer="adam",
                   resume=True)
    with pytest.raises(error, match=match):
        net.fit(X, Y, **{**options, **kwargs})
    for key, P in before.items():
        np.testing.assert_array_equal(net.params[key], P)
    for slot, arrays in state.items():
        for key, P in arrays.items():
            np.testing.assert_array_equal(net.optimizer_state_[slot][key], P)


def test_no_recorded_cost_the_same_fit_and_the_watch_reads_the_epoch_losses():
    """``cost_every=None``: no cost recorded (no forward over all m examples),
    bitwise the same parameters; a divergence still raises, seen in the epoch
    losses, the network left as it was."""
    X, Y, make = _net_problem()
    options = dict(learning_rate=0.1, num_iterations=3, batch_size=5, seed=3, optimizer="adam")
    seen = []
    quiet = make().fit(X, Y, cost_every=None, on_epoch=lambda i, loss: seen.append(i), **options)
    loud = make().fit(X, Y, **options)
    assert quiet.costs_ == [] and seen == [0, 1, 2] and len(loud.costs_) == 2
    for key, P in loud.params.items():
        np.testing.assert_array_equal(quiet.params[key], P)
    net = make()
    before, seen = net.params, []
    with pytest.raises(FloatingPointError, match="diverged at iteration 0"):
        net.fit(X * 1e6, Y, learning_rate=1e6, num_iterations=50, batch_size=5, cost_every=None,
                on_epoch=lambda i, loss: seen.append(loss))
    assert len(seen) < 50  # stopped at the first epoch the watch refused
    for key, P in before.items():
        np.testing.assert_array_equal(net.params[key], P)
