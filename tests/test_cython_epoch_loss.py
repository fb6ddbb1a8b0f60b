"""Epoch losses (``Schedule.epoch_loss``) on the Cython engine's own paths: full
batch directly, layer 1 in one pass and through Gram, mini-batches, a batch of
one, two threads, float32 -- and the three costs (softmax's categorical, the
sigmoid's binary cross-entropy, squared error) -- against the loops oracle.
test_epoch_loss.py holds the generic cases (softmax, one thread, every
trainer); these are the paths it does not reach. Small and pairwise.
"""

import numpy as np
import pytest

from fastnn import backends, optimizers
from fastnn.backends import _base

from _driver_cases import small_fit, train
from _helpers import require_backend
from test_cython_backend import isa  # noqa: F401  (the fixture: every kernel set)

cb = require_backend("cython")
ORACLE = backends.get(backends.ORACLE)

#        path        output      optimizer                            lambd keep_probs dtype
CASES = [("onepass", "sigmoid", optimizers.SklearnAdam(), 0.2, None, "float64"),
         ("gram", "softmax", None, 0.0, None, "float64"),
         ("direct2", "identity", optimizers.SklearnSGD(0.9, True), 0.0, (0.8,), "float64"),
         ("batch2", "softmax", optimizers.Adam(), 0.3, None, "float64"),
         ("batch2", "sigmoid", optimizers.SklearnSGD(0.5, False), 0.1, (0.7,), "float32"),
         ("batch1", "identity", optimizers.Momentum(), 0.0, (0.9,), "float64"),
         ("batch1", "sigmoid", optimizers.SklearnAdam(), 0.4, None, "float32"),
         ("batch", "identity", optimizers.RMSprop(), 0.2, None, "float32"),
         ("onepass", "softmax", None, 0.0, (0.75,), "float32")]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[5]}" for c in CASES])
def test_every_path_reports_the_oracles_epoch_losses(case):
    path, output, optimizer, lambd, keep_probs, dtype = case
    batch = {"batch": 4, "batch2": 5, "batch1": 1}.get(path)
    threads = 2 if path.endswith("2") else 1
    options = dict(batch_size=batch, optimizer=optimizer, lambd=lambd, keep_probs=keep_probs,
                   gram=True if path == "gram" else None)
    want, want_costs = train(ORACLE, small_fit(output, dtype=np.float64, **options))
    fit = small_fit(output, dtype=np.dtype(dtype), **options)
    with cb.settings(**({"onepass": True} if path == "onepass" else {})):
        got, got_costs = train(cb, fit, threads)
    assert fit.threads == threads
    rtol = 1e-9 if dtype == "float64" else 1e-4
    assert [i for i, _ in got] == [i for i, _ in want] == list(range(4))
    np.testing.assert_allclose([l for _, l in got], [l for _, l in want], rtol=rtol)
    np.testing.assert_allclose([c for _, c in got_costs], [c for _, c in want_costs], rtol=rtol)


@pytest.mark.parametrize("batch", [None, 4])
def test_a_run_returns_each_epochs_loss_and_splits_change_no_bit(batch):
    """run(3) returns three losses, bitwise those of run(1) three times; without
    epoch_loss, run returns None."""
    results = []
    for splits in ([3], [1, 1, 1]):
        fit = small_fit("softmax", batch_size=batch, optimizer=optimizers.SklearnAdam(), lambd=0.1)
        engine = cb.engine(fit)
        try:
            engine.cost()
            losses = [engine.run(n, None if batch is None
                                 else _base.epoch_orders(fit.rng, 21, n)) for n in splits]
        finally:
            engine.close()
        assert all(l.dtype == np.float64 and l.shape == (n,) for l, n in zip(losses, splits))
        results.append(np.concatenate(losses))
    np.testing.assert_array_equal(results[0], results[1])
    fit = small_fit("softmax", batch_size=batch, epoch_loss=False)
    engine = cb.engine(fit)
    try:
        engine.cost()
        assert engine.run(2, None if batch is None else _base.epoch_orders(fit.rng, 21, 2)) is None
    finally:
        engine.close()


def test_the_kernels_refuse_a_losses_array_of_the_wrong_size():
    fit = small_fit("softmax", batch_size=4)
    engine = cb.engine(fit)
    try:
        with pytest.raises(ValueError, match="losses"):
            engine._net.epochs(0, 0.1, _base.epoch_orders(fit.rng, 21, 2), engine._XT,
                               engine._YT, 0, 0, np.zeros(3))
    finally:
        engine.close()


@pytest.mark.parametrize("variant", ["vec", "novec"])
def test_every_kernel_set_trains_scikit_learns_rules_with_their_losses(isa, variant):
    """scikit-learn's two rules and the epoch losses compiled into each kernel
    set (their update loops and the L2 sum are vectorized differently)."""
    for options in (dict(batch_size=5, optimizer=optimizers.SklearnAdam(), lambd=0.3),
                    dict(optimizer=optimizers.SklearnSGD(0.9, True), lambd=0.1)):
        want, _ = train(ORACLE, small_fit("softmax", **options))
        fit = small_fit("softmax", **options)
        with cb.settings(variant=variant):
            got, _ = train(cb, fit)
        np.testing.assert_allclose([l for _, l in got], [l for _, l in want], rtol=1e-9)
        want_fit = small_fit("softmax", **options)
        train(ORACLE, want_fit)
        for W, W_want in zip(fit.Ws, want_fit.Ws):
            np.testing.assert_allclose(W, W_want, rtol=1e-9, atol=1e-12)
