"""The public surface: construction, initialization, params, conversion, I/O."""

import numpy as np
import pytest

import fastnn
from fastnn import activations, backends

from _helpers import binary_data


def test_public_names():
    assert {"Network", "load", "gradient_check", "backends", "datasets"} <= set(fastnn.__all__)
    status = backends.available()
    assert list(status) == backends.names()
    assert all(v is True or (isinstance(v, str) and v) for v in status.values())
    for name in ("loops", "per_example", "numpy"):
        assert status[name] is True


def test_auto_is_the_fastest_backend_available_here():
    status = backends.available()
    expected = next(n for n in ("cython", "numba", "numpy") if status[n] is True)
    assert backends.resolve("auto") == expected
    assert backends.get("auto") is backends.get(expected)
    net = fastnn.Network([3, 2, 1], seed=0, backend="auto")
    assert net.backend == expected and net.to("auto").backend == expected
    assert [backends.resolve(n) for n in backends.names()] == backends.names()
    assert "auto" not in backends.names()  # a way to choose, not a backend to test


def test_auto_falls_back_to_numba_where_the_extension_is_not_built(monkeypatch):
    real = backends.available()
    monkeypatch.setattr(backends, "available", lambda: {
        **real, "cython": "not built: no working C compiler (false failed with exit code 1)"})
    fallback = "numba" if real["numba"] is True else "numpy"
    assert backends.resolve("auto") == fallback
    assert fastnn.Network([3, 2, 1], seed=0, backend="auto").backend == fallback


def test_backend_names_are_checked_and_the_choices_include_auto():
    with pytest.raises(ValueError, match=r"unknown backend 'fast'; expected one of \[.*'cython', 'auto'\]"):
        fastnn.Network([3, 1], backend="fast")
    with pytest.raises(TypeError, match=r"backend must be a str, one of \[.*'auto'\]; got NoneType"):
        backends.resolve(None)


def test_defaults_follow_the_course():
    net = fastnn.Network([3, 5, 2, 1])
    assert net.activations == ["relu", "relu", "sigmoid"]
    assert net.loss == "cross_entropy" and net.backend == "numpy" and net.dtype == "float64"
    assert net.layer_dims == [3, 5, 2, 1]
    assert fastnn.Network([3, 1], output_activation="identity").loss == "mse"
    assert fastnn.Network([3, 2, 1], ["tanh", "sigmoid"]).activations == ["tanh", "sigmoid"]


@pytest.mark.parametrize("init,std", [("random", lambda n: 0.01), ("xavier", lambda n: n ** -0.5),
                                      ("he", lambda n: (2 / n) ** 0.5)])
def test_init_scales(init, std):
    net = fastnn.Network([400, 300, 1], init=init, seed=0)
    W1 = net.params["W1"]
    assert W1.std() == pytest.approx(std(400), rel=0.02)
    assert abs(W1.mean()) < 0.01 * std(400)
    assert not np.any(net.params["b1"]) and not np.any(net.params["b2"])


def test_zeros_init_and_init_scale():
    assert not any(np.any(p) for p in fastnn.Network([3, 4, 1], init="zeros").params.values())
    W = fastnn.Network([300, 300, 1], init_scale=0.5, seed=1).params["W1"]
    assert W.std() == pytest.approx(0.5, rel=0.02)


def test_seeding_is_reproducible_and_leaves_global_state_alone():
    state = np.random.get_state()[1].copy()
    a = fastnn.Network([3, 4, 1], seed=42).params
    b = fastnn.Network([3, 4, 1], seed=np.random.default_rng(42)).params
    c = fastnn.Network([3, 4, 1], seed=43).params
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    np.testing.assert_array_equal(a["W1"], b["W1"])
    assert not np.array_equal(a["W1"], c["W1"])


def test_params_are_copies_both_ways():
    source = {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)), "W2": np.ones((1, 2)),
              "b2": np.zeros((1, 1))}
    net = fastnn.Network.from_params(source, ["tanh", "sigmoid"])
    source["W1"][:] = 5
    net.params["W1"][:] = 7
    np.testing.assert_array_equal(net.params["W1"], np.ones((2, 3)))
    assert list(net.params) == ["W1", "b1", "W2", "b2"]


def test_forward_caches_hold_copies_of_the_weights(backend):
    """Editing a cache in place (a hand-made gradient check, W1 += ...) leaves the
    network's parameters alone, on every backend; the cached values are its own."""
    X, _ = binary_data(3, 8, seed=0)
    net = fastnn.Network([3, 4, 1], seed=1, backend=backend)
    before = net.params
    _, caches = net.forward(X)
    for (A_prev, W, b), *_ in caches:
        W += 1.0
        b[:] = np.nan
    for l, ((A_prev, W, b), *_) in enumerate(caches, start=1):
        np.testing.assert_array_equal(W, before[f"W{l}"] + 1.0)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("keep_prob", [0, 1.5, float("nan"), -3])
def test_keep_prob_is_checked_without_a_hidden_layer(backend, keep_prob):
    """Logistic regression has no hidden layer to drop on: a keep_prob out of
    (0, 1] is still refused, naming it; one in (0, 1] drops nothing."""
    X, Y = binary_data(3, 8, seed=0)
    net = fastnn.Network([3, 1], seed=1, backend=backend)
    before = net.params
    with pytest.raises(ValueError, match="keep_prob"):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, keep_prob=keep_prob)
    with pytest.raises(ValueError, match="keep_prob"):
        net.forward(X, keep_prob=keep_prob)
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, before[key])
    np.testing.assert_array_equal(net.forward(X, keep_prob=0.5)[0], net.forward(X)[0])


def test_rng_is_checked_without_dropout():
    X, _ = binary_data(3, 8, seed=0)
    net = fastnn.Network([3, 4, 1], seed=1)
    with pytest.raises(TypeError, match="rng"):
        net.forward(X, rng="not a generator")
    with pytest.raises(ValueError, match="rng"):
        net.forward(X, rng=-1)
    np.testing.assert_array_equal(net.forward(X, rng=np.random.RandomState(0))[0],
                                  net.forward(X)[0])


def test_dtype_float32_holds_float32_everywhere(fast_backend):
    X, Y = binary_data(3, 12)
    net = fastnn.Network([3, 4, 1], dtype=np.float32, seed=0, backend=fast_backend)
    assert net.dtype == "float32"
    AL, caches = net.forward(X)
    assert AL.dtype == np.float32 and caches[0][1].dtype == np.float32
    grads = net.backward(AL, Y, caches)
    assert all(g.dtype == np.float32 for g in grads.values())
    net.fit(X, Y, learning_rate=0.1, num_iterations=3)
    assert all(p.dtype == np.float32 for p in net.params.values())


def test_to_moves_parameters_between_backends(backend):
    X, Y = binary_data(3, 12)
    net = fastnn.Network([3, 4, 1], init="xavier", seed=0).fit(X, Y, learning_rate=0.5,
                                                                num_iterations=10)
    moved = net.to(backend)
    assert moved.backend == backend and moved.activations == net.activations
    for key, value in net.params.items():
        np.testing.assert_array_equal(moved.params[key], value)
    np.testing.assert_allclose(moved.predict_proba(X), net.predict_proba(X), rtol=1e-13)


def test_predict_shapes_and_accuracy(backend):
    X, Y = binary_data(3, 12)
    net = fastnn.Network([3, 4, 1], init="xavier", seed=0, backend=backend)
    P = net.predict_proba(X)
    labels = net.predict(X)
    assert P.shape == labels.shape == (1, 12)
    assert set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels, (P > 0.5).astype(int))
    assert net.accuracy(X, Y) == pytest.approx(np.mean(labels == Y))
    regression = fastnn.Network([3, 1], output_activation="identity", backend=backend)
    np.testing.assert_array_equal(regression.predict(X), regression.predict_proba(X))
    with pytest.raises(ValueError, match="accuracy needs the cross_entropy loss"):
        regression.accuracy(X, Y)


def test_save_and_load_round_trip(tmp_path, backend):
    X, Y = binary_data(3, 12)
    net = fastnn.Network([3, 4, 2, 1], ["leaky_relu", "tanh", "sigmoid"], seed=0,
                         dtype="float32").fit(X, Y, learning_rate=0.5, num_iterations=5)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = fastnn.load(path, backend=backend)
    assert loaded.activations == net.activations and loaded.loss == net.loss
    assert loaded.dtype == "float32" and loaded.backend == backend
    for key, value in net.params.items():
        np.testing.assert_array_equal(loaded.params[key], value)


def test_load_validates_the_file(tmp_path):
    net = fastnn.Network([3, 4, 1], seed=0)
    path = tmp_path / "net.npz"
    net.save(path)
    with np.load(path) as data:
        content = dict(data)
    np.savez(tmp_path / "no_meta.npz", W1=content["W1"])
    with pytest.raises(ValueError, match="not a fastnn network file"):
        fastnn.load(tmp_path / "no_meta.npz")
    np.savez(tmp_path / "bad_act.npz", **{**content, "activations": np.array(["relu", "swish"])})
    with pytest.raises(ValueError, match=r"unknown activations\[1\] 'swish'"):
        fastnn.load(tmp_path / "bad_act.npz")
    np.savez(tmp_path / "bad_shape.npz", **{**content, "b2": np.zeros((2, 1))})
    with pytest.raises(ValueError, match=r"params\['b2'\] must have shape \(1, 1\)"):
        fastnn.load(tmp_path / "bad_shape.npz")
    np.savez(tmp_path / "future.npz", **{**content, "format_version": 99})
    with pytest.raises(ValueError, match="format_version 99"):
        fastnn.load(tmp_path / "future.npz")


def test_progress_bar_shows_the_latest_cost(capsys):
    X, Y = binary_data(3, 12)
    net = fastnn.Network([3, 4, 1], seed=0).fit(X, Y, learning_rate=0.1, num_iterations=30,
                                                 cost_every=10, progress=True)
    assert [i for i, _ in net.costs_] == [0, 10, 20, 29]
    shown = capsys.readouterr().out
    assert "training" in shown and "100%" in shown
    assert f"cost {net.costs_[-1][1]:.6f}" in shown


@pytest.mark.parametrize("name", activations.names())
def test_activation_derivatives_match_finite_differences(name):
    Z = np.linspace(-3, 3, 61)
    Z = Z[np.abs(Z) > 1e-3]  # away from the kink of relu/leaky_relu
    A = activations.forward(name, Z)
    h = 1e-6
    numeric = (activations.forward(name, Z + h) - activations.forward(name, Z - h)) / (2 * h)
    np.testing.assert_allclose(activations.derivative(name, Z, A), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name,expected", [("relu", 1.0), ("leaky_relu", 1.0), ("tanh", 1.0),
                                           ("sigmoid", 0.25), ("identity", 1.0)])
def test_derivative_at_zero_follows_the_lecture(name, expected):
    Z = np.zeros(3)
    assert np.all(activations.derivative(name, Z, activations.forward(name, Z)) == expected)


def test_leaky_relu_slope():
    np.testing.assert_allclose(activations.forward("leaky_relu", np.array([-2.0, 3.0])),
                               [-0.02, 3.0])
