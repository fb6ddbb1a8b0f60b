"""Property tests (hypothesis): random small problems on every backend.

1. Training agrees with the loops oracle on random nets, activations, losses
   (softmax outputs included), ReLU'(0) conventions, m, full batch or
   mini-batch sizes, seeds and dtypes (runs that diverge are not compared);
   and with the course's second part drawn too: optimizer, L2, dropout, decay.
2. Random malformed input never crashes the process, always raises ValueError
   or TypeError, and leaves the parameters and costs as they were.

Bounded for CI: a fixed number of examples, derandomized (the same examples on
every run), no deadline (JIT compilation and a loaded machine must not fail a
test); the file runs in well under a minute.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import activations, backends

# Parameters: relative to the network's largest parameter, not each array's:
# a bias whose gradient sums to nearly zero (sigmoid outputs near 0.5, labels 0
# and 1) carries the absolute rounding error of its summands, which are about
# as large as the weights. Costs: relative, with an absolute floor of the same
# size for costs near zero. Measured over 3000 random examples per backend:
# at most 7e-13 (float64) and 6e-6 (float32); these bounds leave a margin.
RTOL = {"float64": 1e-9, "float32": 1e-4}
FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # `backend` is a plain name, never mutated


def _settings(max_examples):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=FIXTURE_OK)


@st.composite
def problems(draw):
    """A random small network, its training data and hyperparameters."""
    L = draw(st.integers(1, 3))
    dims = [draw(st.integers(1, 4))] + [draw(st.integers(1, 5)) for _ in range(L)]
    loss = draw(st.sampled_from(["cross_entropy", "softmax", "mse"]))
    hidden = [draw(st.sampled_from(activations.names())) for _ in range(L - 1)]
    output = {"cross_entropy": "sigmoid", "softmax": "softmax"}.get(loss) or \
        draw(st.sampled_from(activations.names()))
    if loss == "softmax":
        dims[-1] = max(dims[-1], 2)
        loss = "cross_entropy"
    m = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((dims[0], m))
    if output == "softmax":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    elif loss == "cross_entropy":
        Y = (rng.random((dims[-1], m)) < 0.5).astype(np.float64)
    else:
        Y = rng.standard_normal((dims[-1], m))
    return {
        "net": dict(layer_dims=dims, activations=hidden + [output], loss=loss,
                    # zeros: every Z is exactly 0 at first, where the drawn
                    # relu_grad_at_zero decides what a ReLU layer passes back.
                    init=draw(st.sampled_from(["xavier", "he", "random", "zeros"])),
                    seed=draw(st.integers(0, 2**16)), dtype=draw(st.sampled_from(list(RTOL))),
                    relu_grad_at_zero=draw(st.sampled_from([1, 0]))),
        "X": X, "Y": Y,
        "fit": dict(learning_rate=draw(st.floats(0.01, 0.5)),
                    num_iterations=draw(st.integers(1, 6)), cost_every=draw(st.integers(1, 3)),
                    batch_size=draw(st.one_of(st.none(), st.integers(1, m))),
                    seed=draw(st.integers(0, 2**16))),
    }


def _assert_same_params(net, ref, rtol):
    scale = max(float(np.max(np.abs(value))) for value in ref.params.values())
    scale = max(scale, np.finfo(np.float64).tiny)
    for key, value in ref.params.items():
        actual = net.params[key]
        assert actual.dtype == value.dtype
        err = float(np.max(np.abs(actual.astype(np.float64) - value))) / scale
        assert err <= rtol, f"{key}: max difference {err:.3g} x the largest parameter > {rtol:g}"


@st.composite
def course2_problems(draw):
    """A random small problem trained with the course's second part: an
    optimizer, L2, dropout (one keep_prob for every hidden layer, or one per
    layer) and learning-rate decay, each drawn (1 and 0 included)."""
    problem = draw(problems())
    n_hidden = len(problem["net"]["layer_dims"]) - 2
    keep = st.one_of(st.just(1.0), st.floats(0.5, 1.0))
    optimizer = draw(st.sampled_from(["gd", "momentum", "rmsprop", "adam"]))
    problem["fit"].update(
        optimizer=optimizer,
        lambd=draw(st.one_of(st.just(0.0), st.floats(0.0, 2.0))),
        keep_prob=draw(st.one_of(keep, st.lists(keep, min_size=n_hidden, max_size=n_hidden))),
        decay_rate=draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0))),
        time_interval=draw(st.integers(1, 3)))
    if optimizer in ("rmsprop", "adam"):  # steps of about the rate whatever the gradient
        problem["fit"]["learning_rate"] = draw(st.floats(0.001, 0.05))
    return problem


def _agrees_with_the_oracle(fast_backend, problem):
    spec = problem["net"]
    runs = {}
    for name in (backends.ORACLE, fast_backend):
        net = fastnn.Network(spec["layer_dims"], spec["activations"], loss=spec["loss"],
                             init=spec["init"], seed=spec["seed"], dtype=spec["dtype"],
                             relu_grad_at_zero=spec["relu_grad_at_zero"], backend=name)
        try:
            runs[name] = net.fit(problem["X"], problem["Y"], **problem["fit"])
        except FloatingPointError:
            # A run the oracle finds diverging has no trajectory to compare; the
            # backend must find it diverging too (only the oracle may discard a case).
            assume(name != backends.ORACLE)
            pytest.fail(f"{fast_backend} diverged where the oracle did not")
    net, ref = runs[fast_backend], runs[backends.ORACLE]
    rtol = RTOL[spec["dtype"]]
    assert [i for i, _ in net.costs_] == [i for i, _ in ref.costs_]
    for (i, c), (_, c_ref) in zip(net.costs_, ref.costs_):
        assert c == pytest.approx(c_ref, rel=rtol, abs=rtol), f"cost at iteration {i}"
    assert ref.params["W1"].dtype == np.dtype(spec["dtype"])
    _assert_same_params(net, ref, rtol)


@_settings(max_examples=50)
@given(problem=problems())
def test_training_agrees_with_the_oracle(fast_backend, problem):
    _agrees_with_the_oracle(fast_backend, problem)


@_settings(max_examples=30)
@given(problem=course2_problems())
def test_course2_training_agrees_with_the_oracle(fast_backend, problem):
    _agrees_with_the_oracle(fast_backend, problem)


# ------------------------------------------------------------------ malformed input
N_X, M = 3, 6


def _base(rng):
    return rng.standard_normal((N_X, M)), (rng.random((1, M)) < 0.5).astype(np.float64)


@st.composite
def malformed(draw):
    """(what is wrong, X, Y, fit keyword arguments): exactly one thing wrong."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X, Y = _base(rng)
    kwargs = dict(learning_rate=0.1, num_iterations=2, cost_every=1)
    which = draw(st.sampled_from(["X", "Y"]))
    data = {"X": X, "Y": Y}
    a = data[which]
    index = (draw(st.integers(0, a.shape[0] - 1)), draw(st.integers(0, M - 1)))
    kind = draw(st.sampled_from([
        "ndim", "rows", "columns", "empty", "non-finite", "masked", "dtype", "type", "ragged",
        "label", "hyperparameter"]))
    if kind == "ndim":
        data[which] = draw(st.sampled_from([a.ravel(), a[None], a[..., None], a[0, 0]]))
        if which == "Y":
            assume(data["Y"].ndim != 1)  # (m,) is a valid Y for one output unit
    elif kind == "rows":
        rows = draw(st.integers(1, 6).filter(lambda r: r != a.shape[0]))
        data[which] = rng.standard_normal((rows, M)).round()
    elif kind == "columns":
        data[which] = a[:, : draw(st.integers(1, M - 1))]
    elif kind == "empty":
        data = {"X": X[:, :0], "Y": Y[:, :0]}
    elif kind == "non-finite":
        a = a.copy()
        a[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        data[which] = a
    elif kind == "masked":
        mask = np.zeros(a.shape, bool)
        mask[index] = True
        data[which] = np.ma.masked_array(a, mask=mask)
    elif kind == "dtype":
        data[which] = draw(st.sampled_from([a + 1j, a.astype(str), a.astype(object),
                                            a.astype("datetime64[s]")]))
    elif kind == "type":
        data[which] = draw(st.sampled_from([None, {"X": 1}, "abc", {1, 2}, object()]))
    elif kind == "ragged":
        data[which] = [list(row) for row in a[:, :-1]] + [list(a[-1])]
    elif kind == "label":
        Y = Y.copy()
        Y[0, index[1]] = draw(st.floats(-10, 10).filter(lambda v: v not in (0.0, 1.0)))
        data["Y"] = Y
    else:
        key = draw(st.sampled_from(sorted(kwargs)))
        kwargs[key] = draw(st.sampled_from([0, -1, 2.5, float("nan"), float("inf"), "1", None,
                                            True]))
        assume(not (key == "learning_rate" and kwargs[key] == 2.5))  # a valid learning rate
    return kind, data["X"], data["Y"], kwargs


@_settings(max_examples=80)
@given(case=malformed())
def test_malformed_input_is_refused_and_changes_nothing(backend, case):
    kind, X, Y, kwargs = case
    net = fastnn.Network([N_X, 3, 1], init="xavier", seed=0, backend=backend)
    net.fit(*_base(np.random.default_rng(1)), learning_rate=0.1, num_iterations=2)
    before, costs = net.params, net.costs_
    with pytest.raises((ValueError, TypeError)):
        net.fit(X, Y, **kwargs)
    if kind != "hyperparameter":
        with pytest.raises((ValueError, TypeError)):
            net.cost(X, Y)
    assert net.costs_ == costs
    for key, value in before.items():
        np.testing.assert_array_equal(net.params[key], value, err_msg=key)
