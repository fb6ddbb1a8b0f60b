"""The course's published values for part 2, through fastnn's API.

The cases -- inputs built as the course's generators build them, expected
values transcribed from its files, and where each comes from -- are in
``tests/_course2_cases.py``.
"""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import optimizers, schedules
from fastnn.datasets import random_mini_batches

import _course2_cases as cases

# The course prints 8 decimals: each published entry is within 5e-9 of the exact value.
PRINTED = {"rtol": 0, "atol": 5e-9}
# Scientific notation prints 9 significant digits.
PRINTED_SCIENTIFIC = {"rtol": 5e-9, "atol": 0}


def _optimizer(name, inputs):
    hyper = {key: inputs[key] for key in ("beta", "beta1", "beta2", "epsilon") if key in inputs}
    return optimizers.OPTIMIZERS[name](**hyper)


def _state(name, inputs):
    return {slot: inputs[slot] for slot in optimizers.OPTIMIZERS[name].slots}


@pytest.mark.parametrize("name,case", [(name, case) for name, made in
                                       cases.OPTIMIZER_CASES.items() for case in made],
                         ids=lambda c: getattr(c, "__name__", c))
def test_optimizer_gives_the_published_step(name, case):
    case = case()
    inputs = case["inputs"]
    before = copy.deepcopy(inputs)
    params, state = _optimizer(name, inputs).update(
        inputs["params"], inputs["grads"], _state(name, inputs),
        inputs["learning_rate"], t=inputs.get("t", 1))
    got = {"params": params, **state}
    scientific = case.get("scientific", {})
    for group, expected in case["expected"].items():
        assert set(expected) == set(got[group]), (group, case["source"])
        for key, value in expected.items():
            # Some tests publish each array's first row only.
            actual = got[group][key] if value.ndim == 2 else got[group][key][0]
            tol = PRINTED_SCIENTIFIC if key in scientific.get(group, ()) else PRINTED
            np.testing.assert_allclose(actual, value, **tol,
                                       err_msg=f"{group}[{key!r}] ({case['source']})")
    for key, value in before.items():  # the course's functions update in place; ours do not
        if isinstance(value, dict):
            for k, array in value.items():
                np.testing.assert_array_equal(inputs[key][k], array)


def test_init_gives_the_course_zeros():
    # initialize_velocity / initialize_adam: zeros shaped like the gradients.
    params = cases.update_parameters_with_adam()["inputs"]["params"]
    for name, cls in optimizers.OPTIMIZERS.items():
        state = cls().init(params)
        assert list(state) == list(cls.slots)
        for slot in state.values():
            assert list(slot) == ["dW1", "db1", "dW2", "db2"]
            for key, zeros in slot.items():
                assert zeros.shape == params[key[1:]].shape and not zeros.any()


def test_update_lr_gives_the_published_rate():
    case = cases.update_lr()
    for args, expected in case["calls"]:
        assert schedules.update_lr(*args) == pytest.approx(expected, rel=1e-15), case["source"]


def test_schedule_lr_decay_gives_the_published_rates():
    case = cases.schedule_lr_decay()
    for args, expected in case["calls"]:
        # 0.085714285 is published cut to 9 digits; the rest are exact.
        assert schedules.schedule_lr_decay(*args) == pytest.approx(expected, rel=1e-8), \
            (args, case["source"])


@pytest.mark.parametrize("case", cases.MINI_BATCH_CASES, ids=lambda c: c.__name__)
def test_random_mini_batches_gives_the_published_batches(case):
    case = case()
    batches = random_mini_batches(**case["inputs"])
    assert len(batches) == len(case["expected"])
    for (X_b, Y_b), (X_e, Y_e) in zip(batches, case["expected"]):
        np.testing.assert_allclose(X_b, X_e, **PRINTED, err_msg=case["source"])
        assert Y_b.dtype == np.bool_  # the course's labels here are booleans, and stay so
        np.testing.assert_array_equal(Y_b, Y_e)


def test_random_mini_batches_gives_the_notebook_batches():
    case = cases.random_mini_batches_v1b()
    batches = random_mini_batches(**case["inputs"])
    expected = case["expected"]
    assert [X_b.shape for X_b, _ in batches] == expected["X_shapes"]
    assert [Y_b.shape for _, Y_b in batches] == expected["Y_shapes"]
    np.testing.assert_allclose(batches[0][0][0, :3], expected["first_X_row0_first3"], **PRINTED)


@pytest.mark.parametrize("case,init,scale", [(cases.initialize_parameters_he, "he", 0.01),
                                             (cases.initialize_parameters_random, "random", 10)])
def test_network_from_a_random_state_draws_the_course_weights(case, init, scale):
    case = case()
    inputs = case["inputs"]
    state = np.random.get_state()[1].copy()
    net = fastnn.Network(inputs["layers_dims"], init=init, init_scale=scale,
                         seed=np.random.RandomState(inputs["seed"]))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    params = net.params
    assert list(params) == list(case["expected"])
    for key, value in case["expected"].items():
        np.testing.assert_allclose(params[key], value, **PRINTED,
                                   err_msg=f"{key} ({case['source']})")


# -- random_mini_batches: properties and bad input --------------------------------------------

@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 40), st.integers(1, 50),
       st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32, np.int64]))
def test_mini_batches_partition_one_shuffle(n_x, n_y, m, size, seed, dtype):
    X = (np.arange(n_x * m).reshape(n_x, m) % m).astype(dtype)  # row 0 is the example's index
    Y = np.tile(np.arange(m), (n_y, 1))
    X_before, Y_before, state = X.copy(), Y.copy(), np.random.get_state()[1].copy()
    batches = random_mini_batches(X, Y, mini_batch_size=size, seed=seed)
    order = np.random.RandomState(seed).permutation(m)
    assert [b.shape[1] for b, _ in batches] == [size] * (m // size) + [m % size] * (m % size > 0)
    np.testing.assert_array_equal(np.hstack([b for b, _ in batches]), X[:, order])
    np.testing.assert_array_equal(np.hstack([y for _, y in batches]), Y[:, order])
    for X_b, Y_b in batches:  # columns stay paired, dtypes kept
        np.testing.assert_array_equal(X_b[0], Y_b[0])
        assert X_b.dtype == dtype and Y_b.dtype == Y.dtype
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(Y, Y_before)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_mini_batches_take_labels_of_shape_m():
    X, y = np.arange(10.0).reshape(2, 5), np.arange(5)
    batches = random_mini_batches(X, y, mini_batch_size=2, seed=3)
    assert [Y_b.shape for _, Y_b in batches] == [(1, 2), (1, 2), (1, 1)]
    for X_b, Y_b in batches:
        np.testing.assert_array_equal(X_b[0], Y_b[0])


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"X": np.ones(5)}, ValueError, r"X must be 2-D, one column per example; got 1-D"),
    ({"X": np.ones((2, 0)), "Y": np.ones((1, 0))}, ValueError, "X must hold at least one"),
    ({"X": np.array([["a", "b"]])}, TypeError, "X must be a real numeric array"),
    ({"Y": np.ones((1, 4))}, ValueError, r"Y must have m = 5 columns, one per example of X"),
    ({"Y": np.ones(4)}, ValueError, r"Y must have m = 5 columns.*got shape \(4,\)"),
    ({"Y": np.ones((1, 5, 1))}, ValueError, "Y must be 2-D"),
    ({"Y": "labels"}, TypeError, "Y must be a real numeric array"),
    ({"mini_batch_size": 0}, ValueError, "mini_batch_size must be a positive int"),
    ({"mini_batch_size": 2.0}, TypeError, "mini_batch_size must be a positive int"),
    ({"mini_batch_size": True}, TypeError, "mini_batch_size must be a positive int"),
    ({"seed": -1}, ValueError, r"seed must be an int in \[0, 2\*\*32\)"),
    ({"seed": 2**32}, ValueError, r"seed must be an int in \[0, 2\*\*32\)"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
    ({"seed": None}, TypeError, "seed must be an int"),
])
def test_mini_batches_bad_input(kwargs, exc, match):
    args = {"X": np.ones((2, 5)), "Y": np.ones((1, 5)), "mini_batch_size": 2, "seed": 0,
            **kwargs}
    with pytest.raises(exc, match=match):
        random_mini_batches(**args)


# -- Network(seed=RandomState): the course's draws --------------------------------------------

# Each init as the course writes it: initialize_parameters_deep (x 0.01; its later version
# / sqrt(n_prev)) and initialize_parameters_he.
COURSE_SCALING = {"random": lambda Z, n: Z * 0.01, "xavier": lambda Z, n: Z / np.sqrt(n),
                  "he": lambda Z, n: Z * np.sqrt(2. / n)}


@pytest.mark.parametrize("init", list(COURSE_SCALING))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_random_state_is_drawn_layer_by_layer_as_the_course(init, dtype):
    dims, seed = [5, 4, 3, 1], 7
    rs = np.random.RandomState(seed)
    net = fastnn.Network(dims, init=init, seed=rs, dtype=dtype)
    course = np.random.RandomState(seed)  # the course: np.random.seed(7) in initialize_parameters
    for l in range(1, len(dims)):
        W = COURSE_SCALING[init](course.randn(dims[l], dims[l - 1]), dims[l - 1])
        np.testing.assert_array_equal(net.params[f"W{l}"], W.astype(dtype))
        assert not net.params[f"b{l}"].any()
    # ...and leaves the RandomState where the course leaves the global one.
    assert rs.randn() == course.randn()


def test_random_state_draws_nothing_for_zeros_or_a_refused_network():
    rs = np.random.RandomState(0)
    fastnn.Network([3, 2, 1], init="zeros", seed=rs)
    with pytest.raises(ValueError, match="unknown backend"):
        fastnn.Network([3, 2, 1], seed=rs, backend="nope")
    assert rs.randn() == np.random.RandomState(0).randn()


def test_other_seeds_still_feed_a_generator():
    W = fastnn.Network([3, 4, 1], seed=42).params["W1"]
    np.testing.assert_array_equal(W, 0.01 * np.random.default_rng(42).standard_normal((4, 3)))
    assert not np.array_equal(W, fastnn.Network([3, 4, 1], seed=np.random.RandomState(42))
                              .params["W1"])


@pytest.mark.parametrize("seed,exc,match", [
    ("abc", TypeError,
     "seed must be an int, a numpy.random.Generator, a numpy.random.RandomState or None"),
    (True, TypeError, "seed must be an int, a numpy.random.Generator, a numpy.random.Random"),
    (1.5, TypeError, "seed must be an int"),
    (-1, ValueError, "seed must be a non-negative int"),
])
def test_bad_seed(seed, exc, match):
    with pytest.raises(exc, match=match):
        fastnn.Network([3, 2, 1], seed=seed)
