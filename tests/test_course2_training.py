"""The course's second part in training: optimizers, L2, dropout and learning-rate
decay through ``Network.fit``/``forward``/``backward``/``cost``, on every backend
that trains with them (``HAS_OPTIMIZERS``), against the loops oracle, the
course's published values and finite differences."""

import numpy as np
import pytest

import fastnn
from fastnn import backends, regularization, schedules
from fastnn.backends import _base

import _course2_regularization_cases as cases
from _helpers import assert_close, assert_trained_alike, binary_data

#: The backends that train with the second course's options, checked against the oracle.
TRAINERS = backends.having("HAS_OPTIMIZERS")
OTHERS = [b for b in TRAINERS if b != backends.ORACLE]
PLAIN_ONLY = [b for b in backends.names()
              if backends.available()[b] is True and b not in TRAINERS]

# Pairwise-chosen cases: every optimizer with and without mini-batches, L2,
# dropout (one value and one per layer), decay, both ReLU'(0) conventions and
# the hidden activations whose derivative is taken from A (sigmoid, tanh).
#          optimizer   batch  lambd  keep_prob    decay (rate, interval)  g0  hidden
CASES = [("adam", None, 0.0, 1.0, (0.0, 1), 1, "relu"),
         ("momentum", 5, 0.7, 1.0, (0.3, 1), 0, "tanh"),
         ("rmsprop", None, 0.0, 0.8, (0.0, 1), 0, "relu"),
         ("adam", 7, 0.1, (0.9, 0.7), (1.0, 5), 1, "sigmoid"),
         ("gd", 8, 0.5, 0.85, (0.0, 1), 1, "leaky_relu"),
         ("momentum", None, 0.2, 0.75, (0.5, 2), 1, "tanh"),
         ("rmsprop", 6, 0.3, 1.0, (0.2, 1), 0, "sigmoid"),
         ("adam", 24, 0.0, 0.6, (0.0, 1), 0, "tanh")]
IDS = ["-".join(str(v) for v in case) for case in CASES]


def _fit(backend, case, iterations=30, dtype="float64", seed=3):
    optimizer, batch, lambd, keep_prob, (decay, interval), g0, hidden = case
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 5, 4, 1], hidden_activation=hidden, init="xavier", seed=seed,
                         backend=backend, dtype=dtype, relu_grad_at_zero=g0)
    lr = 0.01 if optimizer in ("adam", "rmsprop") else 0.1
    net.fit(X, Y, learning_rate=lr, num_iterations=iterations, cost_every=7, batch_size=batch,
            seed=11, optimizer=optimizer, lambd=lambd, keep_prob=keep_prob, decay_rate=decay,
            time_interval=interval)
    return net


#: The oracle comparison runs hundreds of iterations: 300 full-batch updates, or
#: 300 epochs of 4 to 5 mini-batches (1200-1500 updates), where rounding would
#: have time to grow.
LONG = 300
_oracle_runs = {}


def _oracle(case):
    if case not in _oracle_runs:
        _oracle_runs[case] = _fit(backends.ORACLE, case, iterations=LONG)
    return _oracle_runs[case]


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_training_agrees_with_the_loops_oracle(backend, case):
    assert_trained_alike(_fit(backend, case, iterations=LONG), _oracle(case), 1e-9)


@pytest.mark.parametrize("case", CASES[:4], ids=IDS[:4])
def test_float32_tracks_float64(case):
    lo, hi = _fit("numpy", case, dtype="float32"), _fit("numpy", case)
    assert all(W.dtype == np.float32 for W in lo.params.values())
    assert_close([c for _, c in lo.costs_], [c for _, c in hi.costs_], 1e-4, "float32 costs")


def test_the_recorded_cost_is_the_regularized_objective_without_dropout():
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 5, 4, 1], init="xavier", seed=3)
    start = net.cost(X, Y, lambd=0.7)
    assert start > net.cost(X, Y)
    net.fit(X, Y, learning_rate=0.1, num_iterations=1, lambd=0.7, keep_prob=0.5, seed=0)
    assert net.costs_[0] == (0, pytest.approx(start, rel=1e-12))


def test_steps_count_updates_and_resume_continues_bitwise():
    X, Y = binary_data(3, 24, seed=1)
    whole = fastnn.Network([3, 5, 1], init="xavier", seed=3)
    whole.fit(X, Y, learning_rate=0.01, num_iterations=20, optimizer="adam", batch_size=5,
              seed=1)
    assert whole.optimizer_steps_ == 20 * 5  # five batches an epoch, one update each
    halves = fastnn.Network([3, 5, 1], init="xavier", seed=3)
    rng = np.random.default_rng(1)
    halves.fit(X, Y, learning_rate=0.01, num_iterations=10, optimizer="adam", batch_size=5,
               seed=rng)
    halves.fit(X, Y, learning_rate=0.01, num_iterations=10, optimizer="adam", batch_size=5,
               seed=rng, resume=True)
    assert halves.optimizer_steps_ == 100
    for key, W in whole.params.items():
        np.testing.assert_array_equal(halves.params[key], W)
    fresh = fastnn.Network([3, 5, 1], init="xavier", seed=3)
    fresh.fit(X, Y, learning_rate=0.01, num_iterations=10, optimizer="adam", seed=1)
    assert fresh.optimizer_steps_ == 10
    assert isinstance(fresh.optimizer_, fastnn.optimizers.Adam)
    assert set(fresh.optimizer_state_) == {"v", "s"}


def test_resume_refuses_another_optimizer_or_no_state_and_keeps_the_network():
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 5, 1], seed=3)
    with pytest.raises(ValueError, match="no optimizer state yet"):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, resume=True)
    net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="momentum")
    before, state = net.params, net.optimizer_state_
    with pytest.raises(ValueError, match="continues the optimizer of the last fit"):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="adam", resume=True)
    with pytest.raises(TypeError, match="resume"):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="momentum", resume="yes")
    for key, W in before.items():
        np.testing.assert_array_equal(net.params[key], W)
    np.testing.assert_array_equal(net.optimizer_state_["v"]["dW1"], state["v"]["dW1"])


def test_decay_follows_the_course_model_loop():
    s = _base.Schedule(0.5, 10, decay_rate=0.3, time_interval=2)
    # Iteration 0 trains at the initial rate; after iteration i the rate becomes
    # schedule_lr_decay(lr0, i, ...), which iteration i + 1 trains at.
    expected = [0.5] + [schedules.schedule_lr_decay(0.5, i, 0.3, 2) for i in range(9)]
    assert [s.learning_rate_at(i) for i in range(10)] == expected
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 4, 1], init="xavier", seed=3)
    manual = fastnn.Network.from_params(net.params, net.activations)
    net.fit(X, Y, learning_rate=0.5, num_iterations=6, decay_rate=0.3, time_interval=2)
    params, lr = manual.params, 0.5
    for i in range(6):
        step = fastnn.Network.from_params(params, manual.activations)
        AL, caches = step.forward(X)
        grads = step.backward(AL, Y, caches)
        params, _ = fastnn.optimizers.GradientDescent().update(params, grads, {}, lr)
        lr = schedules.schedule_lr_decay(0.5, i, 0.3, 2)
    assert_close([net.params[k] for k in params], list(params.values()), 1e-13, "parameters")


def test_dropout_masks_follow_the_seed_and_never_move_the_shuffles():
    X, Y = binary_data(3, 24, seed=1)
    runs = []
    for keep_prob in (1.0, 0.8, 0.8):
        net = fastnn.Network([3, 5, 1], init="xavier", seed=3)
        net.fit(X, Y, learning_rate=0.1, num_iterations=3, batch_size=24, seed=5,
                keep_prob=keep_prob)
        runs.append(net.params["W1"])
    np.testing.assert_array_equal(runs[1], runs[2])  # the same masks for the same seed
    assert not np.array_equal(runs[0], runs[1])       # and dropout did act


@pytest.mark.parametrize("lambd", [0.7, 0.05])
def test_gradient_check_of_the_regularized_objective(backend, lambd, monkeypatch):
    if backend not in TRAINERS:
        pytest.skip(f"{backend} has no L2 (HAS_OPTIMIZERS is False)")
    X, Y = binary_data(3, 8, seed=2)
    net = fastnn.Network([3, 4, 3, 1], hidden_activation="tanh", init="xavier", seed=4,
                         backend=backend)
    assert fastnn.gradient_check(net, X, Y, lambd=lambd) < 2e-7
    # Negative control: a cost that forgets the penalty is caught.
    monkeypatch.setattr(regularization, "l2_penalty", lambda Ws, lambd, m: 0.0)
    assert fastnn.gradient_check(net, X, Y, lambd=lambd) > 1e-3


# -- the course's published values (tests/_course2_regularization_cases.py says where each comes from) --

def _course_net(params, backend):
    return fastnn.Network.from_params(params, ["relu", "relu", "sigmoid"], backend=backend,
                                      relu_grad_at_zero=0)  # the course's dZ[A <= 0] = 0


def _course_caches(X, c, with_masks=False):
    """The course's cache tuple as fastnn's per-layer caches."""
    layers = [((X, c["W1"], c["b1"]), c["Z1"]), ((c["A1"], c["W2"], c["b2"]), c["Z2"]),
              ((c["A2"], c["W3"], c["b3"]), c["Z3"])]
    if with_masks:
        layers[0] += (c["D1"],)
        layers[1] += (c["D2"],)
    return layers


def test_compute_cost_with_regularization_published_value():
    case = cases.compute_cost_with_regularization()
    inp = case["inputs"]
    A3, Y = inp["A3"], inp["Y"].astype(float)
    Ws = [inp["parameters"][k] for k in ("W1", "W2", "W3")]
    Z3 = np.log(A3 / (1 - A3))  # the logits of the published A3
    J = fastnn.losses.cost("cross_entropy", A3, Z3, Y, "sigmoid")
    J += regularization.l2_penalty(Ws, inp["lambd"], Y.shape[1])
    assert J == pytest.approx(case["expected"]["cost"], abs=1e-7)


@pytest.mark.parametrize("backend", TRAINERS)
@pytest.mark.parametrize("function, option", [("backward_propagation_with_regularization", "lambd"),
                                              ("backward_propagation_with_dropout", "keep_prob")])
def test_backward_propagation_published_values(backend, function, option):
    """The course's backward_propagation_with_regularization (lambd) and
    _with_dropout (keep_prob, its cached masks): every gradient as published."""
    case = getattr(cases, function)()
    inp, c = case["inputs"], case["inputs"]["cache"]
    params = {k: c[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")}
    net = _course_net(params, backend)
    caches = _course_caches(inp["X"], c, with_masks=option == "keep_prob")
    grads = net.backward(c["A3"], inp["Y"], caches, **{option: inp[option]})
    for key in ("dW1", "db1", "dW2", "db2", "dW3", "db3"):
        np.testing.assert_allclose(grads[key], case["expected"][key], atol=5e-8, err_msg=key)


@pytest.mark.parametrize("backend", TRAINERS)
def test_forward_propagation_with_dropout_published_values(backend):
    case = cases.forward_propagation_with_dropout()
    inp, expected = case["inputs"], case["expected"]
    net = _course_net(inp["parameters"], backend)
    A3, caches = net.forward(inp["X"], keep_prob=inp["keep_prob"],
                             rng=np.random.RandomState(inp["mask_seed"]))
    np.testing.assert_allclose(A3, expected["A3"], atol=5e-8)
    cache = expected["cache"]
    for l, (D, A) in enumerate((("D1", "A1"), ("D2", "A2"))):
        np.testing.assert_array_equal(caches[l][2], cache[D])
        np.testing.assert_allclose(caches[l + 1][0][0], cache[A], atol=5e-8, err_msg=A)
    assert len(caches[2]) == 2  # never on the output layer


# -- bad input ---------------------------------------------------------------------------

BAD = [({"keep_prob": 0.0}, ValueError, "keep_prob"), ({"keep_prob": 1.5}, ValueError, "keep_prob"),
       ({"keep_prob": float("nan")}, ValueError, "keep_prob"),
       ({"keep_prob": (0.5, 0.5, 0.5)}, ValueError, "keep_prob"),
       ({"keep_prob": "half"}, TypeError, "keep_prob"), ({"lambd": -0.1}, ValueError, "lambd"),
       ({"optimizer": "adamw"}, ValueError, "optimizer"),
       ({"optimizer": fastnn.optimizers.Adam}, TypeError, "optimizer"),
       ({"decay_rate": -1.0}, ValueError, "decay_rate"),
       ({"time_interval": 0}, ValueError, "time_interval")]


@pytest.mark.parametrize("kwargs,error,name", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_options_are_refused_before_any_work(kwargs, error, name):
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 5, 4, 1], seed=3)
    net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="momentum")
    before, state = net.params, net.optimizer_state_
    with pytest.raises(error, match=name):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, **kwargs)
    for key, W in before.items():
        np.testing.assert_array_equal(net.params[key], W)
    np.testing.assert_array_equal(net.optimizer_state_["v"]["dW2"], state["v"]["dW2"])
    assert net.optimizer_steps_ == 2


def test_bad_forward_backward_and_cost_arguments():
    X, Y = binary_data(3, 6, seed=1)
    net = fastnn.Network([3, 5, 1], seed=3)
    with pytest.raises(TypeError, match="rng"):
        net.forward(X, keep_prob=0.5, rng="seed")
    with pytest.raises(ValueError, match="keep_prob"):
        net.forward(X, keep_prob=2)
    AL, caches = net.forward(X)
    with pytest.raises(ValueError, match=r"\(\(A_prev, W, b\), Z, D\)"):
        net.backward(AL, Y, caches, keep_prob=0.5)  # caches without the masks
    with pytest.raises(ValueError, match="lambd"):
        net.backward(AL, Y, caches, lambd=-1)
    with pytest.raises(ValueError, match="lambd"):
        net.cost(X, Y, lambd=-1)
    AL, caches = net.forward(X, keep_prob=0.5, rng=0)
    bad = [caches[0][:2] + (np.full((5, 6), 2.0),), caches[1]]
    with pytest.raises(ValueError, match="0/1 mask"):
        net.backward(AL, Y, bad, keep_prob=0.5)


@pytest.fixture(params=PLAIN_ONLY or ["stand-in"])
def plain_backend(request, monkeypatch):
    """A backend without HAS_OPTIMIZERS: one of this install's, or (every backend
    here has it) per_example with the capability taken away."""
    if request.param != "stand-in":
        return request.param
    monkeypatch.setattr(backends.get("per_example"), "HAS_OPTIMIZERS", False)
    return "per_example"


def test_backends_without_them_say_which_have_them(plain_backend):
    backend = plain_backend
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 5, 1], seed=3, backend=backend)
    before = net.params
    with pytest.raises(ValueError, match="HAS_OPTIMIZERS|plain gradient descent only"):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="adam")
    with pytest.raises(ValueError, match="HAS_OPTIMIZERS"):
        net.forward(X, keep_prob=0.5, rng=0)
    np.testing.assert_array_equal(net.params["W1"], before["W1"])


def test_a_diverging_adam_fit_raises_and_keeps_the_parameters():
    X, Y = binary_data(3, 24, seed=1)
    X = X * 1e3
    net = fastnn.Network([3, 5, 1], init="xavier", seed=3, hidden_activation="identity",
                         output_activation="identity", loss="mse")
    before = net.params
    with pytest.raises(FloatingPointError):
        net.fit(X, Y, learning_rate=1e6, num_iterations=200, cost_every=1, optimizer="adam")
    np.testing.assert_array_equal(net.params["W1"], before["W1"])


@pytest.mark.parametrize("name", sorted(fastnn.optimizers.OPTIMIZERS))
def test_fit_takes_the_course_update_steps(name):
    """fit with an optimizer equals the course's model loop written out with
    forward, backward and the optimizer's update, t counting from 1."""
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 4, 1], init="xavier", seed=3)
    manual = fastnn.Network.from_params(net.params, net.activations)
    net.fit(X, Y, learning_rate=0.05, num_iterations=6, optimizer=name, lambd=0.3)
    optimizer = fastnn.optimizers.get(name)
    params = manual.params
    state = optimizer.init(params)
    for t in range(1, 7):
        step = fastnn.Network.from_params(params, manual.activations)
        AL, caches = step.forward(X)
        grads = step.backward(AL, Y, caches, lambd=0.3)
        params, state = optimizer.update(params, grads, state, 0.05, t)
    assert_close([net.params[k] for k in params], list(params.values()), 1e-12, "parameters")
    assert net.optimizer_steps_ == 6


def test_splitmix64_is_the_published_generator():
    # SplitMix64 seeded with 0 (Vigna's splitmix64.c): its first outputs.
    assert int(regularization.splitmix64(0)) == 0xE220A8397B1DCDAF
    assert int(regularization.splitmix64(int(regularization.GOLDEN))) == 0x6E789E6AA1B965F4


def test_fit_masks_keep_the_asked_share_and_differ_by_step_and_layer():
    D = regularization.fit_mask(12345, 1, 1, (200, 1000), 0.8)
    assert D.dtype == bool and D.shape == (200, 1000)
    assert abs(D.mean() - 0.8) < 4 * np.sqrt(0.8 * 0.2 / D.size)
    np.testing.assert_array_equal(D, regularization.fit_mask(12345, 1, 1, (200, 1000), 0.8))
    for other in (regularization.fit_mask(12345, 2, 1, (200, 1000), 0.8),
                  regularization.fit_mask(12345, 1, 2, (200, 1000), 0.8),
                  regularization.fit_mask(54321, 1, 1, (200, 1000), 0.8)):
        assert 0.3 < np.mean(D == other) < 0.7 + 0.01  # independent: P(equal) = 0.68
    assert regularization.fit_mask(1, 1, 1, (50, 50), 1.0).all()
    assert regularization.mask_threshold(0.5) == 2 ** 52


def test_every_backend_counts_its_updates(vector_backend):
    X, Y = binary_data(3, 24, seed=1)
    net = fastnn.Network([3, 4, 1], seed=3, backend=vector_backend)
    net.fit(X, Y, learning_rate=0.1, num_iterations=3, batch_size=5, seed=0)
    assert net.optimizer_steps_ == 3 * 5  # five batches (the last of 4) an epoch
    net.fit(X, Y, learning_rate=0.1, num_iterations=4, resume=True)
    assert net.optimizer_steps_ == 15 + 4
