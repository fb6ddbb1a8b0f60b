"""Numerical safety: saturation, log(0), divergence -- on every backend."""

import warnings

import numpy as np
import pytest

import fastnn

from _helpers import regression_data


@pytest.fixture
def saturated(backend):
    # z = +-1000 at the output: sigmoid must give exactly 1 and 0 with no
    # overflow warning, and the cross-entropy must stay finite.
    net = fastnn.Network.from_params({"W1": np.array([[1000.0]]), "b1": np.array([[0.0]])},
                                     ["sigmoid"], backend=backend)
    return net, np.array([[1.0, -1.0]])


def test_sigmoid_saturates_without_overflow_warning(saturated):
    net, X = saturated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AL = net.predict_proba(X)
    np.testing.assert_array_equal(AL, [[1.0, 0.0]])


def test_cross_entropy_finite_where_prediction_is_exactly_0_or_1(saturated):
    net, X = saturated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        right = net.cost(X, [[1, 0]])
        wrong = net.cost(X, [[0, 1]])
    assert right == pytest.approx(0.0, abs=1e-300)
    # Each example is 1000 logits on the wrong side: L = softplus(1000) = 1000.
    assert wrong == pytest.approx(1000.0, rel=1e-12)


def test_gradients_finite_when_saturated(saturated):
    net, X = saturated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AL, caches = net.forward(X)
        grads = net.backward(AL, [[0, 1]], caches)
    # dZ = AL - Y = [1 - 0, 0 - 1] = [1, -1]: db = mean = 0, dW = mean(dZ * x) = (1 + 1) / 2.
    np.testing.assert_allclose(grads["db1"], [[0.0]], atol=1e-15)
    np.testing.assert_allclose(grads["dW1"], [[1.0]], rtol=1e-15)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_diverging_learning_rate_is_reported_and_parameters_kept(backend):
    X, Y = regression_data(3, 20, seed=3)
    net = fastnn.Network([3, 8, 1], hidden_activation="relu", output_activation="identity",
                         init="xavier", seed=0, backend=backend)
    before = net.params
    with pytest.raises(FloatingPointError, match="diverged.*learning_rate=50"):
        net.fit(X, Y * 100, learning_rate=50.0, num_iterations=200, cost_every=10)
    for key, value in before.items():
        np.testing.assert_array_equal(net.params[key], value)
    assert net.costs_ == []
    # A sane learning rate then trains the same network normally.
    net.fit(X, Y, learning_rate=0.01, num_iterations=20, cost_every=10)
    assert [i for i, _ in net.costs_] == [0, 10, 19]
    assert net.costs_[2][1] < net.costs_[1][1] < net.costs_[0][1]


@pytest.mark.parametrize("cost_every,num_iterations,where", [
    (100, 200, r"at iteration 100 \(the cost 5\.68e\+299 is over 10000 times"),
    # The last iteration's cost is recorded too, whatever cost_every is.
    (1000, 200, r"at iteration 199 \(the cost 8\.71e\+299 is over 10000 times"),
    # Diverging in the last update, after the last recorded cost: only the
    # parameters show it.
    (1000, 1, r"by the last iteration \(a parameter reached .*e\+297, past \+-1\.34e\+154\)"),
])
def test_finite_divergence_is_reported_and_parameters_restored(backend, planar, cost_every,
                                                              num_iterations, where):
    # The example: finite all along, weights near 1e298 by the end.
    X, Y = planar
    net = fastnn.Network([2, 4, 1], hidden_activation="tanh", seed=2, backend=backend)
    before = net.params
    with pytest.raises(FloatingPointError, match=rf"diverged {where}.*learning_rate=1e\+300"):
        net.fit(X, Y, learning_rate=1e300, num_iterations=num_iterations, cost_every=cost_every)
    for key, value in before.items():
        np.testing.assert_array_equal(net.params[key], value)
    assert net.costs_ == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_bounds_per_dtype(dtype):
    from fastnn._watch import COST_GROWTH, Divergence

    Y = np.array([[0.0, 1.0]])
    bound = np.sqrt(np.finfo(dtype).max)
    below = np.nextafter(np.array([[bound]], dtype), 0)
    above = np.nextafter(np.array([[bound]], dtype), np.inf)
    for params, diverged in (([below, -below], False), ([above], True), ([-above], True),
                             ([below, np.full((1, 1), np.nan, dtype)], True)):
        watch = Divergence("cross_entropy", "sigmoid", Y, None)
        assert watch.on_cost(0, 0.69)
        if diverged:
            with pytest.raises(FloatingPointError, match="by the last iteration"):
                watch.check(params, 0.1)
        else:
            watch.check(params, 0.1)
    # Costs: a rise that stays within COST_GROWTH of the trivial predictor's is allowed.
    watch = Divergence("cross_entropy", "sigmoid", Y, None)
    assert watch.on_cost(0, 1e-6) and watch.on_cost(10, 0.69 * COST_GROWTH * 0.99)
    assert not watch.on_cost(20, np.log(2) * COST_GROWTH * 1.01)
    with pytest.raises(FloatingPointError, match="at iteration 20"):
        watch.check([below], 0.1)


def test_a_transient_rise_then_convergence_is_not_divergence(backend):
    # At this learning rate the cost first climbs ~20x (a catapult along the
    # sharpest direction), then settles below its start: not divergence.
    X, Y = regression_data(3, 20, seed=3)
    net = fastnn.Network([3, 8, 1], hidden_activation="relu", output_activation="identity",
                         init="xavier", seed=2, backend=backend)
    net.fit(X, Y, learning_rate=0.7, num_iterations=300, cost_every=1)
    costs = [c for _, c in net.costs_]
    assert max(costs) > 10 * costs[0] and costs[-1] < 0.5 * costs[0]
