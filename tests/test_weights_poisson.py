"""Per-example weights (``sample_weight``) and the Poisson loss (``exp`` output)
on every backend that has them (``HAS_SAMPLE_WEIGHT``, ``HAS_POISSON``): against
the loops oracle at the suite's tolerances (1e-9 in float64, float32 tracking
float64), against the formulas (replicated examples, scikit-learn's losses, a
mini-batch whose weights sum to 0), against finite differences; bad input
refused with the network untouched; and without weights, exactly what fastnn
computed before weights existed."""

import pickle

import numpy as np
import pytest

import fastnn
from fastnn import backends, losses, optimizers

import _unweighted_golden as golden
from _helpers import assert_close, assert_trained_alike

WEIGHTED = backends.having("HAS_SAMPLE_WEIGHT")
POISSON = backends.having("HAS_POISSON")
ORACLE = backends.ORACLE
OTHERS = [b for b in WEIGHTED if b != ORACLE]
FAST = [b for b in WEIGHTED if not backends.get(b).SLOW]

#: output activation -> (units, loss)
OUTPUTS = {"sigmoid": (1, "cross_entropy"), "softmax": (3, "cross_entropy"),
           "identity": (2, "mse"), "exp": (2, "poisson")}


def _data(output, m=24, seed=0):
    """X (3, m) and a Y fit for ``output``'s loss: 0/1, one-hot, real, counts."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, m))
    n_L = OUTPUTS[output][0]
    if output == "sigmoid":
        Y = (rng.random((1, m)) < 0.5).astype(float)
    elif output == "softmax":
        Y = np.eye(3)[:, rng.integers(0, 3, m)]
    elif output == "identity":
        Y = rng.standard_normal((n_L, m))
    else:  # counts, zeros included (the deviance's y log y = 0 there)
        Y = rng.poisson(1.5, (n_L, m)).astype(float)
    return X, Y


def _weights(m, zeros, seed=1):
    w = np.random.default_rng(seed).uniform(0.2, 3.0, m)
    if zeros:
        w[::3] = 0.0
    return w


def _skip_unless_poisson(backend, output):
    if output == "exp" and backend not in POISSON:
        pytest.skip(f"{backend} has no poisson loss (HAS_POISSON is False)")


def _net(backend, output, hidden="tanh", dtype="float64", g0=1, seed=4):
    n_L = OUTPUTS[output][0]
    net = fastnn.Network([3, 5, 4, n_L], hidden_activation=hidden, output_activation=output,
                         init="xavier", seed=seed, dtype=dtype, relu_grad_at_zero=g0)
    params = net.params
    rng = np.random.default_rng(seed)
    for key in params:  # biases off zero: every unit's Z away from the kinks
        if key.startswith("b"):
            params[key] = 0.3 * rng.standard_normal(params[key].shape)
    return fastnn.Network.from_params(params, net.activations, backend=backend, dtype=dtype,
                                      relu_grad_at_zero=g0)


# -- one step: forward, cost, backward ------------------------------------------------------

# Pairwise: every output/loss, with and without L2, dropout and zero weights, both ReLU'(0).
#              hidden       output     lambd keep_prob g0 zeros
STEP_CASES = [("relu", "sigmoid", 0.0, 1.0, 1, True),
              ("tanh", "softmax", 0.4, 0.8, 0, False),
              ("sigmoid", "identity", 0.0, 0.7, 1, True),
              ("leaky_relu", "exp", 0.3, 1.0, 0, True),
              ("tanh", "exp", 0.0, 0.75, 1, False),
              ("relu", "identity", 0.2, 1.0, 0, False)]
STEP_IDS = ["-".join(map(str, c)) for c in STEP_CASES]


def _step(backend, case, dtype="float64"):
    hidden, output, lambd, keep_prob, g0, zeros = case
    X, Y = _data(output, m=10)
    w = _weights(10, zeros)
    net = _net(backend, output, hidden, dtype, g0)
    AL, caches = net.forward(X, keep_prob=keep_prob, rng=np.random.default_rng(7))
    grads = net.backward(AL, Y, caches, lambd=lambd, keep_prob=keep_prob, sample_weight=w)
    return AL, net.cost(X, Y, lambd=lambd, sample_weight=w), grads


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("case", STEP_CASES, ids=STEP_IDS)
def test_weighted_step_agrees_with_the_loops_oracle(backend, case):
    _skip_unless_poisson(backend, case[1])
    AL, J, grads = _step(backend, case)
    AL0, J0, grads0 = _step(ORACLE, case)
    assert_close([AL], [AL0], 1e-9, "A_L")
    assert J == pytest.approx(J0, rel=1e-9)
    assert_close([grads[k] for k in grads0], list(grads0.values()), 1e-9, "gradients")


@pytest.mark.parametrize("backend", WEIGHTED)
@pytest.mark.parametrize("output", ["softmax", "exp"])
def test_integer_weights_are_replicated_examples(backend, output):
    """w_i = k counts example i k times (0: not at all), L2's term over S = sum w
    included: the weighted objective is the mean over the replicated batch."""
    _skip_unless_poisson(backend, output)
    X, Y = _data(output, m=9)
    w = np.array([0, 1, 2, 3, 1, 0, 2, 1, 1], dtype=float)
    idx = np.repeat(np.arange(9), w.astype(int))
    net = _net(backend, output, "tanh")
    AL, caches = net.forward(X)
    grads = net.backward(AL, Y, caches, lambd=0.3, sample_weight=w)
    AL_r, caches_r = net.forward(X[:, idx])
    ref = net.backward(AL_r, Y[:, idx], caches_r, lambd=0.3)
    assert_close([grads[k] for k in ref], list(ref.values()), 1e-12, "gradients")
    assert net.cost(X, Y, lambd=0.3, sample_weight=w) == pytest.approx(
        net.cost(X[:, idx], Y[:, idx], lambd=0.3), rel=1e-12)


def test_poisson_cost_is_scikit_learns_half_deviance():
    from scipy.special import xlogy

    X, Y = _data("exp", m=11)
    w = _weights(11, zeros=True)
    ZL = np.random.default_rng(3).normal(0, 2, Y.shape)
    AL = np.exp(ZL)
    deviance = xlogy(Y, Y / AL) - Y + AL  # scikit-learn's poisson_loss, per unit
    assert 0 in Y  # y log(y / a) = 0 at y = 0
    assert losses.cost("poisson", AL, ZL, Y, "exp") == pytest.approx(
        np.mean(deviance, axis=1).sum(), rel=1e-13)
    assert losses.cost("poisson", AL, ZL, Y, "exp", w) == pytest.approx(
        np.average(deviance, weights=w, axis=1).sum(), rel=1e-13)
    # Far out on the logits the cost stays finite: no log of an underflowed a.
    assert np.isfinite(losses.cost("poisson", np.exp(-800.0), -800.0 * np.ones((1, 1)),
                                   np.ones((1, 1)), "exp"))
    sklearn_base = pytest.importorskip("sklearn.neural_network._base")
    assert losses.cost("poisson", AL, ZL, Y, "exp", w) == pytest.approx(
        sklearn_base.poisson_loss(Y.T, AL.T, w), rel=1e-13)


@pytest.mark.parametrize("backend", WEIGHTED)
def test_gradient_check_of_the_weighted_and_poisson_objectives(backend, monkeypatch):
    X, Y = _data("identity", m=8)
    w = _weights(8, zeros=True)
    net = _net(backend, "identity", "tanh")
    assert fastnn.gradient_check(net, X, Y, lambd=0.4, sample_weight=w) < 2e-7
    if backend in POISSON:
        X, Y = _data("exp", m=8)
        net = _net(backend, "exp", "sigmoid")
        assert fastnn.gradient_check(net, X, Y) < 2e-7
        assert fastnn.gradient_check(net, X, Y, lambd=0.2, sample_weight=w) < 2e-7
    # Negative control: a cost that forgets the weights is caught.
    unweighted = losses.cost
    monkeypatch.setattr(losses, "cost", lambda name, AL, ZL, Y, output_activation=None,
                        sample_weight=None: unweighted(name, AL, ZL, Y, output_activation))
    assert fastnn.gradient_check(net, X, Y, sample_weight=w) > 1e-3


# -- training -----------------------------------------------------------------------------

# Pairwise: every optimizer, full batch and mini-batches, L2, dropout, every
# output/loss, zero weights, epoch losses (on_epoch) or not.
#             optimizer  batch lambd keep_prob output  zeros epoch_loss
FIT_CASES = [("gd", None, 0.0, 1.0, "sigmoid", True, False),
             ("adam", 5, 0.3, 1.0, "exp", True, True),
             ("momentum", 4, 0.0, 0.8, "identity", False, True),
             ("rmsprop", None, 0.2, 0.85, "softmax", True, False),
             ("adam", None, 0.0, 0.9, "exp", False, False),
             ("gd", 6, 0.5, 1.0, "softmax", False, True)]
FIT_IDS = ["-".join(map(str, c)) for c in FIT_CASES]


def _fit(backend, case, dtype="float64", iterations=12):
    optimizer, batch, lambd, keep_prob, output, zeros, epoch_loss = case
    X, Y = _data(output)
    net = _net(backend, output, "tanh", dtype)
    seen = []
    net.fit(X, Y, learning_rate=0.02 if optimizer in ("adam", "rmsprop") else 0.1,
            num_iterations=iterations, cost_every=5, batch_size=batch, seed=11,
            optimizer=optimizer, lambd=lambd, keep_prob=keep_prob,
            sample_weight=_weights(24, zeros),
            on_epoch=(lambda i, loss: seen.append(loss)) if epoch_loss else None)
    return net, seen


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("case", FIT_CASES, ids=FIT_IDS)
def test_weighted_training_agrees_with_the_loops_oracle(backend, case):
    _skip_unless_poisson(backend, case[4])
    (net, seen), (oracle, seen0) = _fit(backend, case), _fit(ORACLE, case)
    assert_trained_alike(net, oracle, 1e-9)
    assert len(seen) == len(seen0)
    if seen0:
        assert_close(seen, seen0, 1e-9, "epoch losses")


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("case", FIT_CASES[1:3], ids=FIT_IDS[1:3])
def test_weighted_float32_tracks_float64(backend, case):
    _skip_unless_poisson(backend, case[4])
    (lo, seen_lo), (hi, seen_hi) = _fit(backend, case, "float32"), _fit(backend, case)
    assert all(W.dtype == np.float32 for W in lo.params.values())
    assert_close([c for _, c in lo.costs_], [c for _, c in hi.costs_], 1e-4, "float32 costs")
    assert_close(seen_lo, seen_hi, 1e-4, "float32 epoch losses")


@pytest.mark.parametrize("backend", WEIGHTED)
def test_all_ones_weights_are_the_unweighted_fit(backend):
    case = ("adam", 5, 0.3, 0.8, "sigmoid", False, True)
    X, Y = _data("sigmoid")
    runs = []
    for w in (None, np.ones(24)):
        net, seen = _net(backend, "sigmoid"), []
        net.fit(X, Y, learning_rate=0.02, num_iterations=8, cost_every=3, batch_size=case[1],
                seed=2, optimizer=case[0], lambd=case[2], keep_prob=case[3], sample_weight=w,
                on_epoch=lambda i, loss: seen.append(loss))
        runs.append((net, seen))
    (a, seen_a), (b, seen_b) = runs
    assert_close([c for _, c in b.costs_], [c for _, c in a.costs_], 1e-12, "costs")
    assert_close(seen_b, seen_a, 1e-12, "epoch losses")
    assert_close(list(b.params.values()), list(a.params.values()), 1e-12, "parameters")


@pytest.mark.parametrize("backend", WEIGHTED)
def test_a_mini_batch_whose_weights_sum_to_zero_steps_with_zero_gradients(backend):
    """Batch 0 of each epoch has weights all 0: its loss, its L2 term and its
    gradient are 0, and the optimizer still steps (Adam's t advances, its
    moments decay). Checked against the steps written out with Network's
    forward/backward/cost and the optimizer's own update."""
    X, Y = _data("identity", m=12)
    w = _weights(12, zeros=False)
    w[:4] = 0.0
    lambd, lr, epochs = 0.3, 0.05, 2
    net, seen = _net(backend, "identity", "relu"), []
    start = net.params
    net.fit(X, Y, learning_rate=lr, num_iterations=epochs, cost_every=None, batch_size=4,
            optimizer="adam", lambd=lambd, sample_weight=w,
            orders=lambda count: np.tile(np.arange(12), (count, 1)),
            on_epoch=lambda i, loss: seen.append(loss))
    assert net.optimizer_steps_ == 3 * epochs

    ref = _net("numpy", "identity", "relu")
    adam, params, t = optimizers.Adam(), start, 0
    state, expected = adam.init(params), []
    for _ in range(epochs):
        loss = 0.0
        for k in range(0, 12, 4):
            cols = slice(k, k + 4)
            step = fastnn.Network.from_params(params, ref.activations)
            if w[cols].sum() == 0:
                grads = {f"d{key}": np.zeros_like(v) for key, v in params.items()}
            else:
                AL, caches = step.forward(X[:, cols])
                grads = step.backward(AL, Y[:, cols], caches, lambd=lambd,
                                      sample_weight=w[cols])
                loss += 4 / 12 * step.cost(X[:, cols], Y[:, cols], lambd=lambd,
                                           sample_weight=w[cols])
            t += 1
            params, state = adam.update(params, grads, state, lr, t)
        expected.append(loss)
    assert_close(seen, expected, 1e-9, "epoch losses")
    assert_close([net.params[k] for k in params], list(params.values()), 1e-9, "parameters")
    assert not np.array_equal(net.params["W1"], start["W1"])


# -- without weights: exactly as before ----------------------------------------------------

def test_without_weights_the_weighted_path_is_never_entered(backend, monkeypatch):
    """``sample_weight=None`` takes the unweighted code everywhere (the driver,
    every Python backend, Network's steps): the weighting helpers must not run."""
    def refuse(*args):
        raise AssertionError("the weighted path ran without weights")

    for helper in ("weight_sum", "mean_scale", "weight_delta"):
        monkeypatch.setattr(losses, helper, refuse)
    X, Y = _data("identity", m=12)
    net = _net(backend, "identity", "relu")
    AL, caches = net.forward(X)
    net.backward(AL, Y, caches, lambd=0.2, sample_weight=None)
    net.cost(X, Y, lambd=0.2, sample_weight=None)
    net.fit(X, Y, learning_rate=0.05, num_iterations=3, batch_size=5, optimizer="adam",
            lambd=0.2, on_epoch=lambda i, loss: None)
    net.fit(X, Y, learning_rate=0.05, num_iterations=3, cost_every=1)


def test_without_weights_every_backend_computes_what_it_did_before(backend):
    """Bitwise the results recorded with the code before weights existed
    (tests/_unweighted_golden.py), where this environment is the recording's."""
    recorded = np.load(golden.PATH)
    if str(recorded["fingerprint"]) != golden.fingerprint():
        pytest.skip("recorded in another environment (CPU kernels, BLAS or library "
                    "versions), where rounding legitimately differs")
    for key, value in golden.runs(backend).items():
        np.testing.assert_array_equal(value, recorded[f"{backend}/{key}"], err_msg=key)


@pytest.mark.parametrize("backend", WEIGHTED)
def test_weights_all_zero_give_zero_loss_and_gradients_and_optimizer_only_steps(backend):
    # The batch's mean over S = 0 is 0 (the contract's rule for a mini-batch of
    # zero weights), also for a whole fit: plain steps leave the parameters as
    # they were; Momentum's steps move them by its velocity alone, as the oracle.
    X, Y = _data("softmax", m=12)
    zeros = np.zeros(12)
    net = _net(backend, "softmax")
    before = net.params
    AL, caches = net.forward(X)
    assert net.cost(X, Y, lambd=0.5, sample_weight=zeros) == 0.0
    for grad in net.backward(AL, Y, caches, lambd=0.5, sample_weight=zeros).values():
        assert not np.any(grad)
    net.fit(X, Y, learning_rate=0.1, num_iterations=3, cost_every=1, lambd=0.5,
            sample_weight=zeros)
    assert [c for _, c in net.costs_] == [0.0, 0.0, 0.0]
    for key, W in before.items():
        np.testing.assert_array_equal(net.params[key], W)
    moved = {}
    for name in (ORACLE, backend):
        moved[name] = _net(name, "softmax")
        moved[name].fit(X, Y, learning_rate=0.1, num_iterations=3, optimizer="momentum")
        moved[name].fit(X, Y, learning_rate=0.1, num_iterations=4, optimizer="momentum",
                        resume=True, lambd=0.5, sample_weight=zeros)
    assert_trained_alike(moved[backend], moved[ORACLE], 1e-9)
    assert not np.array_equal(moved[backend].params["W1"], before["W1"])


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, error, match", [
    (np.ones(11), ValueError, r"sample_weight must have shape \(12,\)"),
    (np.ones((12, 1)), ValueError, r"sample_weight must have shape"),
    (np.r_[np.ones(11), -1.0], ValueError, r"sample_weight must hold finite numbers >= 0"),
    (np.r_[np.ones(11), np.nan], ValueError, r"sample_weight must hold finite"),
    (np.r_[np.ones(11), np.inf], ValueError, r"sample_weight must hold finite"),
    (np.r_[np.ones(11), 1e300], ValueError, r"sample_weight must be representable in float32"),
    (np.r_[np.zeros(11), 1e-60], ValueError, r"sample_weight must be representable in float32"),
    (["a"] * 12, TypeError, r"sample_weight must be a real numeric array"),
    (np.ones(12, dtype=complex), TypeError, r"sample_weight must be a real numeric array"),
])
def test_bad_sample_weight_is_refused_before_any_work(bad, error, match):
    X, Y = _data("sigmoid", m=12)
    net = _net("numpy", "sigmoid", dtype="float32")
    net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="adam")
    before, state, costs = net.params, net.optimizer_state_, net.costs_
    with pytest.raises(error, match=match):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, optimizer="adam",
                      resume=True, sample_weight=bad)
    with pytest.raises(error, match=match):
        net.cost(X, Y, sample_weight=bad)
    AL, caches = net.forward(X)
    with pytest.raises(error, match=match):
        net.backward(AL, Y, caches, sample_weight=bad)
    for key, W in before.items():
        np.testing.assert_array_equal(net.params[key], W)
    np.testing.assert_array_equal(net.optimizer_state_["v"]["dW1"], state["v"]["dW1"])
    assert net.optimizer_steps_ == 2 and net.costs_ == costs


def test_a_row_of_weights_is_taken():
    X, Y = _data("sigmoid", m=12)
    net = _net("numpy", "sigmoid")
    w = _weights(12, zeros=True)
    assert net.cost(X, Y, sample_weight=w.reshape(1, -1)) == net.cost(X, Y, sample_weight=w)


def test_poisson_needs_counts_and_its_exp_output():
    X, Y = _data("exp", m=12)
    net = _net("numpy", "exp")
    assert net.loss == "poisson" and net.activations[-1] == "exp"
    before = net.params
    with pytest.raises(ValueError, match=r"Y must be >= 0 for the poisson loss"):
        net.fit(X, Y - 2, learning_rate=0.1, num_iterations=2)
    with pytest.raises(ValueError, match=r"Y must be >= 0"):
        net.cost(X, -Y)
    for key, W in before.items():
        np.testing.assert_array_equal(net.params[key], W)
    with pytest.raises(ValueError, match=r"hidden_activation 'exp' is an output activation"):
        fastnn.Network([3, 4, 1], hidden_activation="exp", output_activation="identity")
    with pytest.raises(ValueError, match=r"activations\[0\] 'exp' is an output activation"):
        fastnn.Network([3, 4, 1], ["exp", "exp"])
    with pytest.raises(ValueError, match=r"an 'exp' output needs the loss 'poisson'"):
        fastnn.Network([3, 4, 1], output_activation="exp", loss="mse")
    with pytest.raises(ValueError, match=r"loss 'poisson' needs one of the output "
                                         r"activations \['exp'\]"):
        fastnn.Network([3, 4, 1], output_activation="identity", loss="poisson")
    assert losses.default_for("exp") == "poisson"
    np.testing.assert_array_equal(net.predict(X), net.forward(X)[0])  # the rates


def test_a_backend_without_the_capability_is_refused_by_name(monkeypatch):
    numpy_backend = backends.get("numpy")
    X, Y = _data("sigmoid", m=12)
    net = _net("numpy", "sigmoid")
    pickled = pickle.dumps(_net("numpy", "exp"))
    monkeypatch.delattr(numpy_backend, "HAS_SAMPLE_WEIGHT")
    monkeypatch.delattr(numpy_backend, "HAS_POISSON")
    having = str(backends.having("HAS_SAMPLE_WEIGHT")).replace("[", r"\[").replace("]", r"\]")
    assert "numpy" not in having
    with pytest.raises(ValueError, match=rf"sample_weight needs a backend with "
                                         rf"HAS_SAMPLE_WEIGHT: one of {having}; this network "
                                         rf"runs on 'numpy'"):
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, sample_weight=np.ones(12))
    with pytest.raises(ValueError, match=r"HAS_SAMPLE_WEIGHT.*'numpy'"):
        net.cost(X, Y, sample_weight=np.ones(12))
    with pytest.raises(ValueError, match=r"the poisson loss \(an exp output\) needs a backend "
                                         r"with HAS_POISSON: one of .*; this network runs on "
                                         r"'numpy'"):
        fastnn.Network([3, 4, 2], output_activation="exp")
    with pytest.raises(ValueError, match=r"needs a backend with HAS_POISSON"):
        pickle.loads(pickled)  # a pickle too: its kernels would never see an exp output
    net.fit(X, Y, learning_rate=0.1, num_iterations=2)  # without weights: as ever
