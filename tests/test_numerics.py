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
    assert len(net.costs_) == 2 and net.costs_[1][1] < net.costs_[0][1]
