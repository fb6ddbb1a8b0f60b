"""Beyond the lecture, on every backend: softmax outputs, the ReLU'(0)
convention, mini-batch gradient descent, the recorded costs and early stopping.

Every backend is held to the loops oracle (1e-9 relative in float64) on the
same seeds; mini-batch fits must be bitwise reproducible for a seed.
"""

import pickle

import numpy as np
import pytest

import fastnn
from fastnn import backends, losses

from _helpers import binary_data

RTOL = 1e-9


def _assert_close(actual, desired, rtol, what):
    scale = max(np.max(np.abs(desired)), np.finfo(np.float64).tiny)
    err = np.max(np.abs(np.asarray(actual, np.float64) - desired)) / scale
    assert err <= rtol, f"{what}: max relative difference {err:.3g} > {rtol:g}"


def _assert_same_fit(net, ref, rtol, exact=False):
    assert [i for i, _ in net.costs_] == [i for i, _ in ref.costs_]
    for (i, c), (_, c_ref) in zip(net.costs_, ref.costs_):
        if exact:
            assert c == c_ref, f"cost at iteration {i}"
        else:
            assert c == pytest.approx(c_ref, rel=rtol, abs=0), f"cost at iteration {i}"
    for key, value in ref.params.items():
        if exact:
            np.testing.assert_array_equal(net.params[key], value, err_msg=key)
        else:
            _assert_close(net.params[key], value, rtol, key)


def multiclass_data(n_x, m, K, seed=0):
    """Gaussian blobs, one per class: X (n_x, m), integer labels (m,)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, m)
    centers = 2.0 * rng.standard_normal((n_x, K))
    return centers[:, labels] + rng.standard_normal((n_x, m)), labels


def _one_hot(labels, K):
    Y = np.zeros((K, labels.size))
    Y[labels, np.arange(labels.size)] = 1.0
    return Y


# ---------------------------------------------------------------- softmax


def test_softmax_forward_is_a_distribution_and_stable():
    from fastnn.activations import softmax

    Z = np.array([[1000.0, -1000.0, 0.0], [1000.0, 0.0, 1e-300], [-1000.0, 1000.0, 0.0]])
    A = softmax(Z)
    assert np.all(np.isfinite(A))
    np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=1e-15)
    np.testing.assert_allclose(A[:, 0], [0.5, 0.5, 0.0], atol=1e-300)
    np.testing.assert_allclose(A[:, 2], 1 / 3, rtol=1e-15)


def test_categorical_cost_from_logits_matches_the_formula_and_never_overflows():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((4, 30))
    Y = _one_hot(rng.integers(0, 4, 30), 4)
    A = np.exp(Z) / np.exp(Z).sum(axis=0)
    textbook = -np.sum(Y * np.log(A)) / 30
    assert losses.cost("cross_entropy", A, Z, Y, "softmax") == pytest.approx(textbook, rel=1e-13)
    # Logits of 1e4 overflow e^z; the cost from the logits stays exact: the
    # wrong class by a margin of 2e4 costs 2e4.
    Z = np.array([[1e4, -1e4], [-1e4, 1e4]])
    Y = np.array([[0.0, 0.0], [1.0, 1.0]])
    A = fastnn.activations.softmax(Z)
    assert losses.cost("cross_entropy", A, Z, Y, "softmax") == pytest.approx(1e4, rel=1e-15)


@pytest.mark.parametrize("K", [2, 3, 5])
def test_softmax_network_matches_the_oracle(fast_backend, K):
    X, labels = multiclass_data(6, 70, K, seed=K)
    runs = {}
    for name in (backends.ORACLE, fast_backend):
        net = fastnn.Network([6, 5, 4, K], hidden_activation="tanh", output_activation="softmax",
                             init="xavier", seed=3, backend=name)
        AL, caches = net.forward(X)
        grads = net.backward(AL, labels, caches)
        net.fit(X, labels, learning_rate=0.5, num_iterations=12, cost_every=5)
        runs[name] = (AL, grads, net)
    (AL_ref, g_ref, ref), (AL, g, net) = runs[backends.ORACLE], runs[fast_backend]
    _assert_close(AL, AL_ref, RTOL, "A_L")
    np.testing.assert_allclose(AL.sum(axis=0), 1.0, rtol=1e-12)
    for key, value in g_ref.items():
        _assert_close(g[key], value, RTOL, key)
    _assert_same_fit(net, ref, RTOL)
    assert ref.costs_[-1][1] < ref.costs_[0][1]


def test_softmax_cost_is_finite_with_huge_logits(backend):
    # W chosen so Z_L reaches +-3e4: A_L rounds to exact 0/1 and e^z overflows,
    # but the cost comes from the logits (pytest turns RuntimeWarnings into errors).
    X = np.array([[1.0, -1.0, 2.0]])
    params = {"W1": np.array([[1e4], [-1e4], [0.0]]), "b1": np.zeros((3, 1))}
    net = fastnn.Network.from_params(params, ["softmax"], backend=backend)
    labels = np.array([1, 0, 2])
    cost = net.cost(X, labels)
    # Example 0: z = (1e4, -1e4, 0), true class 1: loss 2e4; example 1: true 0,
    # z = (-1e4, 1e4, 0): 2e4; example 2: z = (2e4, -2e4, 0), true 2: 2e4.
    assert cost == pytest.approx(2e4, rel=1e-12)
    AL, caches = net.forward(X)
    assert np.all(np.isfinite(AL))
    grads = net.backward(AL, labels, caches)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_integer_labels_and_one_hot_train_the_same(backend):
    X, labels = multiclass_data(4, 30, 3, seed=1)
    a = fastnn.Network([4, 3, 3], output_activation="softmax", seed=0, backend=backend)
    b = fastnn.Network([4, 3, 3], output_activation="softmax", seed=0, backend=backend)
    a.fit(X, labels, learning_rate=0.3, num_iterations=5)
    b.fit(X, _one_hot(labels, 3), learning_rate=0.3, num_iterations=5)
    _assert_same_fit(a, b, 0, exact=True)
    # (1, m) labels are as unambiguous as (m,).
    assert a.cost(X, labels.reshape(1, -1)) == a.cost(X, labels)


def test_softmax_predict_and_accuracy():
    X, labels = multiclass_data(3, 200, 4, seed=5)
    net = fastnn.Network([3, 8, 4], output_activation="softmax", init="he", seed=1)
    net.fit(X, labels, learning_rate=0.5, num_iterations=300)
    predicted = net.predict(X)
    assert predicted.shape == (1, 200) and predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted[0], np.argmax(net.predict_proba(X), axis=0))
    assert net.accuracy(X, labels) == pytest.approx(np.mean(predicted[0] == labels))
    assert net.accuracy(X, _one_hot(labels, 4)) == net.accuracy(X, labels)
    assert net.accuracy(X, labels) > 0.8  # separable blobs: well above chance (0.25)


# ---------------------------------------------------------------- relu_grad_at_zero


def _forward_with_Y(net, X, Y):
    """backward()'s arguments: (AL, Y, caches)."""
    AL, caches = net.forward(X)
    return AL, Y, caches


def _kinked_problem():
    """Integer data and weights: many Z entries of the hidden layers are exactly 0."""
    rng = np.random.default_rng(4)
    X = rng.integers(-2, 3, (4, 40)).astype(np.float64)
    params = {"W1": rng.integers(-1, 2, (6, 4)).astype(np.float64), "b1": np.zeros((6, 1)),
              "W2": rng.integers(-1, 2, (5, 6)).astype(np.float64), "b2": np.zeros((5, 1)),
              "W3": 0.1 * rng.standard_normal((1, 5)), "b3": np.zeros((1, 1))}
    Y = (rng.random((1, 40)) < 0.5).astype(np.float64)
    return X, Y, params


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu"])
@pytest.mark.parametrize("g0", [1, 0])
def test_relu_grad_at_zero_matches_the_oracle(fast_backend, hidden, g0):
    X, Y, params = _kinked_problem()
    acts = [hidden, hidden, "sigmoid"]
    ref = fastnn.Network.from_params(params, acts, backend=backends.ORACLE,
                                     relu_grad_at_zero=g0)
    zeros = sum(int(np.sum(c[1] == 0)) for c in ref.forward(X)[1][:2])
    assert zeros > 20  # the convention is exercised
    net = ref.to(fast_backend)
    assert net.relu_grad_at_zero == g0
    g_ref = ref.backward(*_forward_with_Y(ref, X, Y))
    g = net.backward(*_forward_with_Y(net, X, Y))
    for key, value in g_ref.items():
        _assert_close(g[key], value, RTOL, key)
    ref.fit(X, Y, learning_rate=0.05, num_iterations=6, cost_every=2)
    net.fit(X, Y, learning_rate=0.05, num_iterations=6, cost_every=2)
    _assert_same_fit(net, ref, RTOL)


@pytest.mark.parametrize("output", ["relu", "leaky_relu"])
@pytest.mark.parametrize("g0", [1, 0])
def test_relu_grad_at_zero_reaches_a_relu_output(fast_backend, output, g0):
    # mse on a ReLU output: dZ_L = (A_L - Y) g'(Z_L), with Z_L exactly 0 often.
    X, Y, params = _kinked_problem()
    params["W3"] = np.array([[1.0, -1.0, 0.0, 1.0, -1.0]])
    acts = ["relu", "relu", output]
    ref = fastnn.Network.from_params(params, acts, backend=backends.ORACLE, relu_grad_at_zero=g0)
    AL, caches = ref.forward(X)
    assert int(np.sum(caches[-1][1] == 0)) > 5
    net = ref.to(fast_backend)
    g_ref = ref.backward(AL, Y, caches)
    AL_net, caches_net = net.forward(X)
    g = net.backward(AL_net, Y, caches_net)
    for key, value in g_ref.items():
        _assert_close(g[key], value, RTOL, key)
    ref.fit(X, Y, learning_rate=0.05, num_iterations=4, cost_every=1, batch_size=16, seed=1)
    net.fit(X, Y, learning_rate=0.05, num_iterations=4, cost_every=1, batch_size=16, seed=1)
    _assert_same_fit(net, ref, RTOL)


@pytest.mark.parametrize("hidden,slope", [("relu", 0.0), ("leaky_relu", 0.01)])
def test_relu_grad_at_zero_is_the_one_sided_derivative(hidden, slope):
    X, Y, params = _kinked_problem()
    grads = {}
    for g0 in (1, 0):
        net = fastnn.Network.from_params(params, [hidden, hidden, "sigmoid"], relu_grad_at_zero=g0)
        AL, caches = net.forward(X)
        grads[g0] = net.backward(AL, Y, caches)
    # The conventions differ exactly where some hidden Z is 0, and only there.
    assert not np.array_equal(grads[1]["dW1"], grads[0]["dW1"])
    from fastnn.activations import derivative

    Z = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(derivative(hidden, Z, None, 1), [slope, 1.0, 1.0])
    np.testing.assert_array_equal(derivative(hidden, Z, None, 0), [slope, slope, 1.0])


def _course_reference_fit(X, Y, params, learning_rate, iterations):
    """The course's assignment code for the L-layer model (relu hidden, sigmoid
    output, dZ[Z <= 0] = 0), written independently of fastnn."""
    p = {k: v.copy() for k, v in params.items()}
    L = len(p) // 2
    m = X.shape[1]
    costs = []
    for i in range(iterations):
        caches, A = [], X
        for l in range(1, L + 1):
            Z = p[f"W{l}"] @ A + p[f"b{l}"]
            caches.append((A, Z))
            A = 1 / (1 + np.exp(-Z)) if l == L else np.maximum(0, Z)
        costs.append(float(np.squeeze(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m)))
        dA = -(np.divide(Y, A) - np.divide(1 - Y, 1 - A))
        for l in range(L, 0, -1):
            A_prev, Z = caches[l - 1]
            if l == L:
                s = 1 / (1 + np.exp(-Z))
                dZ = dA * s * (1 - s)
            else:
                dZ = np.array(dA, copy=True)
                dZ[Z <= 0] = 0
            dW = dZ @ A_prev.T / m
            db = np.sum(dZ, axis=1, keepdims=True) / m
            dA = p[f"W{l}"].T @ dZ
            p[f"W{l}"] -= learning_rate * dW
            p[f"b{l}"] -= learning_rate * db
    return p, costs


def test_relu_grad_at_zero_0_reproduces_the_course_code(vector_backend):
    # The course's 4-layer model shape on integer (pixel-like) data, where ReLU
    # inputs of exactly 0 occur: with relu_grad_at_zero=0 fastnn computes what
    # the assignment's code computes.
    X, Y, params = _kinked_problem()
    expected, costs = _course_reference_fit(X, Y, params, 0.05, 8)
    net = fastnn.Network.from_params(params, ["relu", "relu", "sigmoid"], backend=vector_backend,
                                     relu_grad_at_zero=0)
    net.fit(X, Y, learning_rate=0.05, num_iterations=8, cost_every=1)
    assert [c for _, c in net.costs_] == pytest.approx(costs, rel=1e-9)
    for key, value in expected.items():
        _assert_close(net.params[key], value, 1e-9, key)


# ---------------------------------------------------------------- mini-batch


@pytest.mark.parametrize("batch_size", [1, 7, 16, 48])
def test_minibatch_matches_the_oracle(fast_backend, batch_size):
    # m = 48: batch 7 leaves a last batch of 6; batch 48 is one shuffled batch.
    X, Y = binary_data(5, 48, seed=2)
    runs = {}
    for name in (backends.ORACLE, fast_backend):
        net = fastnn.Network([5, 4, 3, 1], hidden_activation="tanh", init="xavier", seed=1,
                             backend=name)
        net.fit(X, Y, learning_rate=0.1, num_iterations=5, cost_every=2,
                batch_size=batch_size, seed=11)
        runs[name] = net
    _assert_same_fit(runs[fast_backend], runs[backends.ORACLE], RTOL)


def test_minibatch_softmax_matches_the_oracle(fast_backend):
    X, labels = multiclass_data(6, 50, 4, seed=3)
    runs = {}
    for name in (backends.ORACLE, fast_backend):
        net = fastnn.Network([6, 8, 4], output_activation="softmax", init="he", seed=2,
                             backend=name, relu_grad_at_zero=0)
        net.fit(X, labels, learning_rate=0.2, num_iterations=4, cost_every=1, batch_size=8,
                seed=5)
        runs[name] = net
    _assert_same_fit(runs[fast_backend], runs[backends.ORACLE], RTOL)


def test_minibatch_is_one_update_per_batch_in_the_seeded_order():
    # The definition, written out: epoch e shuffles with the e-th permutation
    # of default_rng(seed) and updates once per slice of batch_size.
    X, Y = binary_data(3, 10, seed=4)
    net = fastnn.Network([3, 2, 1], init="xavier", seed=0)
    start = net.params
    net.fit(X, Y, learning_rate=0.5, num_iterations=2, batch_size=4, seed=9)
    rng = np.random.default_rng(9)
    ref = fastnn.Network.from_params(start, net.activations)
    for _ in range(2):
        order = rng.permutation(10)
        for k in (0, 4, 8):  # batches of 4, 4, 2
            idx = order[k:k + 4]
            ref = _one_full_batch_step(ref, X[:, idx], Y[:, idx], 0.5)
    for key, value in ref.params.items():
        np.testing.assert_allclose(net.params[key], value, rtol=1e-13, err_msg=key)


def _one_full_batch_step(net, X, Y, learning_rate):
    return fastnn.Network.from_params(
        net.fit(X, Y, learning_rate=learning_rate, num_iterations=1).params, net.activations)


def test_minibatch_is_bitwise_reproducible(vector_backend):
    X, Y = binary_data(6, 300, seed=5)
    fits = []
    for _ in range(2):
        net = fastnn.Network([6, 10, 1], seed=3, init="he", backend=vector_backend)
        fits.append(net.fit(X, Y, learning_rate=0.1, num_iterations=6, cost_every=2,
                            batch_size=32, seed=123))
    _assert_same_fit(fits[0], fits[1], 0, exact=True)
    other = fastnn.Network([6, 10, 1], seed=3, init="he", backend=vector_backend)
    other.fit(X, Y, learning_rate=0.1, num_iterations=6, cost_every=2, batch_size=32, seed=124)
    assert not np.array_equal(other.params["W1"], fits[0].params["W1"])


def test_minibatch_generator_seed_is_used_as_given():
    X, Y = binary_data(3, 20, seed=6)
    a = fastnn.Network([3, 2, 1], seed=0).fit(X, Y, learning_rate=0.1, num_iterations=3,
                                              batch_size=5, seed=np.random.default_rng(8))
    b = fastnn.Network([3, 2, 1], seed=0).fit(X, Y, learning_rate=0.1, num_iterations=3,
                                              batch_size=5, seed=8)
    _assert_same_fit(a, b, 0, exact=True)


def test_minibatch_costs_are_over_all_examples_before_each_epoch(backend):
    X, Y = binary_data(4, 30, seed=7)
    net = fastnn.Network([4, 3, 1], seed=2, init="xavier", backend=backend)
    before = net.cost(X, Y)
    net.fit(X, Y, learning_rate=0.2, num_iterations=1, batch_size=10, seed=0)
    assert net.costs_ == [(0, pytest.approx(before, rel=1e-12))]


# ---------------------------------------------------------------- recorded costs, callback


@pytest.mark.parametrize("batch_size", [None, 9])
def test_last_iteration_cost_is_recorded(backend, batch_size):
    X, Y = binary_data(3, 27, seed=8)
    net = fastnn.Network([3, 4, 1], seed=1, init="xavier", backend=backend)
    net.fit(X, Y, learning_rate=0.3, num_iterations=7, cost_every=3, batch_size=batch_size,
            seed=0)
    assert [i for i, _ in net.costs_] == [0, 3, 6]
    net = fastnn.Network([3, 4, 1], seed=1, init="xavier", backend=backend)
    net.fit(X, Y, learning_rate=0.3, num_iterations=8, cost_every=3, batch_size=batch_size,
            seed=0)
    assert [i for i, _ in net.costs_] == [0, 3, 6, 7]
    # The last entry is the cost before the last update: one more iteration
    # from the recorded state reproduces it.
    again = fastnn.Network([3, 4, 1], seed=1, init="xavier", backend=backend)
    again.fit(X, Y, learning_rate=0.3, num_iterations=7, cost_every=100, batch_size=batch_size,
              seed=0)
    assert again.cost(X, Y) == pytest.approx(net.costs_[-1][1], rel=1e-12)


@pytest.mark.parametrize("batch_size", [None, 6])
def test_callback_stops_exactly_and_keeps_that_state(backend, batch_size):
    X, Y = binary_data(3, 24, seed=9)
    seen = []

    def stop_at_5(i, cost):
        seen.append(i)
        return i < 5

    net = fastnn.Network([3, 4, 1], seed=1, init="xavier", backend=backend)
    net.fit(X, Y, learning_rate=0.3, num_iterations=50, cost_every=1, batch_size=batch_size,
            seed=0, callback=stop_at_5)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert [i for i, _ in net.costs_] == [0, 1, 2, 3, 4, 5]
    # The network holds the parameters before iteration 5's update: those of a
    # 5-iteration fit, whose cost is the last one recorded.
    ref = fastnn.Network([3, 4, 1], seed=1, init="xavier", backend=backend)
    ref.fit(X, Y, learning_rate=0.3, num_iterations=5, cost_every=1, batch_size=batch_size,
            seed=0)
    for key, value in ref.params.items():
        np.testing.assert_array_equal(net.params[key], value, err_msg=key)
    assert net.cost(X, Y) == pytest.approx(net.costs_[-1][1], rel=1e-12)


def test_callback_returning_none_does_not_stop():
    X, Y = binary_data(3, 10)
    net = fastnn.Network([3, 2, 1], seed=0)
    net.fit(X, Y, learning_rate=0.1, num_iterations=4, cost_every=1, callback=lambda i, c: None)
    assert [i for i, _ in net.costs_] == [0, 1, 2, 3]


# ---------------------------------------------------------------- pickling


def test_network_pickles_on_every_backend(backend):
    X, labels = multiclass_data(3, 20, 3, seed=2)
    net = fastnn.Network([3, 4, 3], output_activation="softmax", seed=0, backend=backend,
                         relu_grad_at_zero=0)
    net.fit(X, labels, learning_rate=0.2, num_iterations=3)
    copy = pickle.loads(pickle.dumps(net))
    assert repr(copy) == repr(net) and copy.costs_ == net.costs_
    np.testing.assert_array_equal(copy.predict_proba(X), net.predict_proba(X))
    copy.fit(X, labels, learning_rate=0.2, num_iterations=2)  # a working network, own lock
    net.fit(X, labels, learning_rate=0.2, num_iterations=2)
    np.testing.assert_array_equal(copy.params["W1"], net.params["W1"])
