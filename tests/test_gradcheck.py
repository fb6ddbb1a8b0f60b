"""Backprop against central finite differences, on every backend."""

import numpy as np
import pytest

import fastnn
from fastnn import activations

from _helpers import binary_data, regression_data

COMBOS = [(h, "sigmoid", "cross_entropy") for h in activations.names()] + \
         [(h, out, "mse") for h in activations.names() for out in ("identity", "sigmoid")]


@pytest.mark.parametrize("hidden,output,loss", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_gradient_check_every_activation_and_loss(backend, hidden, output, loss):
    # Xavier-scale weights keep every Z well away from the ReLU kink at 0 for
    # this data (checked below), where finite differences are not defined.
    make = binary_data if loss == "cross_entropy" else regression_data
    X, Y = make(3, 8, seed=2)
    net = fastnn.Network([3, 4, 3, 1], [hidden, hidden, output], loss=loss, init="xavier",
                         seed=4, backend=backend)
    _, caches = net.forward(X)
    assert min(np.min(np.abs(Z)) for _, Z in caches) > 1e-4
    diff = fastnn.gradient_check(net, X, Y)
    assert diff < 2e-7, f"relative difference {diff:.3g}"


@pytest.mark.parametrize("hidden", activations.names())
@pytest.mark.parametrize("g0", [1, 0])
def test_gradient_check_softmax_output(backend, hidden, g0):
    # Categorical cross-entropy on a softmax output, 4 classes; the ReLU
    # convention cannot matter away from the kink (checked below).
    X = np.random.default_rng(2).standard_normal((3, 8))
    labels = np.array([0, 1, 2, 3, 3, 2, 1, 0])
    net = fastnn.Network([3, 4, 3, 4], hidden_activation=hidden, output_activation="softmax",
                         init="xavier", seed=4, backend=backend, relu_grad_at_zero=g0)
    _, caches = net.forward(X)
    assert min(np.min(np.abs(Z)) for _, Z in caches) > 1e-4
    diff = fastnn.gradient_check(net, X, labels)
    assert diff < 2e-7, f"relative difference {diff:.3g}"


def test_gradient_check_detects_a_wrong_gradient(monkeypatch):
    # The check must be able to fail: corrupt db of the last layer.
    X, Y = binary_data(3, 8, seed=2)
    net = fastnn.Network([3, 4, 1], init="xavier", seed=4)
    original = net.backward

    def broken(AL, Y, caches):
        grads = original(AL, Y, caches)
        grads["db2"] = grads["db2"] * 1.01
        return grads

    monkeypatch.setattr(net, "backward", broken)
    assert fastnn.gradient_check(net, X, Y) > 1e-4


def test_gradient_check_checks_float32_networks_in_float64():
    X, Y = binary_data(3, 8, seed=2)
    net = fastnn.Network([3, 4, 1], hidden_activation="tanh", init="xavier", seed=4,
                         dtype="float32")
    assert fastnn.gradient_check(net, X, Y) < 2e-7


def test_gradient_check_validates_arguments():
    net = fastnn.Network([3, 2, 1])
    X, Y = binary_data(3, 4)
    with pytest.raises(TypeError, match="net"):
        fastnn.gradient_check({"W1": 1}, X, Y)
    with pytest.raises(ValueError, match="epsilon"):
        fastnn.gradient_check(net, X, Y, epsilon=0)
    with pytest.raises(ValueError, match="X must have shape"):
        fastnn.gradient_check(net, X[:2], Y)
