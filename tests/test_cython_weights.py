"""Per-example weights (``sample_weight``) and the Poisson loss (``exp`` output)
on the Cython engine's own paths: full batch directly, layer 1 in one pass and
through Gram, mini-batches (one whose weights sum to 0), a weighted batch of
one (the general path, not the fused rank-1 step), two threads, float32, every
kernel set, a resumed fit, calls split anywhere -- against the loops oracle.
test_weights_poisson.py holds the generic cases (every backend with the
capabilities); these are the paths it does not reach. Small and pairwise.
"""

import numpy as np
import pytest

import fastnn
from fastnn import backends, optimizers
from fastnn.backends import _base

from _driver_cases import small_fit, train
from _helpers import assert_close, require_backend
from test_cython_backend import isa  # noqa: F401  (the fixture: every kernel set)

cb = require_backend("cython")
ORACLE = backends.get(backends.ORACLE)
M = 21
ZERO_BATCH = 5  # the "batch0" path's batches: the first one of every epoch weighs 0

def _weights(kind, rng, dtype):
    """None, all ones, or mixed: in [0, 2), every fourth 0, the first ZERO_BATCH 0."""
    if kind is None:
        return None
    if kind == "ones":
        return np.ones(M, dtype)
    w = rng.random(M) * 2
    w[::4] = 0
    w[:ZERO_BATCH] = 0
    return w.astype(dtype)


def _fit(output, dtype=np.float64, weights="mixed", hidden="tanh", iterations=4,
         unshuffled=False, **schedule):
    # Unshuffled epochs put the weightless examples 0..ZERO_BATCH-1 in one batch.
    orders = (lambda n: np.tile(np.arange(M, dtype=np.int64), (n, 1))) if unshuffled else None
    return small_fit(output, dtype, M, hidden, lambda rng, dt: _weights(weights, rng, dt),
                     orders, num_iterations=iterations, **schedule)


def _agree(got, want, rtol):
    (losses, costs), (want_losses, want_costs) = got, want
    assert [i for i, _ in losses] == [i for i, _ in want_losses]
    np.testing.assert_allclose([l for _, l in losses], [l for _, l in want_losses], rtol=rtol)
    assert [i for i, _ in costs] == [i for i, _ in want_costs]
    np.testing.assert_allclose([c for _, c in costs], [c for _, c in want_costs], rtol=rtol)


#        path       output      optimizer                            lambd keep_probs dtype
CASES = [("direct", "exp", None, 0.0, None, "float64"),
         ("direct2", "sigmoid", optimizers.Adam(), 0.2, (0.8,), "float64"),
         ("onepass", "exp", optimizers.SklearnAdam(), 0.1, None, "float64"),
         ("onepass2", "softmax", None, 0.3, (0.75,), "float32"),
         ("gram", "sigmoid", None, 0.0, None, "float64"),
         ("gram", "exp", None, 0.0, None, "float32"),
         ("batch0", "exp", optimizers.Momentum(), 0.2, (0.9,), "float64"),
         ("batch02", "softmax", optimizers.SklearnSGD(0.9, True), 0.1, None, "float64"),
         ("batch2", "exp", optimizers.RMSprop(), 0.0, (0.8,), "float32"),
         ("batch1", "sigmoid", optimizers.SklearnAdam(), 0.3, None, "float64"),
         ("batch1", "exp", None, 0.1, (0.7,), "float32"),
         ("batch0", "identity", optimizers.Adam(), 0.1, None, "float32")]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[5]}" for c in CASES])
def test_every_path_trains_weights_and_poisson_as_the_oracle(case):
    path, output, optimizer, lambd, keep_probs, dtype = case
    batch = {"batch0": ZERO_BATCH, "batch02": ZERO_BATCH, "batch2": 4, "batch1": 1}.get(path)
    threads = 2 if path.endswith("2") else 1
    options = dict(batch_size=batch, optimizer=optimizer, lambd=lambd, keep_probs=keep_probs,
                   gram=True if path == "gram" else None, unshuffled=path.startswith("batch0"))
    want_fit = _fit(output, **options)
    want = train(ORACLE, want_fit)
    fit = _fit(output, dtype=np.dtype(dtype), **options)
    with cb.settings(**({"onepass": True} if path.startswith("onepass") else {})):
        got = train(cb, fit, threads)
    assert fit.threads == threads
    if dtype == "float32":  # tracks the float64 oracle
        _agree(got, want, 1e-4)
        return
    _agree(got, want, 1e-9)
    assert_close(fit.Ws + fit.bs, want_fit.Ws + want_fit.bs, 1e-9, "parameters")
    if optimizer is not None:
        state = want_fit.optimizer_state
        assert_close([fit.optimizer_state[s][k] for s in state for k in state[s]],
                     [state[s][k] for s in state for k in state[s]], 1e-9, "optimizer state")


@pytest.mark.parametrize("batch,threads", [(None, 2), (4, 1), (1, 1)])
def test_all_ones_weights_train_as_no_weights(batch, threads):
    """Weights of 1 are the unweighted fit to rounding (the batch of one: the
    general path against the fused step)."""
    fits = {}
    for weights in ("ones", None):
        fits[weights] = _fit("exp", weights=weights, batch_size=batch, lambd=0.1,
                             optimizer=optimizers.Adam())
        train(cb, fits[weights], threads)
    assert_close(fits["ones"].Ws + fits["ones"].bs, fits[None].Ws + fits[None].bs, 1e-12,
                 "parameters")


@pytest.mark.parametrize("batch", [None, 4])
def test_weighted_runs_are_reproducible_and_split_anywhere(batch):
    """Two threads, weights, poisson, dropout: run(a); run(b) is bitwise
    run(a + b), and a second fit is bitwise the first."""
    results = []
    for splits in ([3], [1, 2], [3]):
        fit = _fit("exp", batch_size=batch, optimizer=optimizers.SklearnAdam(), lambd=0.1,
                   keep_probs=(0.8,), learning_rate=0.02)
        fit.threads = 2
        engine = cb.engine(fit)
        try:
            costs = [engine.cost()]
            losses = [engine.run(n, None if batch is None
                                 else _base.epoch_orders(fit.rng, M, n)) for n in splits]
            costs.append(engine.cost())
        finally:
            engine.close()
        results.append([np.array(costs), np.concatenate(losses)] + fit.Ws + fit.bs)
    for arrays in results[1:]:
        for a, b in zip(arrays, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("variant", ["vec", "novec"])
def test_every_kernel_set_trains_weights_and_poisson(isa, variant):
    """exp (libmvec in the vec sets), the weighted losses and means, compiled
    into each kernel set."""
    for options in (dict(batch_size=ZERO_BATCH, optimizer=optimizers.SklearnAdam(), lambd=0.3,
                         unshuffled=True),
                    dict(optimizer=optimizers.SklearnSGD(0.9, True), lambd=0.1)):
        want_fit = _fit("exp", **options)
        want = train(ORACLE, want_fit)
        fit = _fit("exp", **options)
        with cb.settings(variant=variant):
            got = train(cb, fit)
        _agree(got, want, 1e-9)
        assert_close(fit.Ws, want_fit.Ws, 1e-9, "weights")


@pytest.mark.parametrize("dtype,threads", [("float64", 2), ("float32", 1)])
def test_forward_backward_and_cost_with_weights_match_the_oracle(dtype, threads):
    """Network's forward, backward (masks, L2) and cost on the plans of a call."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, 40))
    Y = rng.poisson(1.0, (2, 40)).astype(float)
    w = rng.random(40) * 3
    w[::3] = 0
    rtol = 1e-12 if dtype == "float64" else 1e-4
    out = {}
    for backend in ("loops", "cython"):
        net = fastnn.Network([3, 6, 5, 2], hidden_activation="tanh", output_activation="exp",
                             init="xavier", seed=3, backend=backend, dtype=dtype,
                             threads=threads if backend == "cython" else None)
        AL, caches = net.forward(X, keep_prob=(0.7, 0.8), rng=np.random.default_rng(0))
        grads = net.backward(AL, Y, caches, keep_prob=(0.7, 0.8), lambd=0.4, sample_weight=w)
        out[backend] = (AL, grads, net.cost(X, Y, lambd=0.4, sample_weight=w))
    ref = out["loops"]
    assert_close([out["cython"][0]], [ref[0]], rtol, "AL")
    assert_close([out["cython"][1][k] for k in ref[1]], list(ref[1].values()), rtol, "gradients")
    assert_close([out["cython"][2]], [ref[2]], rtol, "cost")


def test_a_resumed_weighted_fit_continues_as_the_oracle():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 24))
    Y = rng.poisson(2.0, (1, 24)).astype(float)
    w = rng.random(24)
    nets = {}
    for backend in ("loops", "cython"):
        net = fastnn.Network([3, 5, 1], hidden_activation="relu", output_activation="exp",
                             init="xavier", seed=3, backend=backend)
        for resume in (False, True):
            net.fit(X, Y, learning_rate=0.01, num_iterations=3, batch_size=7, optimizer="adam",
                    lambd=0.2, sample_weight=w, seed=4, resume=resume)
        nets[backend] = net
    ref = nets["loops"].params
    assert nets["cython"].optimizer_steps_ == nets["loops"].optimizer_steps_ == 6 * 4
    assert_close([nets["cython"].params[k] for k in ref], list(ref.values()), 1e-9, "parameters")


def test_the_kernels_refuse_weight_arrays_that_do_not_fit_the_plan():
    fit = _fit("exp", batch_size=4)
    engine = cb.engine(fit)
    try:
        for bad in (np.ones(5), np.ones(4, np.float32), np.ones((1, 4))):  # the batch's 4
            with pytest.raises(ValueError, match="sample_weight"):
                engine._net.set_weights(bad)
        orders = _base.epoch_orders(fit.rng, M, 1)
        with pytest.raises(ValueError, match="WS"):  # a weighted plan needs the weights
            engine._net.epochs(2, 0.1, orders, engine._XT, engine._YT)
        with pytest.raises(ValueError, match="WS"):
            engine._net.epochs(2, 0.1, orders, engine._XT, engine._YT, WS=np.ones(M - 1))
    finally:
        engine.close()
