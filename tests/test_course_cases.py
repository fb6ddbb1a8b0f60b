"""The course's own worked examples, through the public API, on every backend."""

import numpy as np
import pytest

import fastnn


def test_logistic_regression_worked_example(backend):
    # w = [[1], [2]], b = 2: the course's propagate() test case.
    net = fastnn.Network.from_params({"W1": np.array([[1.0, 2.0]]), "b1": np.array([[2.0]])},
                                     ["sigmoid"], backend=backend)
    X = np.array([[1.0, 2.0, -1.0], [3.0, 4.0, -3.2]])
    Y = np.array([[1, 0, 1]])
    AL, caches = net.forward(X)
    grads = net.backward(AL, Y, caches)
    np.testing.assert_allclose(grads["dW1"].T, [[0.99845601], [2.39507239]], rtol=1e-8)
    np.testing.assert_allclose(grads["db1"], [[0.00145557813678]], rtol=1e-10)
    assert net.cost(X, Y) == pytest.approx(5.80154531939, rel=1e-11)


def test_planar_regenerates_the_course_data():
    X, Y = fastnn.datasets.planar()
    assert X.shape == (2, 400) and Y.shape == (1, 400)
    np.testing.assert_allclose(X[:, 0], [1.20444229, 3.57611415], rtol=1e-8)
    assert set(np.unique(Y)) == {0.0, 1.0} and Y.sum() == 200
    X2, _ = fastnn.datasets.planar()
    np.testing.assert_array_equal(X, X2)


@pytest.mark.parametrize("maker", [fastnn.datasets.moons, fastnn.datasets.circles,
                                   fastnn.datasets.blobs])
def test_other_datasets_have_course_layout(maker):
    X, Y = maker(m=200, seed=3)
    assert X.shape == (2, 200) and Y.shape == (1, 200)
    assert Y.sum() == 100 and set(np.unique(Y)) == {0.0, 1.0}
    np.testing.assert_array_equal(X, maker(m=200, seed=3)[0])
    assert not np.array_equal(X, maker(m=200, seed=4)[0])


def test_dataset_rejects_odd_m():
    with pytest.raises(ValueError, match="m must be"):
        fastnn.datasets.planar(m=3)


def test_flower_network_learns(vector_backend, planar):
    # The course's 2-4-1 tanh network reaches ~90% on the flower.
    X, Y = planar
    net = fastnn.Network([2, 4, 1], hidden_activation="tanh", seed=2, backend=vector_backend)
    net.fit(X, Y, learning_rate=1.2, num_iterations=5000, cost_every=1000)
    assert net.accuracy(X, Y) > 0.85
    costs = [c for _, c in net.costs_]
    assert costs[-1] < 0.4 < costs[0]


def test_zero_init_keeps_hidden_units_identical(backend):
    # The symmetry problem: with W = 0, every hidden unit computes the same
    # function and receives the same gradient, forever.
    X, Y = fastnn.datasets.planar(m=40)
    X, Y = X[:, :30], Y[:, :30]  # unbalanced, so the output layer has a gradient at all
    net = fastnn.Network([2, 5, 3, 1], hidden_activation="sigmoid", init="zeros", backend=backend)
    net.fit(X, Y, learning_rate=0.5, num_iterations=30, cost_every=10)
    p = net.params
    for W, b in ((p["W1"], p["b1"]), (p["W2"], p["b2"])):
        # Identical up to summation order (NumPy's pairwise sums differ by an ulp per row).
        np.testing.assert_allclose(W, np.broadcast_to(W[:1], W.shape), rtol=1e-12)
        np.testing.assert_allclose(b, np.broadcast_to(b[:1], b.shape), rtol=1e-12)
    np.testing.assert_allclose(p["W2"], p["W2"][0, 0], rtol=1e-12)  # its inputs are identical too
    np.testing.assert_allclose(p["W3"], np.broadcast_to(p["W3"][:, :1], p["W3"].shape), rtol=1e-12)
    assert np.any(p["W3"] != 0)  # yet the output layer did learn something


def test_costs_recorded_as_the_course_prints_them(backend):
    X, Y = fastnn.datasets.planar(m=20)
    net = fastnn.Network([2, 3, 1], hidden_activation="tanh", seed=0, backend=backend)
    before = net.cost(X, Y)
    net.fit(X, Y, learning_rate=0.1, num_iterations=25, cost_every=10)
    # The course's every-100th (here every 10th), and the last iteration's.
    assert [i for i, _ in net.costs_] == [0, 10, 20, 24]
    # The cost of iteration 0 is computed before its update.
    assert net.costs_[0][1] == pytest.approx(before, rel=1e-12)
    assert all(isinstance(c, float) for _, c in net.costs_)
