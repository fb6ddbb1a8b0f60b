"""fastnn.optimizers: the update rules against the course's code, their
properties (hypothesis), the object API, and bad input.

The course's published values are checked in tests/test_course2_cases.py.
"""

import copy
import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import optimizers
from fastnn.optimizers import OPTIMIZERS, Adam, GradientDescent, Momentum, RMSprop

ALL = list(OPTIMIZERS.values())


def _settings(max_examples=60):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)


# -- the course's functions, as the notebook writes them (in place, on copies) ----------------

def course_momentum(parameters, grads, v, beta, learning_rate):
    for l in range(len(parameters) // 2):
        for p in "Wb":
            k = p + str(l + 1)
            v["d" + k] = beta * v["d" + k] + (1 - beta) * grads["d" + k]
            parameters[k] = parameters[k] - learning_rate * v["d" + k]
    return parameters, v


def course_rmsprop(parameters, grads, s, beta, learning_rate, epsilon):
    # The lecture's RMSprop: Adam's second moment alone, without bias correction.
    for l in range(len(parameters) // 2):
        for p in "Wb":
            k = p + str(l + 1)
            s["d" + k] = beta * s["d" + k] + (1 - beta) * np.square(grads["d" + k])
            parameters[k] = parameters[k] - learning_rate * grads["d" + k] / (
                np.sqrt(s["d" + k]) + epsilon)
    return parameters, s


def course_adam(parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon):
    for l in range(len(parameters) // 2):
        for p in "Wb":
            k = p + str(l + 1)
            v["d" + k] = beta1 * v["d" + k] + (1 - beta1) * grads["d" + k]
            v_corrected = v["d" + k] / (1 - beta1 ** t)
            s["d" + k] = beta2 * s["d" + k] + (1 - beta2) * np.square(grads["d" + k])
            s_corrected = s["d" + k] / (1 - beta2 ** t)
            parameters[k] = parameters[k] - learning_rate * v_corrected / (
                np.sqrt(s_corrected) + epsilon)
    return parameters, v, s


def course_step(opt, params, grads, state, learning_rate, t):
    params, state = copy.deepcopy(params), copy.deepcopy(state)
    if isinstance(opt, GradientDescent):
        return {k: W - learning_rate * grads["d" + k] for k, W in params.items()}, {}
    if isinstance(opt, Momentum):
        params, v = course_momentum(params, grads, state["v"], opt.beta, learning_rate)
        return params, {"v": v}
    if isinstance(opt, RMSprop):
        params, s = course_rmsprop(params, grads, state["s"], opt.beta, learning_rate,
                                   opt.epsilon)
        return params, {"s": s}
    params, v, s = course_adam(params, grads, state["v"], state["s"], t, learning_rate,
                               opt.beta1, opt.beta2, opt.epsilon)
    return params, {"v": v, "s": s}


# -- strategies -------------------------------------------------------------------------------

betas = st.floats(0, 0.999)


@st.composite
def optimizer_objects(draw):
    cls = draw(st.sampled_from(ALL))
    hyper = {"beta": betas, "beta1": betas, "beta2": betas,
             "epsilon": st.floats(1e-10, 1e-1)}
    return cls(**{f.name: draw(hyper[f.name]) for f in dataclasses.fields(cls)})


@st.composite
def problems(draw, steps=st.integers(1, 5)):
    """A course-style params dict and a few steps' gradients (scaled, so some are tiny)."""
    dims = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(2, 4)))]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = {}
    for l in range(1, len(dims)):
        params[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1]))
        params[f"b{l}"] = rng.standard_normal((dims[l], 1))
    grads = [{"d" + k: rng.standard_normal(W.shape) * 10.0 ** rng.integers(-4, 2)
              for k, W in params.items()} for _ in range(draw(steps))]
    return params, grads


learning_rates = st.floats(1e-4, 1.0)


# -- against the course's code ----------------------------------------------------------------

@_settings(100)
@given(optimizer_objects(), problems(), learning_rates)
def test_steps_follow_the_course_code_and_leave_inputs_alone(opt, problem, learning_rate):
    params, grads_per_step = problem
    state = opt.init(params)
    ref_params, ref_state = params, state
    for t, grads in enumerate(grads_per_step, start=1):
        before = copy.deepcopy((params, grads, state))
        new_params, new_state = opt.update(params, grads, state, learning_rate, t=t)
        for got, kept in zip((params, grads, state), before):  # inputs untouched
            np.testing.assert_equal(got, kept)
        ref_params, ref_state = course_step(opt, ref_params, grads, ref_state, learning_rate, t)
        for key in params:
            # The course groups α v̂ / (√ŝ + ε) as (α v̂) / (...); a few ulps apart.
            np.testing.assert_allclose(new_params[key], ref_params[key], rtol=1e-12, atol=0)
        for slot in opt.slots:
            for key in new_state[slot]:
                np.testing.assert_allclose(new_state[slot][key], ref_state[slot][key],
                                           rtol=1e-12, atol=0)
        params, state = new_params, new_state


# -- properties -------------------------------------------------------------------------------

@_settings()
@given(problems(), learning_rates)
def test_momentum_with_beta_zero_is_gradient_descent(problem, learning_rate):
    params, (grads, *_) = problem
    momentum = Momentum(beta=0)
    gd, _ = GradientDescent().update(params, grads, {}, learning_rate)
    mo, state = momentum.update(params, grads, momentum.init(params), learning_rate)
    for key in params:
        np.testing.assert_array_equal(mo[key], gd[key])
        np.testing.assert_array_equal(state["v"]["d" + key], grads["d" + key])


@_settings()
@given(optimizer_objects(), problems(), learning_rates)
def test_zero_gradients_move_nothing_from_rest(opt, problem, learning_rate):
    params, _ = problem
    zeros = {"d" + k: np.zeros_like(W) for k, W in params.items()}
    new, _ = opt.update(params, zeros, opt.init(params), learning_rate, t=3)
    for key in params:
        np.testing.assert_array_equal(new[key], params[key])


@_settings()
@given(st.builds(Adam, beta1=betas, beta2=betas, epsilon=st.floats(1e-10, 1e-1)), problems(),
       learning_rates)
def test_adam_first_step_is_at_most_the_learning_rate(adam, problem, learning_rate):
    # From zeros at t = 1, v̂ = dW and ŝ = dW², so each entry moves α |dW| / (|dW| + ε) < α.
    params, (grads, *_) = problem
    new, _ = adam.update(params, grads, adam.init(params), learning_rate, t=1)
    for key in params:
        moved = np.abs(new[key] - params[key])
        dW = np.abs(grads["d" + key])
        np.testing.assert_allclose(moved, learning_rate * dW / (dW + adam.epsilon),
                                   rtol=1e-9, atol=1e-15)
        assert np.all(moved <= learning_rate * (1 + 1e-12))


@_settings()
@given(betas, betas, st.integers(1, 30), problems(steps=st.just(1)))
def test_constant_gradient_averages(beta1, beta2, steps, problem):
    # A constant gradient g from zeros: v = (1 - β^t) g, and Adam's bias correction
    # gives back v̂ = g, ŝ = g² exactly (up to rounding): each step is α g / (|g| + ε).
    params, (grads, *_) = problem
    momentum, adam = Momentum(beta=beta1), Adam(beta1=beta1, beta2=beta2)
    mo_params, mo_state = params, momentum.init(params)
    ad_params, ad_state = params, adam.init(params)
    for t in range(1, steps + 1):
        mo_params, mo_state = momentum.update(mo_params, grads, mo_state, 0.1, t=t)
        ad_params, ad_state = adam.update(ad_params, grads, ad_state, 0.1, t=t)
    for key in params:
        g = grads["d" + key]
        np.testing.assert_allclose(mo_state["v"]["d" + key], (1 - beta1 ** steps) * g,
                                   rtol=1e-9, atol=0)
        expected = params[key] - steps * 0.1 * g / (np.abs(g) + adam.epsilon)
        np.testing.assert_allclose(ad_params[key], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", ALL)
def test_float32_stays_float32(cls):
    params = {"W1": np.ones((2, 3), np.float32), "b1": np.zeros((2, 1), np.float32)}
    grads = {"dW1": np.full((2, 3), 0.5, np.float32), "db1": np.ones((2, 1), np.float32)}
    opt = cls()
    state = opt.init(params)
    new, state = opt.update(params, grads, state, 0.1, t=2)
    assert all(W.dtype == np.float32 for W in new.values())
    assert all(a.dtype == np.float32 for slot in state.values() for a in slot.values())


# -- the object API ---------------------------------------------------------------------------

def test_names_and_defaults_are_the_course_s():
    assert list(OPTIMIZERS) == ["gd", "momentum", "rmsprop", "adam"]
    assert {name: cls().get_params() for name, cls in OPTIMIZERS.items()} == {
        "gd": {}, "momentum": {"beta": 0.9}, "rmsprop": {"beta": 0.999, "epsilon": 1e-8},
        "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}}
    assert [cls.slots for cls in ALL] == [(), ("v",), ("s",), ("v", "s")]
    assert Adam(beta1=0.8).hyperparameters == (0.8, 0.999, 1e-8)
    assert Momentum(beta=0).beta == 0.0 and isinstance(Momentum(beta=0).beta, float)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_get_resolves_names_and_returns_objects(name):
    opt = optimizers.get(name)
    assert type(opt) is OPTIMIZERS[name] and opt.name == name
    assert opt == OPTIMIZERS[name]()
    assert optimizers.get(opt) is opt


@pytest.mark.parametrize("opt", [GradientDescent(), Momentum(beta=0.5),
                                 RMSprop(beta=0.9, epsilon=1e-6),
                                 Adam(beta1=0.8, beta2=0.888, epsilon=1e-2)], ids=repr)
def test_repr_equality_hash_pickle(opt):
    assert eval(repr(opt), vars(optimizers)) == opt
    again = pickle.loads(pickle.dumps(opt))
    assert again == opt and hash(again) == hash(opt) and again.name == opt.name
    assert type(opt)(**opt.get_params()) == opt
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.epsilon = 1.0
    others = [cls() for cls in ALL if cls is not type(opt)]
    assert all(opt != other for other in others)
    assert Momentum(beta=0.5) != Momentum(beta=0.6)


def test_get_revalidates_an_altered_object():
    opt = Momentum()
    object.__setattr__(opt, "beta", 1.5)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        optimizers.get(opt)


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,match", [
    (lambda: Momentum(beta=1), ValueError, r"beta must be in \[0, 1\).*got 1.0"),
    (lambda: Momentum(beta=-0.1), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: Momentum(beta=float("nan")), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: Momentum(beta="0.9"), TypeError, "beta must be a number"),
    (lambda: Momentum(beta=True), TypeError, "beta must be a number"),
    (lambda: Momentum(beta=None), TypeError, "beta must be a number"),
    (lambda: RMSprop(beta=1.0), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: RMSprop(epsilon=0), ValueError, "epsilon must be a positive finite number"),
    (lambda: RMSprop(epsilon=-1e-8), ValueError, "epsilon must be a positive finite number"),
    (lambda: Adam(beta1=1.0), ValueError, r"beta1 must be in \[0, 1\)"),
    (lambda: Adam(beta2=1.5), ValueError, r"beta2 must be in \[0, 1\)"),
    (lambda: Adam(epsilon=0.0), ValueError, "epsilon must be a positive finite number"),
    (lambda: Adam(epsilon=float("inf")), ValueError, "epsilon must be a positive finite"),
    (lambda: Adam(epsilon="1e-8"), TypeError, "epsilon must be a positive finite number"),
    (lambda: optimizers.get("sgd"), ValueError,
     r"unknown optimizer 'sgd'; expected one of \['gd', 'momentum', 'rmsprop', 'adam'\]"),
    (lambda: optimizers.get("Adam"), ValueError, "unknown optimizer 'Adam'"),
    (lambda: optimizers.get(3), TypeError,
     r"optimizer must be a name, one of \['gd', 'momentum', 'rmsprop', 'adam'\]"),
    (lambda: optimizers.get(Adam), TypeError, "optimizer must be a name"),
    (lambda: optimizers.get(None), TypeError, "optimizer must be a name"),
])
def test_bad_hyperparameters_and_names(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def _problem():
    params = {"W1": np.arange(6.0).reshape(2, 3), "b1": np.ones((2, 1)),
              "W2": np.arange(2.0).reshape(1, 2), "b2": np.zeros((1, 1))}
    grads = {"d" + k: np.full(W.shape, 0.5) for k, W in params.items()}
    return params, grads


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}


BAD_UPDATES = [
    # (what to change, exception, message)
    (lambda p, g, s: ("params", [1, 2]), TypeError, "params must be a dict of arrays"),
    (lambda p, g, s: ("params", {}), ValueError, "params must hold at least one array"),
    (lambda p, g, s: ("params", {**p, "W1": np.array([["a"] * 3] * 2)}), TypeError,
     r"params\['W1'\] must be a real numeric array"),
    (lambda p, g, s: ("params", {**p, 1: np.ones(2)}), TypeError, "params keys must be str"),
    (lambda p, g, s: ("grads", None), TypeError, "grads must be a dict of arrays"),
    (lambda p, g, s: ("grads", _without(g, "db2")), ValueError,
     r"grads must have exactly the keys \['dW1', 'dW2', 'db1', 'db2'\].*missing \['db2'\]"),
    (lambda p, g, s: ("grads", {**g, "dW3": np.ones(1)}), ValueError,
     r"grads must have exactly the keys.*unexpected \['dW3'\]"),
    (lambda p, g, s: ("grads", {**_without(g, "dW1"), "W1": g["dW1"]}), ValueError,
     r"grads must have exactly the keys.*missing \['dW1'\], unexpected \['W1'\]"),
    (lambda p, g, s: ("grads", {**g, "dW1": g["dW1"].T}), ValueError,
     r"grads\['dW1'\] must have shape \(2, 3\), that of its parameter in params; got \(3, 2\)"),
    (lambda p, g, s: ("grads", {**g, "db1": np.ones(2)}), ValueError,
     r"grads\['db1'\] must have shape \(2, 1\).*got \(2,\)"),
    (lambda p, g, s: ("learning_rate", 0), ValueError, "learning_rate must be a positive"),
    (lambda p, g, s: ("learning_rate", -0.1), ValueError, "learning_rate must be a positive"),
    (lambda p, g, s: ("learning_rate", float("nan")), ValueError, "learning_rate must be"),
    (lambda p, g, s: ("learning_rate", "0.1"), TypeError, "learning_rate must be a positive"),
    (lambda p, g, s: ("t", 0), ValueError, "t must be a positive int"),
    (lambda p, g, s: ("t", 1.5), TypeError, "t must be a positive int"),
    (lambda p, g, s: ("t", True), TypeError, "t must be a positive int"),
    (lambda p, g, s: ("state", None), TypeError, "state must be the dict"),
    (lambda p, g, s: ("state", {**s, "w": {}}), ValueError, "state must have exactly the slots"),
]
BAD_SLOT_UPDATES = [
    (lambda slot: _without, ValueError, r"state\['{slot}'\] must have exactly the keys"),
    (lambda slot: (lambda d, k: {**d, k: d[k][:, :1]}), ValueError,
     r"state\['{slot}'\]\['dW1'\] must have shape \(2, 3\)"),
]


def _check_untouched_after(opt, change, exc, match):
    params, grads = _problem()
    state = opt.init(params)
    args = {"params": params, "grads": grads, "state": state, "learning_rate": 0.1, "t": 1}
    key, value = change(params, grads, state)
    args[key] = value
    before = copy.deepcopy(args)
    with pytest.raises(exc, match=match):
        opt.update(**args)
    np.testing.assert_equal(args, before)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("change,exc,match", BAD_UPDATES)
def test_bad_update_input_is_refused_with_inputs_untouched(cls, change, exc, match):
    _check_untouched_after(cls(), change, exc, match)


@pytest.mark.parametrize("cls", [cls for cls in ALL if cls.slots])
@pytest.mark.parametrize("make,exc,match", BAD_SLOT_UPDATES)
def test_bad_state_is_refused_naming_the_slot(cls, make, exc, match):
    for slot in cls.slots:
        edit = make(slot)
        change = (lambda p, g, s, slot=slot, edit=edit:
                  ("state", {**s, slot: edit(s[slot], "dW1")}))
        _check_untouched_after(cls(), change, exc, match.format(slot=slot))


def test_state_of_another_optimizer_is_refused():
    params, grads = _problem()
    with pytest.raises(ValueError, match=r"state must have exactly the slots \['v', 's'\] of "
                                         r"Adam.*got \['v'\]"):
        Adam().update(params, grads, Momentum().init(params), 0.1)
    with pytest.raises(ValueError, match=r"slots \[\] of GradientDescent"):
        GradientDescent().update(params, grads, Momentum().init(params), 0.1)


@pytest.mark.parametrize("params,exc,match", [
    (None, TypeError, "params must be a dict of arrays"),
    ({"W1": "abc"}, TypeError, r"params\['W1'\] must be a real numeric array"),
    ({}, ValueError, "params must hold at least one array"),
])
def test_bad_init_input(params, exc, match):
    with pytest.raises(exc, match=match):
        Adam().init(params)
