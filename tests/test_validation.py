"""Bad input gets a clear error naming the argument, on every backend, and
leaves the network's parameters exactly as they were."""

import numpy as np
import pytest

import fastnn

from _helpers import binary_data

X_OK, Y_OK = binary_data(3, 10, seed=0)


def _with(X=None, Y=None):
    return (X_OK if X is None else X), (Y_OK if Y is None else Y)


def _nan_at(array, index):
    out = np.array(array, dtype=float)
    out[index] = np.nan
    return out


# (case id, X, Y, exception, message fragment)
BAD_DATA = [
    ("X-Y-m-mismatch", *_with(Y=Y_OK[:, :9]), ValueError, r"Y must have shape \(1, 10\)"),
    ("X-1d", *_with(X=X_OK[0]), ValueError, "X must be 2-D"),
    ("X-3d", *_with(X=X_OK[None]), ValueError, "X must be 2-D"),
    ("X-wrong-n_x", *_with(X=X_OK[:2]), ValueError, r"X must have shape \(n_x, m\) = \(3, m\)"),
    ("X-transposed", *_with(X=X_OK.T), ValueError, r"pass X\.T"),
    ("Y-2-rows", *_with(Y=np.vstack([Y_OK, Y_OK])), ValueError, r"Y must have shape \(1, 10\)"),
    ("Y-column", *_with(Y=Y_OK.T), ValueError, r"Y must have shape \(1, 10\) or \(10,\)"),
    ("m-zero", np.zeros((3, 0)), np.zeros((1, 0)), ValueError, r"at least one example"),
    ("X-nan", *_with(X=_nan_at(X_OK, (1, 4))), ValueError, r"X must be finite.*\(1, 4\)"),
    ("X-inf", *_with(X=np.where(X_OK > 1, np.inf, X_OK)), ValueError, "X must be finite"),
    ("Y-nan", *_with(Y=_nan_at(Y_OK, (0, 2))), ValueError, "Y must be finite"),
    ("Y-label-2", *_with(Y=Y_OK * 2), ValueError, r"labels in \{0, 1\}.*2\.0"),
    ("Y-label-half", *_with(Y=np.full((1, 10), 0.5)), ValueError, r"labels in \{0, 1\}"),
    ("X-strings", np.full((3, 10), "a"), Y_OK, TypeError, "X must be a real numeric array"),
    ("X-complex", X_OK + 1j, Y_OK, TypeError, "X must be a real numeric array"),
    ("X-object", np.array([[None] * 10] * 3), Y_OK, TypeError, "X must be a real numeric"),
    ("Y-strings", X_OK, np.array([["0"] * 10]), TypeError, "Y must be a real numeric array"),
    ("X-ragged", [[1.0, 2.0], [3.0]], Y_OK, TypeError, "X must be a numeric array"),
]


def _snapshot(net):
    return {k: v.copy() for k, v in net.params.items()}


def _assert_untouched(net, before):
    after = net.params
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


@pytest.fixture
def net(backend):
    return fastnn.Network([3, 4, 1], init="xavier", seed=0, backend=backend)


@pytest.mark.parametrize("case,X,Y,exc,match", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_fit_rejects_bad_data(net, case, X, Y, exc, match):
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2)
    _assert_untouched(net, before)
    assert net.costs_ == []


@pytest.mark.parametrize("case,X,Y,exc,match", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_cost_and_accuracy_reject_bad_data(net, case, X, Y, exc, match):
    with pytest.raises(exc, match=match):
        net.cost(X, Y)
    with pytest.raises(exc, match=match):
        net.accuracy(X, Y)


@pytest.mark.parametrize("case,X,exc,match", [
    (c[0], c[1], c[3], c[4]) for c in BAD_DATA if c[0].startswith(("X-", "m-"))
    and c[0] != "X-Y-m-mismatch"])
def test_predict_and_forward_reject_bad_X(net, case, X, exc, match):
    for method in (net.predict, net.predict_proba, net.forward):
        with pytest.raises(exc, match=match):
            method(X)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"learning_rate": 0}, ValueError, "learning_rate must be a positive"),
    ({"learning_rate": -0.1}, ValueError, "learning_rate must be a positive"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be a positive"),
    ({"learning_rate": "0.1"}, TypeError, "learning_rate must be a positive"),
    ({"num_iterations": 0}, ValueError, "num_iterations must be a positive int"),
    ({"num_iterations": -5}, ValueError, "num_iterations must be a positive int"),
    ({"num_iterations": 2.5}, TypeError, "num_iterations must be a positive int"),
    ({"num_iterations": True}, TypeError, "num_iterations must be a positive int"),
    ({"cost_every": 0}, ValueError, "cost_every must be a positive int"),
    ({"batch_size": 0}, ValueError, r"batch_size must be between 1 and m = 10"),
    ({"batch_size": 11}, ValueError, r"batch_size must be between 1 and m = 10"),
    ({"batch_size": 4.0}, TypeError, "batch_size must be None .* or a positive int"),
    ({"batch_size": True}, TypeError, "batch_size must be None .* or a positive int"),
    ({"batch_size": 4, "seed": "x"}, TypeError, "seed must be an int, a numpy.random.Generator"),
    ({"batch_size": 4, "seed": -1}, ValueError, "seed must be a non-negative int"),
    ({"callback": "print"}, TypeError, r"callback must be callable as callback\(i, cost\)"),
    ({"gram": "yes"}, TypeError, "gram must be True, False or None"),
])
def test_fit_rejects_bad_hyperparameters(net, kwargs, exc, match):
    before = _snapshot(net)
    args = {"learning_rate": 0.1, "num_iterations": 3, **kwargs}
    with pytest.raises(exc, match=match):
        net.fit(X_OK, Y_OK, **args)
    _assert_untouched(net, before)


def test_gram_with_batch_size_is_refused_where_gram_exists():
    net = next((fastnn.Network([3, 4, 1], seed=0, backend=name)
                for name in fastnn.backends.having("HAS_GRAM")), None)
    if net is None:
        pytest.skip("no available backend has the Gram rewrite")
    before = _snapshot(net)
    with pytest.raises(ValueError, match="gram=True .* cannot be combined with batch_size"):
        net.fit(X_OK, Y_OK, learning_rate=0.1, num_iterations=2, gram=True, batch_size=5)
    _assert_untouched(net, before)


LABELS = np.array([0, 2, 1, 1, 0, 2, 2, 1, 0, 0])
ONE_HOT = np.eye(3)[:, LABELS]

BAD_SOFTMAX_Y = [
    ("labels-out-of-range", np.where(LABELS == 2, 3, LABELS), ValueError,
     r"integers in 0\.\.2 \(the 3 output units\); found \[3\.0\]"),
    ("labels-negative", LABELS - 1, ValueError, r"integers in 0\.\.2.*found \[-1\.0\]"),
    ("labels-fractional", LABELS + 0.5, ValueError, r"integers in 0\.\.2"),
    ("labels-wrong-m", LABELS[:9], ValueError, r"Y must have shape \(3, 10\) \(one-hot\)"),
    ("labels-2d-not-a-row", LABELS.reshape(2, 5), ValueError,
     r"of shape \(10,\) or \(1, 10\); got \(2, 5\)"),
    ("labels-column", LABELS.reshape(10, 1), ValueError, r"got \(10, 1\)"),
    ("one-hot-two-ones", np.vstack([ONE_HOT[:2], np.ones((1, 10))]), ValueError,
     r"one-hot for a softmax output.*columns \[0, 2, 3, 4, 7\]"),
    ("one-hot-soft", ONE_HOT * 0.5 + 1 / 6, ValueError, "one-hot for a softmax output"),
    ("one-hot-transposed", ONE_HOT.T, ValueError, r"Y must have shape \(3, 10\) \(one-hot\)"),
    ("labels-nan", np.where(LABELS == 2, np.nan, LABELS), ValueError, "Y must be finite"),
]


@pytest.mark.parametrize("case,Y,exc,match", BAD_SOFTMAX_Y, ids=[c[0] for c in BAD_SOFTMAX_Y])
def test_softmax_fit_rejects_bad_labels(backend, case, Y, exc, match):
    net = fastnn.Network([3, 4, 3], output_activation="softmax", seed=0, backend=backend)
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        net.fit(X_OK, Y, learning_rate=0.1, num_iterations=2)
    _assert_untouched(net, before)
    with pytest.raises(exc, match=match):
        net.cost(X_OK, Y)


def test_labels_outside_01_are_fine_for_mse(backend):
    net = fastnn.Network([3, 4, 1], output_activation="identity", seed=0, backend=backend)
    assert net.loss == "mse"
    net.fit(X_OK, Y_OK * 3.5, learning_rate=0.05, num_iterations=20, cost_every=10)
    (_, first), _, (_, last) = net.costs_
    assert np.isfinite(last) and last < first


def test_read_only_input_is_accepted(backend):
    # Memory-mapped or frozen arrays must not reach a kernel that wants to write.
    X, Y = X_OK.copy(), Y_OK.copy()
    X.setflags(write=False)
    Y.setflags(write=False)
    net = fastnn.Network([3, 4, 1], init="xavier", seed=0, backend=backend)
    ref = fastnn.Network([3, 4, 1], init="xavier", seed=0, backend=backend)
    net.fit(X, Y, learning_rate=0.1, num_iterations=5)
    ref.fit(X_OK, Y_OK, learning_rate=0.1, num_iterations=5)
    for key, value in ref.params.items():
        np.testing.assert_array_equal(net.params[key], value)
    AL, caches = net.forward(X)
    assert set(net.backward(AL, Y, caches)) == {"dW1", "db1", "dW2", "db2"}
    assert net.cost(X, Y) == ref.cost(X_OK, Y_OK)


def test_Y_as_1d_vector_is_accepted(net):
    assert net.cost(X_OK, Y_OK.ravel()) == net.cost(X_OK, Y_OK)


def test_integer_and_noncontiguous_input_is_converted(net):
    Xi = np.asfortranarray((X_OK * 10).astype(np.int32))
    reference = net.cost(np.ascontiguousarray(Xi, dtype=np.float64), Y_OK.astype(np.float64))
    assert net.cost(Xi, Y_OK.astype(bool)) == pytest.approx(reference, rel=1e-12)
    assert net.cost(Xi, Y_OK.astype(bool)) != pytest.approx(
        net.cost(np.ascontiguousarray(Xi.ravel(order="F").reshape(Xi.shape)), Y_OK), rel=1e-9)
    wide = np.repeat(X_OK, 2, axis=1)[:, ::2]  # a strided view
    assert net.cost(wide, Y_OK) == pytest.approx(net.cost(X_OK, Y_OK), rel=1e-12)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"layer_dims": [3]}, ValueError, "layer_dims must have at least 2"),
    ({"layer_dims": [3, 0, 1]}, ValueError, r"layer_dims\[1\] must be a positive int"),
    ({"layer_dims": [3, 2.5, 1]}, TypeError, r"layer_dims\[1\] must be a positive int"),
    ({"layer_dims": "3,4,1"}, TypeError, "layer_dims must be a sequence"),
    ({"hidden_activation": "swish"}, ValueError, "unknown hidden_activation 'swish'.*relu"),
    ({"output_activation": "swish"}, ValueError, "unknown output_activation 'swish'.*softmax"),
    ({"output_activation": "softmax"}, ValueError, r"softmax output needs n_L >= 2 units"),
    ({"layer_dims": [3, 4, 2], "hidden_activation": "softmax"}, ValueError,
     "hidden_activation 'softmax' is an output activation"),
    ({"layer_dims": [3, 4, 2], "activations": ["softmax", "softmax"]}, ValueError,
     r"activations\[0\] 'softmax' is an output activation"),
    ({"layer_dims": [3, 4, 2], "output_activation": "softmax", "loss": "mse"}, ValueError,
     "a 'softmax' output needs the loss 'cross_entropy'; got 'mse'"),
    ({"relu_grad_at_zero": 0.5}, TypeError, "relu_grad_at_zero must be the int 1 or 0"),
    ({"relu_grad_at_zero": True}, TypeError, "relu_grad_at_zero must be the int 1 or 0"),
    ({"relu_grad_at_zero": 2}, ValueError, r"relu_grad_at_zero must be 1 .* or 0"),
    ({"activations": ["relu"]}, ValueError, r"one name per layer \(2\)"),
    ({"activations": ["relu", "gelu"]}, ValueError, r"unknown activations\[1\] 'gelu'"),
    ({"activations": "relu"}, TypeError, "activations must be a sequence"),
    ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'.*cross_entropy"),
    ({"loss": "cross_entropy", "output_activation": "identity"}, ValueError,
     r"needs one of the output activations \['sigmoid', 'softmax'\]; got 'identity'"),
    ({"init": "orthogonal"}, ValueError, "unknown init 'orthogonal'.*xavier"),
    ({"init_scale": 0}, ValueError, "init_scale must be a positive"),
    ({"backend": "tensorflow"}, ValueError, "unknown backend 'tensorflow'.*numpy"),
    ({"backend": 3}, TypeError, "backend must be a str"),
    ({"dtype": "float16"}, ValueError, "dtype must be one of"),
    ({"dtype": "int64"}, ValueError, "dtype must be one of"),
    ({"threads": 0}, ValueError, "threads must be a positive int"),
    ({"seed": "abc"}, TypeError, "seed must be"),
])
def test_constructor_rejects_bad_arguments(kwargs, exc, match):
    args = {"layer_dims": [3, 4, 1], **kwargs}
    with pytest.raises(exc, match=match):
        fastnn.Network(args.pop("layer_dims"), **args)


GOOD = {"W1": np.ones((4, 3)), "b1": np.zeros((4, 1)), "W2": np.ones((1, 4)), "b2": np.zeros((1, 1))}


@pytest.mark.parametrize("change,exc,match", [
    ({"W2": None}, ValueError, r"missing \['W2'\]"),
    ({"b1": None}, ValueError, r"missing \['b1'\]"),
    ({"W3": np.ones((1, 1))}, ValueError, "missing"),
    ({"extra": 1}, ValueError, r"unexpected \['extra'\]"),
    ({"W2": np.ones((1, 5))}, ValueError, r"params\['W2'\] must have shape \(n2, 4\)"),
    ({"b1": np.zeros(4)}, ValueError, r"params\['b1'\] must have shape \(4, 1\)"),
    ({"W1": np.ones(3)}, ValueError, r"params\['W1'\] must be a non-empty 2-D"),
    ({"W1": np.full((4, 3), np.nan)}, ValueError, r"params\['W1'\] must be finite"),
    ({"W1": np.full((4, 3), "x")}, TypeError, r"params\['W1'\] must be a real numeric"),
])
def test_from_params_rejects_bad_dicts(backend, change, exc, match):
    params = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(exc, match=match):
        fastnn.Network.from_params(params, ["relu", "sigmoid"], backend=backend)


def test_from_params_rejects_non_dict_and_wrong_activation_count():
    with pytest.raises(TypeError, match="params must be a dict"):
        fastnn.Network.from_params([GOOD["W1"]], ["sigmoid"])
    with pytest.raises(ValueError, match=r"one name per layer \(2\)"):
        fastnn.Network.from_params(GOOD, ["sigmoid"])


def test_backward_rejects_mismatched_inputs(net):
    AL, caches = net.forward(X_OK)
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"AL must have shape \(1, m\)"):
        net.backward(AL[:, :5].T, Y_OK, caches)
    with pytest.raises(ValueError, match=r"caches\[0\] A_prev must have shape \(3, 5\)"):
        net.backward(AL[:, :5], Y_OK[:, :5], caches)
    with pytest.raises(ValueError, match="caches must be the list of 2"):
        net.backward(AL, Y_OK, caches[:1])
    with pytest.raises(ValueError, match=r"caches\[0\] must be \(\(A_prev, W, b\), Z\)"):
        net.backward(AL, Y_OK, [None, caches[1]])
    bad = [((caches[0][0][0][:, :5], *caches[0][0][1:]), caches[0][1]), caches[1]]
    with pytest.raises(ValueError, match=r"caches\[0\] A_prev must have shape"):
        net.backward(AL, Y_OK, bad)
    with pytest.raises(ValueError, match=r"labels in \{0, 1\}"):
        net.backward(AL, Y_OK + 1, caches)
    _assert_untouched(net, before)


def test_unavailable_backend_lists_the_choices(monkeypatch):
    from fastnn import backends

    monkeypatch.setitem(backends._MODULES, "ghost", "fastnn.backends._no_such_module")
    status = backends.available()["ghost"]
    assert isinstance(status, str) and "_no_such_module" in status
    with pytest.raises(ValueError, match=r"backend 'ghost' is unavailable .*available backends"):
        fastnn.Network([2, 1], backend="ghost")
    backends._errors.pop("ghost", None)


@pytest.mark.parametrize("which", ["X", "Y"])
def test_masked_entries_are_rejected(net, which):
    before = _snapshot(net)
    data = {"X": X_OK, "Y": Y_OK}
    data[which] = np.ma.masked_array(data[which], mask=np.zeros_like(data[which], dtype=bool))
    data[which].mask[0, 3] = True
    with pytest.raises(ValueError, match=rf"{which} is a masked array with 1 masked entries "
                                         r"\(the first at index \(0, 3\)\)"):
        net.fit(data["X"], data["Y"], learning_rate=0.1, num_iterations=2)
    with pytest.raises(ValueError, match=f"{which} is a masked array"):
        net.cost(data["X"], data["Y"])
    _assert_untouched(net, before)


def test_masked_array_with_nothing_masked_is_its_data(net):
    X = np.ma.masked_array(X_OK, mask=False)
    assert net.cost(X, np.ma.masked_array(Y_OK)) == net.cost(X_OK, Y_OK)


def test_masked_params_are_rejected():
    W1 = np.ma.masked_array(GOOD["W1"], mask=np.eye(4, 3, dtype=bool))
    with pytest.raises(ValueError, match=r"params\['W1'\] is a masked array with 3 masked"):
        fastnn.Network.from_params({**GOOD, "W1": W1}, ["relu", "sigmoid"])


@pytest.mark.parametrize("change,match", [
    ({"W1": GOOD["W1"].T}, r"params\['W1'\] must have shape \(4, n0\) to match params\['b1'\] "
                           r"and params\['W2'\]; got \(3, 4\) \(transposed\?\)"),
    ({"W2": GOOD["W2"].T}, r"params\['W2'\] must have shape \(n2, 4\) to follow W1"),
    ({"b1": np.zeros((5, 1))}, r"params\['b1'\] must have shape \(4, 1\); got \(5, 1\)"),
    ({"b1": np.zeros((4, 2))}, r"params\['b1'\] must have shape \(4, 1\), a column"),
    ({"W1": np.ones((5, 3)), "b1": np.zeros((6, 1))}, r"params disagree on n1: params\['W1'\] "
                                                      r"says 5, params\['b1'\] says 6"),
])
def test_shape_errors_blame_the_wrong_array(change, match):
    with pytest.raises(ValueError, match=match):
        fastnn.Network.from_params({**GOOD, **change}, ["relu", "sigmoid"])


def test_to_validates_threads_like_the_constructor():
    net = fastnn.Network([3, 4, 1], threads=2)
    for bad, exc in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="threads must be a positive int"):
            net.to("numpy", threads=bad)
    assert net.to("numpy").threads == 2 and net.to("numpy", threads=1).threads == 1


@pytest.fixture
def ram_64GiB(monkeypatch):
    """The same verdicts on every machine (and where the OS does not say)."""
    monkeypatch.setattr(fastnn._validation, "physical_memory", lambda: 64 * 2**30)


def test_absurd_layer_sizes_fail_at_once_with_the_bytes(ram_64GiB):
    # W1 (10**12, 2) + b1 (10**12, 1) + W2 (1, 10**12) + b2 (1, 1), 8 bytes each
    with pytest.raises(ValueError, match=r"layer_dims \[2, 1000000000000, 1\]: 4,000,000,000,001 "
                                         r"float64 parameters .* would need 29\.1 TiB "
                                         r"\(32,000,000,000,008 bytes\); this machine has "
                                         r"64\.0 GiB"):
        fastnn.Network([2, 10**12, 1])


def test_absurd_X_fails_at_once_with_the_bytes(backend, ram_64GiB):
    net = fastnn.Network([2, 3, 1], backend=backend)
    huge = np.broadcast_to(np.float32(1), (2, 10**11))  # holds no memory; a copy would
    with pytest.raises(ValueError, match=r"X: a contiguous float64 copy of shape \(2, "
                                         r"100000000000\) would need 1\.5 TiB"):
        net.predict(huge)
    wide = fastnn.Network([2, 10**6, 1], init="zeros", backend=backend)
    X = np.zeros((2, 10**6))
    for call in (lambda: wide.predict(X), lambda: wide.fit(X, np.zeros((1, 10**6)),
                                                           learning_rate=0.1, num_iterations=1)):
        with pytest.raises(ValueError, match=r"X: m = 1,000,000 examples through layer_dims "
                                             r"\[2, 1000000, 1\] .* would need"):
            call()
